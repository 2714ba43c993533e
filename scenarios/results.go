package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
)

// results builds the results file: the Collector's aggregates, the run's
// metadata, a failed check for a timeline that broke off, and every
// assertion's verdict with its evidence.
func (r *runner) results(started, ended time.Time, stepErr error, interrupted bool) *reports.Results {
	res := r.col.Results()
	res.Run.Start, res.Run.End = started, ended
	res.Run.Status = reports.StatusCompleted
	if interrupted {
		res.Run.Status = reports.StatusInterrupted
	}
	total := 0
	for _, g := range r.sc.Groups {
		total += g.Count
	}
	res.Run.Devices = total
	if res.Counters == nil {
		res.Counters = map[string]int64{}
	}
	res.Counters["scenario_steps"] = int64(len(r.sc.Steps))
	addNetemCounts(res, r.proxy, r.sc)
	evs := r.rec.Events()
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	r.mu.Lock()
	m := moments{t0: r.t0, end: ended, last: r.timelineEnd, steps: map[string]time.Time{}}
	for k, v := range r.stepAt {
		m.steps[k] = v
	}
	r.mu.Unlock()
	if t, ok := m.steps["end"]; ok {
		m.end = t
	}
	if m.t0.IsZero() {
		m.t0 = started
	}
	if err := totals(res, evs, r.sc, m); err != nil {
		r.log.Warn("delivery totals", "err", err)
	}
	if stepErr != nil {
		a := reports.Assertion{Name: "timeline", Verdict: reports.Fail, Message: stepErr.Error()}
		if interrupted {
			// Stopped by the user, not by the broker: the timeline did not
			// finish, which is no verdict on the target.
			a.Verdict, a.Message = reports.Error, "interrupted: "+stepErr.Error()
		}
		var se *StepError
		if errors.As(stepErr, &se) {
			a.Name = "timeline: step " + se.Step
			a.Evidence = before(evs, se.At, 10)
		}
		res.AddAssertion(a)
	}
	for _, a := range r.evaluate(evs, m, res.Counters) {
		res.AddAssertion(a)
	}
	res.Steps = r.stepWindows(m)
	res.Timelines = drillDown(res.Assertions, evs)
	return res
}

// stepWindows lists the timeline's steps that ran, for the report's chart
// markers: from the moment each began, for as long as its fault was held
// (for:), or as an instant.
func (r *runner) stepWindows(m moments) []reports.StepWindow {
	var out []reports.StepWindow
	for _, s := range r.sc.Steps {
		at, ok := m.steps[s.Name]
		if !ok {
			continue
		}
		w := reports.StepWindow{Name: s.Name, Start: at}
		if d := s.For.D(); d > 0 {
			w.End = at.Add(d)
		}
		out = append(out, w)
	}
	return out
}

// drillDown gathers the event history of each device (client ID) that the
// evidence of a failed assertion names, bounded by reports.MaxTimelines
// devices of reports.MaxTimelineEvents events each.
func drillDown(as []reports.Assertion, evs []events.Event) []reports.Timeline {
	var order []string
	failed := map[string][]string{}
	for _, a := range as {
		if a.Verdict != reports.Fail {
			continue
		}
		for _, e := range a.Evidence {
			id := e.ClientID
			if id == "" || slices.Contains(failed[id], a.Name) {
				continue
			}
			if _, seen := failed[id]; !seen {
				if len(order) == reports.MaxTimelines {
					continue
				}
				order = append(order, id)
			}
			failed[id] = append(failed[id], a.Name)
		}
	}
	out := make([]reports.Timeline, len(order))
	index := map[string]int{}
	for i, id := range order {
		out[i] = reports.Timeline{Device: id, Assertions: failed[id]}
		index[id] = i
	}
	for _, e := range evs {
		i, ok := index[e.ClientID]
		if !ok {
			continue
		}
		if len(out[i].Events) < reports.MaxTimelineEvents {
			out[i].Events = append(out[i].Events, e)
		} else {
			out[i].Omitted++
		}
	}
	return out
}

// before returns the last n events recorded up to t: what the run saw
// just before a step gave up.
func before(evs []events.Event, t time.Time, n int) []events.Event {
	j := sort.Search(len(evs), func(i int) bool { return evs[i].Time.After(t) })
	i := max(0, j-n)
	return append([]events.Event(nil), evs[i:j]...)
}

// Summary is a short human verdict line for a finished run.
func Summary(sc *Scenario, res *reports.Results) string {
	counts := map[reports.Verdict]int{}
	for _, a := range res.Assertions {
		counts[a.Verdict]++
	}
	verdict := string(res.Verdict())
	switch {
	case res.Run.Status == reports.StatusTargetUnavailable || res.Run.Status == reports.StatusInterrupted:
		verdict = strings.ReplaceAll(string(res.Run.Status), "_", " ")
	case counts[reports.Skipped] == len(res.Assertions) && len(res.Assertions) > 0:
		verdict = string(reports.Skipped)
	}
	devs := ""
	if n := counts[reports.Deviation]; n > 0 {
		devs = fmt.Sprintf(", %d deviation%s", n, map[bool]string{true: "s"}[n > 1])
	}
	return fmt.Sprintf("%s: %s — %d passed, %d failed%s, %d errors, %d skipped in %s", sc.Name, verdict,
		counts[reports.Pass], counts[reports.Fail], devs, counts[reports.Error], counts[reports.Skipped],
		res.Run.Duration().Round(time.Millisecond))
}
