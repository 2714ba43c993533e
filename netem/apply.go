package netem

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// ErrUnknownFault is returned by Remove for an ID that is not (or no longer) applied.
var ErrUnknownFault = errors.New("netem: unknown fault")

// ErrUnknownLink is returned by Apply for a ByLink selector naming no live
// link: a link ID never comes back, so such a fault could never act.
var ErrUnknownLink = errors.New("netem: unknown link")

// faultEntry is an applied fault. Its fields are guarded by Proxy.mu.
type faultEntry struct {
	id      string
	sel     Selector
	f       Fault
	applied time.Time
	active  bool           // between activation and deactivation
	links   map[*link]bool // links it is attached to now
	stop    chan struct{}  // closed by Remove: ends the schedule
}

// FaultInfo describes an applied fault.
type FaultInfo struct {
	ID       string    `json:"id"`
	Selector Selector  `json:"selector"`
	Fault    Fault     `json:"fault"`
	Applied  time.Time `json:"applied"`
	Active   bool      `json:"active"` // false while a schedule waits between activations
	Links    int       `json:"links"`  // links it is attached to now
}

// Apply applies f to the links sel matches, now and as they open, and returns
// the fault's ID for Remove. A fault without a schedule acts at once on live
// links: a link already forwarding starts blackholing with its next read.
// Reset and Close without a Duration act once on the links present and are
// then done (their ID is not listed afterwards). Every FaultInjected event has
// its FaultRemoved for the same link and fault: Remove and a schedule's end
// emit it; Reset and Close emit it right after acting on a link; CloseAfter
// emits it when the link it was attached to closes (its budget ran out, or
// the link ended first).
func (p *Proxy) Apply(sel Selector, f Fault) (string, error) {
	if err := sel.Validate(); err != nil {
		return "", fmt.Errorf("netem: apply: %w", err)
	}
	if err := f.Validate(); err != nil {
		return "", fmt.Errorf("netem: apply: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return "", errors.New("netem: apply: proxy closed")
	}
	if sel.Link != "" && p.links[sel.Link] == nil {
		return "", fmt.Errorf("%w %q", ErrUnknownLink, sel.Link)
	}
	p.nextFault++
	e := &faultEntry{id: "f" + strconv.FormatUint(p.nextFault, 10), sel: sel, f: f, applied: time.Now(),
		links: map[*link]bool{}, stop: make(chan struct{})}
	p.faults = append(p.faults, e)
	p.log.Info("fault applied", "id", e.id, "selector", sel.String(), "fault", f.String())
	if f.scheduled() {
		p.goroutine(func() { p.schedule(e) })
		return e.id, nil
	}
	p.activate(e)
	if f.Kind.oneShot() {
		p.drop(e)
	}
	return e.id, nil
}

// Remove detaches a fault from every link and ends its schedule.
func (p *Proxy) Remove(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.faults {
		if e.id == id {
			p.deactivate(e)
			p.drop(e)
			p.log.Info("fault removed", "id", id)
			return nil
		}
	}
	return fmt.Errorf("%w %q", ErrUnknownFault, id)
}

// Faults lists the applied faults in the order they were applied.
func (p *Proxy) Faults() []FaultInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]FaultInfo, 0, len(p.faults))
	for _, e := range p.faults {
		out = append(out, FaultInfo{ID: e.id, Selector: e.sel, Fault: e.f, Applied: e.applied,
			Active: e.active, Links: len(e.links)})
	}
	return out
}

// drop forgets an entry and ends its schedule. Caller holds p.mu.
func (p *Proxy) drop(e *faultEntry) {
	for i, x := range p.faults {
		if x == e {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
			close(e.stop)
			return
		}
	}
}

// activate attaches e to every live link it matches. Caller holds p.mu.
func (p *Proxy) activate(e *faultEntry) {
	e.active = true
	for _, l := range p.links {
		if e.sel.matches(l) {
			p.attach(e, l)
		}
	}
}

// deactivate detaches e from its links. Caller holds p.mu.
func (p *Proxy) deactivate(e *faultEntry) {
	if !e.active {
		return
	}
	e.active = false
	for l := range e.links {
		for _, pp := range []*pipe{l.up, l.down} {
			if e.f.dir().has(pp.dir) {
				pp.remove(e.id)
			}
		}
		if e.f.Kind == NATIdle {
			l.unwatchNAT()
		}
		delete(l.faultIDs, e.id)
		p.emitFault(events.FaultRemoved, e, l)
	}
	clear(e.links)
}

// attach puts e on one link if the link falls in e's share. Reset and Close
// act here and attach nothing. Caller holds p.mu.
func (p *Proxy) attach(e *faultEntry, l *link) {
	if !inShare(p.cfg.Seed, e.id, e.f.Share, l.group, l.ordinal) || l.aborted() {
		return
	}
	p.emitFault(events.FaultInjected, e, l)
	switch e.f.Kind {
	case Reset, Close, NATRebind:
		switch e.f.Kind {
		case Reset:
			resetLink(l, e.id)
		case Close:
			closeLink(l, e.id)
		default:
			id := e.id
			p.goroutine(func() { p.rebind(l, id) })
		}
		// The fault has done its work on this link at once: its window
		// there closes now (near zero length), so a collector pairing
		// FaultInjected with FaultRemoved does not show it on till the end.
		p.emitFault(events.FaultRemoved, e, l)
		return
	}
	for _, pp := range []*pipe{l.up, l.down} {
		if e.f.dir().has(pp.dir) {
			pp.add(e.id, e.f)
		}
	}
	if e.f.Kind == NATIdle {
		l.watchNAT(e.f.Idle)
	}
	e.links[l] = true
	l.faultIDs[e.id] = true
}

func (p *Proxy) emitFault(k events.Kind, e *faultEntry, l *link) {
	p.sink.Emit(events.Stamp(events.Event{Kind: k, Link: l.id, Group: l.group, Remote: l.remote,
		Direction: string(e.f.dir()), Fault: string(e.f.Kind), Detail: e.id + " " + e.f.String()}, events.SourceNetem))
}

// schedule runs a fault's timeline: wait Start, be active for Duration (or
// until removed), and repeat every Every. Activations are counted from Apply,
// so a slow activation never shifts the ones after it.
func (p *Proxy) schedule(e *faultEntry) {
	t0 := e.applied
	for k := 0; ; k++ {
		on := t0.Add(e.f.Start + time.Duration(k)*e.f.Every)
		if !p.waitUntil(on, e.stop) {
			return
		}
		p.mu.Lock()
		p.activate(e)
		if e.f.Duration == 0 {
			if e.f.Kind.oneShot() {
				p.drop(e)
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if !p.waitUntil(on.Add(e.f.Duration), e.stop) {
			return
		}
		p.mu.Lock()
		p.deactivate(e)
		if e.f.Every == 0 {
			p.drop(e)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// waitUntil waits for t; false when stop closes or the proxy closes first.
func (p *Proxy) waitUntil(t time.Time, stop <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-stop:
		return false
	case <-p.ctx.Done():
		return false
	}
}
