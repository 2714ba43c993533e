package scenarios

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/targets"
)

// moments are the times windows are computed from.
type moments struct {
	t0, end time.Time
	steps   map[string]time.Time
	// last is when the timeline's last step finished (zero when unknown).
	// Messages sent after it go out during the drain and teardown, where a
	// subscriber may already be leaving: delivery does not expect them
	// unless a window asks for them explicitly.
	last time.Time
}

// sendWindow is the window of sends a delivery check expects, for an
// assertion window w (nil: the whole timeline, not the drain after it).
func (m moments) sendWindow(w *Window) (span, error) {
	s, err := m.resolve(w)
	if err == nil && w == nil && !m.last.IsZero() {
		s.to = m.last
	}
	return s, err
}

// span is a resolved window [from, to].
type span struct{ from, to time.Time }

func (s span) has(t time.Time) bool { return !t.Before(s.from) && !t.After(s.to) }

// miss measures how far events outside s missed it — the figure a user
// reproducing a timer bug wants (a keepalive close 2.4 s late) — as
// "; the latest came 2.4s after the window closed" and/or the earliest
// before it opened. Empty when every event is inside.
func (s span) miss(evs []events.Event) string {
	var late, early time.Duration
	for _, e := range evs {
		if d := e.Time.Sub(s.to); d > late {
			late = d
		}
		if d := s.from.Sub(e.Time); d > early {
			early = d
		}
	}
	out := ""
	if early > 0 {
		out += fmt.Sprintf("; the earliest came %s before the window opened", early.Round(time.Millisecond))
	}
	if late > 0 {
		out += fmt.Sprintf("; the latest came %s after the window closed", late.Round(time.Millisecond))
	}
	return out
}

func (s span) String(t0 time.Time) string {
	return fmt.Sprintf("[%s, %s]", rel(s.from, t0), rel(s.to, t0))
}

// rel formats t relative to the timeline start, to the millisecond.
func rel(t, t0 time.Time) string {
	return fmt.Sprintf("%.3fs", t.Sub(t0).Seconds())
}

func (m moments) at(name string) (time.Time, error) {
	switch name {
	case "", "start":
		return m.t0, nil
	case "end":
		return m.end, nil
	}
	t, ok := m.steps[name]
	if !ok {
		return time.Time{}, fmt.Errorf("step %s never ran", name)
	}
	return t, nil
}

// resolve turns a Window into a span; nil is the whole run.
func (m moments) resolve(w *Window) (span, error) {
	if w == nil {
		return span{from: time.Time{}, to: m.end.Add(time.Hour)}, nil
	}
	a, err := m.at(w.After)
	if err != nil {
		return span{}, err
	}
	s := span{from: a.Add(w.From.D()), to: m.end}
	switch {
	case w.To != nil:
		s.to = a.Add(w.To.D())
	case w.Until != "":
		if s.to, err = m.at(w.Until); err != nil {
			return span{}, err
		}
	}
	return s, nil
}

// verdict collects an assertion's outcome.
type verdict struct {
	pass     bool
	msg      string
	evidence []events.Event
}

// bounds are the effective limits of one assertion on one target.
type bounds struct {
	eq, min, max *Value
}

func (b bounds) String(dur bool) string {
	f := func(v *Value) string {
		if dur {
			return v.dur.String()
		}
		return strconv.FormatFloat(v.num, 'g', -1, 64)
	}
	switch {
	case b.eq != nil:
		return "= " + f(b.eq)
	case b.min != nil && b.max != nil:
		return "in [" + f(b.min) + ", " + f(b.max) + "]"
	case b.min != nil:
		return ">= " + f(b.min)
	case b.max != nil:
		return "<= " + f(b.max)
	}
	return "any"
}

func (b bounds) holds(x float64) bool {
	const eps = 1e-9
	if b.eq != nil && math.Abs(x-b.eq.num) > eps {
		return false
	}
	if b.min != nil && x < b.min.num-eps {
		return false
	}
	if b.max != nil && x > b.max.num+eps {
		return false
	}
	return true
}

