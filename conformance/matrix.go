package conformance

import (
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// Status is a verdict in the matrix.
type Status string

// Verdicts, from a spec or aggregated per statement and target.
const (
	StatusPass          Status = "pass"
	StatusFail          Status = "fail"
	StatusSkipped       Status = "skipped"
	StatusDeviation     Status = "deviation"      // failed where the target declares a deviation
	StatusNotReproduced Status = "not-reproduced" // passed where a deviation is declared
	StatusNotCovered    Status = "not-covered"    // no spec cites the statement
	StatusNotApplicable Status = "not-applicable" // client-only statement
	statusUnknown       Status = ""
)

// rank orders verdicts when several specs cite one statement: the worst wins.
var rank = map[Status]int{StatusFail: 5, StatusDeviation: 4, StatusNotReproduced: 3, StatusPass: 2, StatusSkipped: 1}

// SpecResult is one spec run against one target.
type SpecResult struct {
	Target     string        `json:"target"`
	Area       string        `json:"area"`
	Protocol   string        `json:"protocol,omitempty"` // Protocol311 or Protocol5
	Text       string        `json:"text"`
	Statements []string      `json:"statements"`
	Status     Status        `json:"status"`
	Reason     string        `json:"reason,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// Cell is the verdict for one statement on one target.
type Cell struct {
	Status Status   `json:"status"`
	Reason string   `json:"reason,omitempty"`
	Specs  []string `json:"specs,omitempty"` // texts of the specs citing the statement
}

// Row is one statement with its verdict per target.
type Row struct {
	Statement
	Areas []string        `json:"areas,omitempty"` // areas of the specs citing it
	Cells map[string]Cell `json:"targets"`
}

// Coverage is the coverage figure: statements whose role is server or both,
// how many of them a spec cites, and per target how many got a verdict
// (pass, fail, deviation) rather than a skip. The top-level figures are
// MQTT 3.1.1's, as they were before 5.0 specs existed; V5 holds 5.0's,
// counted apart (the two lists share ID strings, not meanings).
type Coverage struct {
	ServerSide int            `json:"server_side"`
	Covered    int            `json:"covered"`
	Verified   map[string]int `json:"verified_per_target"`
	V5         *Coverage      `json:"v5,omitempty"`
}

// of returns the figures of one protocol.
func (c *Coverage) of(protocol string) *Coverage {
	if protocol != Protocol5 {
		return c
	}
	if c.V5 == nil {
		c.V5 = &Coverage{Verified: map[string]int{}}
	}
	return c.V5
}

// Matrix is the conformance results: statement x target.
type Matrix struct {
	Version   int           `json:"version"`
	Generated time.Time     `json:"generated"`
	Suite     string        `json:"suite"`
	Targets   []string      `json:"targets"`
	Coverage  Coverage      `json:"coverage"`
	Rows      []Row         `json:"statements"`
	Specs     []SpecResult  `json:"specs"`
	Duration  time.Duration `json:"duration_ns"`
}

// BuildMatrix turns a Ginkgo report into the matrix. Specs are matched to
// targets and statements through their labels.
func BuildMatrix(r types.Report) *Matrix {
	m := &Matrix{Version: 1, Generated: r.EndTime.UTC(), Suite: r.SuiteDescription, Duration: r.RunTime}
	idx := statementIndex()
	seenTarget := map[string]bool{}
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			continue
		}
		res := SpecResult{Text: sr.LeafNodeText, Duration: sr.RunTime}
		for _, l := range sr.Labels() {
			switch {
			case strings.HasPrefix(l, "target="):
				res.Target = strings.TrimPrefix(l, "target=")
			case strings.HasPrefix(l, "protocol="):
				res.Protocol = strings.TrimPrefix(l, "protocol=")
			case idx[l].ID != "":
				res.Statements = append(res.Statements, l)
			case !strings.Contains(l, "="):
				res.Area = l
			}
		}
		if len(sr.ContainerHierarchyTexts) > 0 {
			res.Target = strings.TrimPrefix(sr.ContainerHierarchyTexts[0], "target ")
		}
		res.Status, res.Reason = specStatus(sr)
		if !seenTarget[res.Target] {
			seenTarget[res.Target] = true
			m.Targets = append(m.Targets, res.Target)
		}
		m.Specs = append(m.Specs, res)
	}
	cited := map[string]map[string][]SpecResult{} // statement -> target -> specs
	for _, s := range m.Specs {
		for _, id := range s.Statements {
			if cited[id] == nil {
				cited[id] = map[string][]SpecResult{}
			}
			cited[id][s.Target] = append(cited[id][s.Target], s)
		}
	}
	m.Coverage.Verified = map[string]int{}
	for _, st := range Statements() {
		row := Row{Statement: st, Cells: map[string]Cell{}, Areas: areasCiting(st.ID)}
		cov := m.Coverage.of(st.Protocol)
		if st.ServerSide() {
			cov.ServerSide++
			if len(cited[st.ID]) > 0 || citedAnywhere(st.ID) {
				cov.Covered++
			}
		}
		for _, t := range m.Targets {
			c := aggregate(st, cited[st.ID][t])
			row.Cells[t] = c
			if st.ServerSide() && (c.Status == StatusPass || c.Status == StatusFail || c.Status == StatusDeviation || c.Status == StatusNotReproduced) {
				cov.Verified[t]++
			}
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

// areasCiting returns the areas of the registered specs citing a statement.
func areasCiting(id string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range registry {
		for _, s := range d.Statements {
			if s == id && !seen[d.Area] {
				seen[d.Area] = true
				out = append(out, d.Area)
			}
		}
	}
	sort.Strings(out)
	return out
}

// citedAnywhere reports whether a registered spec cites the statement, so
// coverage counts statements whose specs were filtered out of this run.
func citedAnywhere(id string) bool {
	for _, d := range registry {
		for _, s := range d.Statements {
			if s == id {
				return true
			}
		}
	}
	return false
}

func aggregate(st Statement, specs []SpecResult) Cell {
	if len(specs) == 0 {
		switch {
		case !st.ServerSide():
			return Cell{Status: StatusNotApplicable, Reason: "binds clients only"}
		case citedAnywhere(st.ID):
			return Cell{Status: StatusSkipped, Reason: "not selected in this run"}
		default:
			return Cell{Status: StatusNotCovered}
		}
	}
	c := Cell{Status: statusUnknown}
	for _, s := range specs {
		c.Specs = append(c.Specs, s.Text)
		if rank[s.Status] > rank[c.Status] {
			c.Status, c.Reason = s.Status, s.Reason
		}
	}
	sort.Strings(c.Specs)
	return c
}

// specStatus reads a spec's verdict, including the deviation entries runSpec adds.
func specStatus(sr types.SpecReport) (Status, string) {
	for _, e := range sr.ReportEntries {
		switch e.Name {
		case EntryDeviation:
			return StatusDeviation, e.StringRepresentation()
		case EntryNotReproduced:
			if sr.State == types.SpecStatePassed {
				return StatusNotReproduced, e.StringRepresentation()
			}
		}
	}
	switch sr.State {
	case types.SpecStatePassed:
		return StatusPass, ""
	case types.SpecStateSkipped, types.SpecStatePending:
		return StatusSkipped, sr.Failure.Message
	default:
		msg := sr.Failure.Message
		if sr.Failure.Location.FileName != "" {
			msg += " (" + sr.Failure.Location.String() + ")"
		}
		return StatusFail, sr.State.String() + ": " + msg
	}
}
