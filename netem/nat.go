package netem

import (
	"net"
	"sort"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// A carrier NAT keeps a mapping per connection and forgets it after a spell
// of silence. nat_idle models that: once a link has been silent both ways for
// longer than Idle, nothing passes either way any more — no bytes, no FIN, no
// RST — so both ends are half-open and learn of it only by their own timers.
// The link stays forgotten after the fault is removed: a mapping never comes
// back for the same connection.

// watchNAT starts (or retimes) the idle check of a link. Caller holds Proxy.mu.
func (l *link) watchNAT(idle time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aborted() || l.natGone.Load() {
		return
	}
	l.lastActive.Store(time.Now().UnixNano())
	l.natIdle = idle
	if l.nat != nil {
		l.nat.Stop()
	}
	// The timer's function runs on a runtime goroutine; it only reads the
	// clock, flips a flag and emits one event, and abort or unwatchNAT stop it.
	l.nat = time.AfterFunc(idle, l.natCheck)
}

// unwatchNAT stops the idle check (the fault was removed).
func (l *link) unwatchNAT() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nat != nil {
		l.nat.Stop()
		l.nat = nil
	}
}

// natCheck forgets the link if it has been idle long enough, or checks again
// when it would have been.
func (l *link) natCheck() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nat == nil || l.aborted() || l.natGone.Load() {
		return
	}
	idle := time.Since(time.Unix(0, l.lastActive.Load()))
	if idle < l.natIdle {
		l.nat = time.AfterFunc(l.natIdle-idle, l.natCheck)
		return
	}
	l.nat = nil
	l.natGone.Store(true)
	l.p.log.Info("nat mapping expired", "link", l.id, "idle", idle.Round(time.Millisecond))
	l.p.sink.Emit(events.Stamp(events.Event{Kind: events.Log, Link: l.id, Group: l.group, Remote: l.remote,
		Fault: string(NATIdle), Detail: "nat mapping expired after " + idle.Round(time.Millisecond).String() +
			" idle: the link is half-open both ways"}, events.SourceNetem))
}

// rebind re-originates the broker side of a link, as a NAT that gives the
// device's flow a new source port: the proxy dials the broker again and the
// device's next bytes go on the new connection, which the broker sees as a
// new client (mid-stream, so it usually closes it, and the device learns of
// that by the FIN). The old broker connection is left open and unread —
// half-open as the broker sees it — until the link closes. Runs on its own
// goroutine: dialling must not happen under Proxy.mu.
func (p *Proxy) rebind(l *link, faultID string) {
	d := net.Dialer{Timeout: p.cfg.DialTimeout}
	c, err := d.DialContext(p.ctx, "tcp", p.cfg.Upstream)
	if err != nil {
		l.abort(true, events.CauseFault, "nat_rebind "+faultID+": dial upstream: "+err.Error())
		return
	}
	sc := c.(*net.TCPConn)
	l.mu.Lock()
	if l.aborted() {
		l.mu.Unlock()
		sc.Close()
		return
	}
	old := l.server
	l.orphans = append(l.orphans, old)
	l.server = sc
	// Readers blocked on a socket wake with a read deadline in the past and
	// take the new connection (pipe.readEnd): the downstream reader reads
	// from it, the upstream one writes to it.
	l.up.dst.Store(sc)
	l.down.swapSrc.Store(sc)
	l.up.wake.Store(true)
	l.down.wake.Store(true)
	past := time.Unix(1, 0)
	l.client.SetReadDeadline(past)
	old.SetReadDeadline(past)
	l.mu.Unlock()
	p.log.Info("nat rebind", "link", l.id, "old", old.LocalAddr().String(), "new", sc.LocalAddr().String())
	p.sink.Emit(events.Stamp(events.Event{Kind: events.Log, Link: l.id, Group: l.group, Remote: l.remote,
		Fault: string(NATRebind), Detail: "nat_rebind " + faultID + ": broker side moved from " +
			old.LocalAddr().String() + " to " + sc.LocalAddr().String()}, events.SourceNetem))
}

// LinkCounts is what the packet and NAT faults did to one link, live or closed.
type LinkCounts struct {
	ID     string `json:"id"`
	Group  string `json:"group"`
	Closed bool   `json:"closed,omitempty"`
	Up     Counts `json:"up"`   // device -> broker
	Down   Counts `json:"down"` // broker -> device
}

// CountsReport is GET /counts: per link (only links some fault counted on)
// and the sums per direction.
type CountsReport struct {
	Links []LinkCounts `json:"links"`
	Up    Counts       `json:"up"`
	Down  Counts       `json:"down"`
}

// Counts reports what loss, duplicate, reorder and NAT faults did, per link
// and direction, over the proxy's life (closed links included).
func (p *Proxy) Counts() CountsReport {
	p.mu.Lock()
	out := CountsReport{Links: append([]LinkCounts(nil), p.closedCounts...)}
	for _, l := range p.links {
		lc := l.counts()
		if !lc.Up.Zero() || !lc.Down.Zero() {
			out.Links = append(out.Links, lc)
		}
	}
	p.mu.Unlock()
	sort.Slice(out.Links, func(i, j int) bool { return idLess(out.Links[i].ID, out.Links[j].ID) })
	for _, lc := range out.Links {
		out.Up, out.Down = out.Up.Add(lc.Up), out.Down.Add(lc.Down)
	}
	return out
}

func (l *link) counts() LinkCounts {
	return LinkCounts{ID: l.id, Group: l.group, Up: l.up.counts.snapshot(), Down: l.down.counts.snapshot()}
}

// Counters names the totals as results counters: netem_packets,
// netem_dropped, netem_duplicated, netem_reordered and netem_nat_dropped,
// each also with _up and _down (docs/results.md).
func (c CountsReport) Counters() map[string]int64 {
	out := map[string]int64{}
	for _, d := range []struct {
		suffix string
		c      Counts
	}{{"", c.Up.Add(c.Down)}, {"_up", c.Up}, {"_down", c.Down}} {
		out["netem_packets"+d.suffix] = d.c.Packets
		out["netem_dropped"+d.suffix] = d.c.Dropped
		out["netem_duplicated"+d.suffix] = d.c.Duplicated
		out["netem_reordered"+d.suffix] = d.c.Reordered
		out["netem_nat_dropped"+d.suffix] = d.c.NATDropped
	}
	return out
}
