package scenarios

import (
	"strings"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// collectorFeed prepares events for the reports.Collector, whose results
// people read: a fault applied to a group is one window for the group, not
// one per link (a reset of a 5,000-device wave would otherwise list 5,000
// rows), and a one-shot reset or close is a window that ends where it
// starts (netem never reports removing it). Sequence numbers are dropped:
// the Collector's own loss count assumes one run and one publisher per
// topic, and delivery assertions do that accounting properly.
type collectorFeed struct {
	next events.Sink

	mu     sync.Mutex
	open   map[faultWindowKey]int       // links holding the fault, per group window
	bursts map[faultWindowKey]time.Time // last one-shot forwarded, per group
}

type faultWindowKey struct{ group, direction, fault string }

// burst is how close one-shot faults on a group's links must be to count
// as one: they come from one Apply.
const burst = time.Second

func newCollectorFeed(next events.Sink) *collectorFeed {
	return &collectorFeed{next: next, open: map[faultWindowKey]int{}, bursts: map[faultWindowKey]time.Time{}}
}

// Emit forwards e to the Collector, folding per-link fault events.
func (f *collectorFeed) Emit(e events.Event) {
	e.Seq = 0
	if e.Source != events.SourceNetem || (e.Kind != events.FaultInjected && e.Kind != events.FaultRemoved) || e.Group == "" {
		f.next.Emit(e)
		return
	}
	group, _, _ := strings.Cut(e.Group, "#") // a device's link group belongs to its group
	k := faultWindowKey{group, e.Direction, e.Fault}
	e.Group, e.Link = group, ""
	f.mu.Lock()
	forward, synthetic := false, false
	switch {
	case e.Kind == events.FaultInjected && (e.Fault == "reset" || e.Fault == "close"):
		last, seen := f.bursts[k]
		forward = !seen || e.Time.Sub(last) > burst
		synthetic = forward
		f.bursts[k] = e.Time
	case e.Kind == events.FaultInjected:
		f.open[k]++
		forward = f.open[k] == 1
	case f.open[k] > 0:
		f.open[k]--
		forward = f.open[k] == 0
		if forward {
			delete(f.open, k)
		}
	}
	f.mu.Unlock()
	if forward {
		f.next.Emit(e)
	}
	if synthetic {
		off := e
		off.Kind = events.FaultRemoved
		f.next.Emit(off)
	}
}
