package netem

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
)

// TestOneShotFaultsEmitRemoved: a fault that acts once on a link (reset,
// close, close_after once its budget is spent) emits FaultRemoved for that
// link after its FaultInjected, so a Collector shows its window closed
// rather than on until the end of the run.
func TestOneShotFaultsEmitRemoved(t *testing.T) {
	cases := []struct {
		name   string
		sel    func(l tlink) Selector
		f      Fault
		listed int // entries Faults() keeps afterwards
	}{
		{"reset", func(l tlink) Selector { return ByLink(l.id) }, Fault{Kind: Reset}, 0},
		{"close", func(tlink) Selector { return ByGroup("127.0.0.1") }, Fault{Kind: Close}, 0},
		{"scheduled reset", func(l tlink) Selector { return ByLink(l.id) }, Fault{Kind: Reset, Start: 50 * time.Millisecond}, 0},
		// close_after stays applied for links yet to open; its window on
		// this link closes with the link.
		{"close_after", func(tlink) Selector { return AllLinks() }, Fault{Kind: CloseAfter, Direction: Upstream, Bytes: 4}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := withUpstream(t)
			rec := events.NewRecorder()
			px := withProxy(t, u.addr(), rec)
			l := dialLink(t, px, u, rec)
			mustApply(t, px, tc.sel(l), tc.f)
			if tc.f.Kind == CloseAfter {
				if _, err := l.device.Write([]byte("0123456789")); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			onLink := func(k events.Kind) events.Match {
				return events.And(events.Is(k), func(e events.Event) bool { return e.Link == l.id })
			}
			removed, err := rec.WaitFor(5*time.Second, onLink(events.FaultRemoved))
			if err != nil {
				t.Fatalf("no FaultRemoved for %s: %v", l.id, err)
			}
			if removed.Fault != string(tc.f.Kind) || removed.Source != events.SourceNetem {
				t.Fatalf("FaultRemoved %+v, want fault %s from netem", removed, tc.f.Kind)
			}
			if _, err := rec.WaitFor(5*time.Second, onLink(events.LinkClosed)); err != nil {
				t.Fatalf("link %s not closed: %v", l.id, err)
			}
			var injected, removedN int
			for _, e := range rec.Events() {
				switch {
				case e.Link != l.id:
				case e.Kind == events.FaultInjected:
					injected++
				case e.Kind == events.FaultRemoved:
					removedN++
					if injected != 1 {
						t.Fatalf("FaultRemoved before its FaultInjected")
					}
				}
			}
			if injected != 1 || removedN != 1 {
				t.Fatalf("%d FaultInjected, %d FaultRemoved on %s; want 1 and 1", injected, removedN, l.id)
			}
			fs := px.Faults()
			if len(fs) != tc.listed || (len(fs) == 1 && fs[0].Links != 0) {
				t.Fatalf("Faults() = %+v, want %d entries on no link", fs, tc.listed)
			}
			col := reports.NewCollector(reports.KindScenario, reports.Run{Name: tc.name})
			for _, e := range rec.Events() {
				col.Emit(e)
			}
			res := col.Results()
			if len(res.Faults) != 1 || res.Faults[0].Open || res.Faults[0].Link != l.id {
				t.Fatalf("fault windows %+v, want one closed window on %s", res.Faults, l.id)
			}
		})
	}
}

// TestFaultWindowEndsWithLink: a lasting fault (latency) on a link whose
// ends then hang up gets its FaultRemoved for that link when the link goes,
// while the fault stays applied for other links, and a Collector shows the
// window on that link closed.
func TestFaultWindowEndsWithLink(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	mustApply(t, px, AllLinks(), Fault{Kind: Latency, Latency: 10 * time.Millisecond})
	onLink := func(k events.Kind) events.Match {
		return events.And(events.Is(k), func(e events.Event) bool { return e.Link == l.id })
	}
	if _, err := rec.WaitFor(5*time.Second, onLink(events.FaultInjected)); err != nil {
		t.Fatalf("no FaultInjected on %s: %v", l.id, err)
	}
	if n := rec.Count(onLink(events.FaultRemoved)); n != 0 {
		t.Fatalf("%d FaultRemoved on a live link", n)
	}
	// Both ends hang up (the proxy passes a FIN on and keeps the link while
	// the other direction is open).
	l.device.Close()
	l.broker.Close()
	if _, err := rec.WaitFor(5*time.Second, onLink(events.LinkClosed)); err != nil {
		t.Fatalf("link %s not closed: %v", l.id, err)
	}
	removed, err := rec.WaitFor(5*time.Second, onLink(events.FaultRemoved))
	if err != nil {
		t.Fatalf("no FaultRemoved for %s after it closed: %v", l.id, err)
	}
	if removed.Fault != string(Latency) {
		t.Fatalf("FaultRemoved %+v, want latency", removed)
	}
	if fs := px.Faults(); len(fs) != 1 || fs[0].Links != 0 {
		t.Fatalf("Faults() = %+v, want the latency fault still applied, on no link", fs)
	}
	col := reports.NewCollector(reports.KindScenario, reports.Run{Name: "window ends with link"})
	for _, e := range rec.Events() {
		col.Emit(e)
	}
	res := col.Results()
	if len(res.Faults) != 1 || res.Faults[0].Open || res.Faults[0].Link != l.id {
		t.Fatalf("fault windows %+v, want one closed window on %s", res.Faults, l.id)
	}
}