// evaluate checks every assertion over the recorded events.
func (r *runner) evaluate(evs []events.Event, m moments, counters map[string]int64) []reports.Assertion {
	var out []reports.Assertion
	for i := range r.sc.Assertions {
		a := &r.sc.Assertions[i]
		start := time.Now()
		ra := reports.Assertion{Name: a.Name, Statements: a.Statements}
		b := bounds{eq: a.Equals, min: a.Min, max: a.Max}
		record := a.Expect == ExpectRecord
		note := a.Note
		if o, ok := a.PerTarget[r.targetKind()]; ok {
			if o.Skip {
				ra.Verdict, ra.Message = reports.Skipped, "skipped on "+r.targetKind()
				if o.Note != "" {
					ra.Message += ": " + o.Note
				}
				out = append(out, ra)
				continue
			}
			if o.Equals != nil || o.Min != nil || o.Max != nil {
				b = bounds{eq: o.Equals, min: o.Min, max: o.Max}
			}
			record = record || o.Record
			if o.Within != nil {
				copyA := *a
				copyA.Within = o.Within
				a = &copyA
			}
			if o.Note != "" {
				note = o.Note
			}
		}
		v, err := r.check(a, b, evs, m, counters)
		switch {
		case err != nil:
			ra.Verdict, ra.Message = reports.Error, err.Error()
		case record:
			ra.Verdict, ra.Message = reports.Pass, "recorded: "+v.msg
		case v.pass:
			ra.Verdict, ra.Message = reports.Pass, v.msg
		default:
			ra.Verdict, ra.Message = reports.Fail, v.msg
			// The window stays the standard's; a miss the target is known
			// for is named as such, and counts only in a strict run.
			if d, ok := targets.Explains(r.deviationTable(), a.Statements); ok {
				ra.Deviation = &reports.KnownDeviation{Statement: d.Statement, Reason: d.Reason, Doc: d.Doc(), Strict: r.opts.Strict}
				if !r.opts.Strict {
					ra.Verdict = reports.Deviation
				}
			}
		}
		if note != "" {
			ra.Message += " — " + note
		}
		ra.Evidence = v.evidence
		ra.Duration = time.Since(start)
		out = append(out, ra)
	}
	return out
}

func (r *runner) check(a *Assertion, b bounds, evs []events.Event, m moments, counters map[string]int64) (verdict, error) {
	if a.Expect == ExpectCounter {
		n, ok := counters[a.Counter]
		if !ok && reports.IsRCCounter(a.Counter) {
			ok = true // a reason code never received counted 0 times
		}
		if !ok {
			names := make([]string, 0, len(counters))
			for k := range counters {
				names = append(names, k)
			}
			sort.Strings(names)
			return verdict{}, fmt.Errorf("no counter %q in the results (counters: %s)", a.Counter, strings.Join(names, ", "))
		}
		return verdict{pass: b.holds(float64(n)), msg: fmt.Sprintf("%s = %d (want %s)", a.Counter, n, b.String(false))}, nil
	}
	if a.Expect == ExpectDelivery {
		sends, err := m.sendWindow(a.During)
		if err != nil {
			return verdict{}, err
		}
		v, err := checkDelivery(a, evs, sends, m.t0)
		v.msg += r.sc.linkNote(a, evs, counters)
		return v, err
	}
	during, err := m.resolve(a.During)
	if err != nil {
		return verdict{}, err
	}
	match := a.Events.match()
	var sel []events.Event
	for _, e := range evs {
		if during.has(e.Time) && match(e) {
			sel = append(sel, e)
		}
	}
	switch a.Expect {
	case ExpectCount, ExpectRecord:
		return checkCount(a, b, sel, m)
	case ExpectRate:
		return checkRate(a, b, sel, during, m), nil
	case ExpectLatency:
		return checkLatency(a, b, sel), nil
	}
	return verdict{}, fmt.Errorf("unknown check %q", a.Expect)
}

// keyOf returns the value an event is split by.
func keyOf(per string, e events.Event) string {
	switch per {
	case "client":
		return e.ClientID
	case "topic":
		return e.Topic
	case "group":
		return e.Group
	case "device":
		return strconv.Itoa(e.Device)
	case "link":
		return e.Link
	case "code":
		return fmt.Sprintf("0x%02X", e.Code)
	}
	return ""
}

