package conformance

import (
	"fmt"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/reports"
)

// cellStatus maps a matrix verdict to the results model's. A declared
// deviation that did not reproduce passed the spec: it reads as pass, with
// the reason saying the declaration is stale.
var cellStatus = map[Status]reports.CellStatus{
	StatusPass:          reports.CellPass,
	StatusFail:          reports.CellFail,
	StatusSkipped:       reports.CellSkipped,
	StatusDeviation:     reports.CellDeviation,
	StatusNotReproduced: reports.CellPass,
	StatusNotCovered:    reports.CellNotCovered,
}

// Results puts the matrix into the results model every mqttfleet command
// writes, so `report html|junit|md` and `report merge` read conformance runs
// like any other: server-side statements by target, each cell with its
// verdict and the reason (failure message, deviation note, packet trace).
func (m *Matrix) Results(start, end time.Time) *reports.Results {
	rm := &reports.Matrix{}
	for _, r := range m.Rows {
		if !r.ServerSide() {
			continue // client-only: not something a broker suite verifies
		}
		rm.Statements = append(rm.Statements, reports.Statement{ID: r.ID, Section: r.Section, Role: r.Role, Summary: r.Summary})
		for _, t := range m.Targets {
			c := r.Cells[t]
			st, ok := cellStatus[c.Status]
			if !ok {
				continue
			}
			reason := c.Reason
			if c.Status == StatusNotReproduced {
				reason = "declared deviation did not reproduce (the broker now meets the statement): " + reason
			}
			rm.Set(t, r.ID, reports.Cell{Status: st, Reason: reason, Specs: c.Specs})
		}
	}
	for _, t := range m.Targets {
		if rm.Cells[t] == nil { // a target without one cell still belongs in the matrix
			rm.Targets = append(rm.Targets, t)
		}
	}
	rm.Summarise()
	res := &reports.Results{
		SchemaVersion: reports.SchemaVersion,
		Kind:          reports.KindConformance,
		Run: reports.Run{
			ID:     fmt.Sprintf("conformance-%d", start.UnixMilli()),
			Name:   m.Suite,
			Target: strings.Join(m.Targets, ","),
			Start:  start, End: end,
			Shard:  reports.Shard{Index: 0, Count: 1},
			Status: reports.StatusCompleted,
		},
		Counters:    map[string]int64{"specs": int64(len(m.Specs))},
		Conformance: rm,
	}
	for _, s := range m.Specs {
		res.Counters["specs_"+string(s.Status)]++
	}
	return res
}

// unavailableResults is the results of a run that could not start a target
// the user asked for: nothing was judged, and the status says why.
func unavailableResults(start time.Time, names []string, err error) *reports.Results {
	return &reports.Results{
		SchemaVersion: reports.SchemaVersion,
		Kind:          reports.KindConformance,
		Run: reports.Run{
			ID: fmt.Sprintf("conformance-%d", start.UnixMilli()), Name: "MQTT 3.1.1 and 5.0 conformance",
			Target: strings.Join(names, ","), Start: start, End: time.Now(),
			Shard:  reports.Shard{Index: 0, Count: 1},
			Status: reports.StatusTargetUnavailable, StatusReason: err.Error(),
		},
		Counters: map[string]int64{},
	}
}