func checkCount(a *Assertion, b bounds, sel []events.Event, m moments) (verdict, error) {
	withinNote := ""
	if a.Within != nil {
		w, err := m.resolve(a.Within)
		if err != nil {
			return verdict{}, err
		}
		var outside []events.Event
		for _, e := range sel {
			if !w.has(e.Time) {
				outside = append(outside, e)
			}
		}
		anchor, _ := m.at(a.Within.After)
		name := a.Within.After
		if name == "" {
			name = "start"
		}
		spread := ""
		if len(sel) > 0 {
			spread = fmt.Sprintf("; they came %s..%s after %s", sel[0].Time.Sub(anchor).Round(time.Millisecond),
				sel[len(sel)-1].Time.Sub(anchor).Round(time.Millisecond), name)
		}
		win := fmt.Sprintf("%s+[%s, %s]", name, w.from.Sub(anchor), w.to.Sub(anchor))
		if len(outside) > 0 {
			return verdict{msg: fmt.Sprintf("%d of %d events outside %s%s%s", len(outside), len(sel), win, spread, w.miss(outside)),
				evidence: outside}, nil
		}
		if a.Equals == nil && a.Min == nil && a.Max == nil && b.eq == nil && b.min == nil && b.max == nil {
			return verdict{pass: len(sel) > 0, msg: fmt.Sprintf("%d events, all within %s%s", len(sel), win, spread), evidence: sel}, nil
		}
		withinNote = fmt.Sprintf(", all within %s%s", win, spread)
	}
	if a.Per == "" {
		n := float64(len(sel))
		v := verdict{pass: b.holds(n), evidence: sel}
		v.msg = fmt.Sprintf("%d events (want %s)", len(sel), b.String(false))
		if withinNote != "" {
			v.msg += withinNote
		} else if len(sel) > 0 {
			v.msg += fmt.Sprintf(", first at %s", rel(sel[0].Time, m.t0))
		}
		return v, nil
	}
	byKey := map[string][]events.Event{}
	var order []string
	for _, e := range sel {
		k := keyOf(a.Per, e)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], e)
	}
	var bad []string
	var evidence []events.Event
	hist := map[int]int{}
	for _, k := range order {
		n := len(byKey[k])
		hist[n]++
		if !b.holds(float64(n)) {
			bad = append(bad, fmt.Sprintf("%s: %d", k, n))
			evidence = append(evidence, byKey[k]...)
		}
	}
	v := verdict{pass: len(bad) == 0}
	v.msg = fmt.Sprintf("%d %ss; events per %s: %s (want %s each)%s", len(order), a.Per, a.Per, histString(hist), b.String(false), withinNote)
	if a.Per == "code" {
		// A handful of reason codes: say which, so the verdict reads alone.
		var codes []string
		for _, k := range order {
			codes = append(codes, fmt.Sprintf("%s x%d", k, len(byKey[k])))
		}
		v.msg += "; codes: " + strings.Join(firstN(codes, 10), ", ")
	}
	if a.Keys != nil && len(order) != *a.Keys {
		v.pass = false
		v.msg += fmt.Sprintf("; want %d %ss, got %d", *a.Keys, a.Per, len(order))
	}
	if len(bad) > 0 {
		v.msg += "; off: " + strings.Join(firstN(bad, 5), ", ")
		v.evidence = evidence
	} else {
		v.evidence = sel
	}
	return v, nil
}

// histString formats "count x keys" pairs: "1 x10, 2 x1".
func histString(h map[int]int) string {
	if len(h) == 0 {
		return "none"
	}
	var ns []int
	for n := range h {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	var parts []string
	for _, n := range ns {
		parts = append(parts, fmt.Sprintf("%d (x%d)", n, h[n]))
	}
	return strings.Join(parts, ", ")
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... %d more", len(s)-n))
	}
	return s
}

// checkRate buckets events into whole seconds from the window's start.
// With min, some run of consecutive seconds at least For long (the whole
// window when For is 0) must each see at least min events; with max, no
// second may see more than max.
func checkRate(a *Assertion, b bounds, sel []events.Event, during span, m moments) verdict {
	from := during.from
	if from.IsZero() {
		from = m.t0
	}
	to := during.to
	if to.After(m.end) {
		to = m.end
	}
	n := int(math.Ceil(to.Sub(from).Seconds()))
	if n < 1 {
		n = 1
	}
	counts := make([]int, n)
	for _, e := range sel {
		i := int(e.Time.Sub(from) / time.Second)
		if i >= 0 && i < n {
			counts[i]++
		}
	}
	peak, peakAt := 0, 0
	for i, c := range counts {
		if c > peak {
			peak, peakAt = c, i
		}
	}
	v := verdict{pass: true}
	var msgs []string
	if b.min != nil {
		need := int(math.Ceil(a.For.D().Seconds()))
		if need == 0 {
			need = n
		}
		best, bestStart, run, runStart := 0, 0, 0, 0
		for i, c := range counts {
			if float64(c) >= b.min.num {
				if run == 0 {
					runStart = i
				}
				run++
				if run > best {
					best, bestStart = run, runStart
				}
			} else {
				run = 0
			}
		}
		ok := best >= need
		v.pass = v.pass && ok
		msgs = append(msgs, fmt.Sprintf("longest run at >= %g/s: %ds from %s (want %ds)", b.min.num, best,
			rel(from.Add(time.Duration(bestStart)*time.Second), m.t0), need))
		lo, hi := from.Add(time.Duration(bestStart)*time.Second), from.Add(time.Duration(bestStart+best)*time.Second)
		for _, e := range sel {
			if !e.Time.Before(lo) && e.Time.Before(hi) {
				v.evidence = append(v.evidence, e)
			}
		}
	}
	if b.max != nil {
		// A ceiling is checked over every 1 s window, not only whole-second
		// buckets: a burst split by a bucket boundary must not pass as half.
		speak, at := slidingPeak(sel, time.Second)
		ok := float64(speak) <= b.max.num
		v.pass = v.pass && ok
		msgs = append(msgs, fmt.Sprintf("peak %d in any 1s window, from %s (want <= %g/s)", speak, rel(at, m.t0), b.max.num))
		if !ok || v.evidence == nil {
			v.evidence = nil
			for _, e := range sel {
				if !e.Time.Before(at) && e.Time.Before(at.Add(time.Second)) {
					v.evidence = append(v.evidence, e)
				}
			}
		}
	}
	_ = peakAt
	v.msg = fmt.Sprintf("%d events over %ds, busiest second %d; ", len(sel), n, peak) + strings.Join(msgs, "; ")
	return v
}

// checkLatency checks a percentile of the events' latencies; the evidence
// is the slowest events.
func checkLatency(a *Assertion, b bounds, sel []events.Event) verdict {
	var lat []events.Event
	for _, e := range sel {
		if e.Latency > 0 {
			lat = append(lat, e)
		}
	}
	if len(lat) == 0 {
		return verdict{msg: fmt.Sprintf("no latency samples among %d matching events", len(sel))}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i].Latency < lat[j].Latency })
	idx := int(math.Ceil(a.Percentile/100*float64(len(lat)))) - 1
	idx = max(0, min(idx, len(lat)-1))
	p := lat[idx].Latency
	ok := (b.max == nil || p <= b.max.dur) && (b.min == nil || p >= b.min.dur)
	msg := fmt.Sprintf("p%g = %s over %d samples (max %s; want %s)", a.Percentile, p.Round(time.Microsecond), len(lat),
		lat[len(lat)-1].Latency.Round(time.Microsecond), b.String(true))
	slow := lat[idx:]
	if len(slow) > reports.MaxEvidence {
		slow = slow[len(slow)-reports.MaxEvidence:]
	}
	ev := make([]events.Event, len(slow))
	for i := range slow {
		ev[i] = slow[len(slow)-1-i]
	}
	return verdict{pass: ok, msg: msg, evidence: ev}
}

// slidingPeak returns the most events in any window of length w (events
// sorted by time) and where that window starts.
func slidingPeak(sel []events.Event, w time.Duration) (int, time.Time) {
	best, at, j := 0, time.Time{}, 0
	for i := range sel {
		for sel[i].Time.Sub(sel[j].Time) >= w {
			j++
		}
		if n := i - j + 1; n > best {
			best, at = n, sel[j].Time
		}
	}
	return best, at
}
