package netem

import (
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// link is one proxied connection: the device's socket (client), the socket to
// the broker (server) and one pipe per direction.
type link struct {
	p       *Proxy
	id      string
	group   string
	ordinal int // 1-based count of links in the group when this one opened
	remote  string
	opened  time.Time

	mu             sync.Mutex // guards server and orphans (nat_rebind swaps server) and nat
	client, server *net.TCPConn
	orphans        []*net.TCPConn // broker connections a nat_rebind left behind, closed with the link
	up, down       *pipe

	lastActive atomic.Int64 // unix ns of the last read either way, while a nat_idle fault watches
	natGone    atomic.Bool  // a nat_idle fault forgot the link: nothing passes any more
	nat        *time.Timer  // the nat_idle check; guarded by mu
	natIdle    time.Duration

	done      chan struct{} // closed when the link is torn down on purpose
	closeOnce sync.Once
	running   atomic.Int32 // goroutines still using the link; the last one finishes it

	cause  events.Cause // why the link was torn down; set once, before done closes
	detail string

	faultIDs map[string]bool // attached faults; guarded by p.mu
}

func newLink(p *Proxy, id, group string, ordinal int, c, sc *net.TCPConn) *link {
	l := &link{p: p, id: id, group: group, ordinal: ordinal, remote: c.RemoteAddr().String(), opened: time.Now(),
		client: c, server: sc, done: make(chan struct{}), faultIDs: map[string]bool{}}
	// Jitter samples are reproducible per link for a given seed and group ordinal.
	seed := uint64(p.cfg.Seed)
	for _, b := range []byte(group) {
		seed = seed*1099511628211 + uint64(b)
	}
	l.up = newPipe(l, Upstream, c, sc, seed, uint64(ordinal)<<1)
	l.down = newPipe(l, Downstream, sc, c, seed, uint64(ordinal)<<1|1)
	l.running.Store(2) // the two readers; delivery goroutines add themselves
	return l
}

// abort tears the link down: with rst both peers see a connection reset,
// otherwise a FIN (or an RST where the kernel still holds unread bytes).
func (l *link) abort(rst bool, cause events.Cause, detail string) {
	l.closeOnce.Do(func() {
		l.cause, l.detail = cause, detail
		close(l.done)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.nat != nil {
			l.nat.Stop()
			l.nat = nil
		}
		if rst {
			l.client.SetLinger(0)
			l.server.SetLinger(0)
		}
		l.client.Close()
		l.server.Close()
		for _, o := range l.orphans {
			o.Close()
		}
	})
}

// aborted reports whether abort has run.
func (l *link) aborted() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// exit is called by every goroutine of the link as it returns; the last one
// closes both sockets and reports the link closed.
func (l *link) exit() {
	if l.running.Add(-1) != 0 {
		return
	}
	l.abort(false, "", "both directions ended")
	l.p.unregister(l)
	l.p.sink.Emit(events.Stamp(events.Event{Kind: events.LinkClosed, Link: l.id, Group: l.group, Remote: l.remote,
		Cause: l.cause, Detail: l.detail}, events.SourceNetem))
}

// LinkInfo describes a live link.
type LinkInfo struct {
	ID        string    `json:"id"`
	Group     string    `json:"group"`
	Remote    string    `json:"remote"` // the device's address as the proxy sees it
	Opened    time.Time `json:"opened"`
	Up        int64     `json:"up_bytes"`            // bytes delivered to the broker
	Down      int64     `json:"down_bytes"`          // bytes delivered to the device
	Discarded int64     `json:"discarded,omitempty"` // bytes a blackhole swallowed, both ways
	Faults    []string  `json:"faults,omitempty"`    // IDs of faults attached now
	// What loss, duplicate, reorder and NAT faults did, per direction.
	UpCounts   Counts `json:"up_counts"`
	DownCounts Counts `json:"down_counts"`
}

func (l *link) info() LinkInfo {
	li := LinkInfo{ID: l.id, Group: l.group, Remote: l.remote, Opened: l.opened,
		Up: l.up.delivered.Load(), Down: l.down.delivered.Load(),
		Discarded: l.up.discarded.Load() + l.down.discarded.Load(),
		UpCounts:  l.up.counts.snapshot(), DownCounts: l.down.counts.snapshot()}
	for id := range l.faultIDs {
		li.Faults = append(li.Faults, id)
	}
	sort.Slice(li.Faults, func(i, j int) bool { return idLess(li.Faults[i], li.Faults[j]) })
	return li
}

// Links lists the live links in the order they opened.
func (p *Proxy) Links() []LinkInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]LinkInfo, 0, len(p.links))
	for _, l := range p.links {
		out = append(out, l.info())
	}
	sort.Slice(out, func(i, j int) bool { return idLess(out[i].ID, out[j].ID) })
	return out
}

// idLess orders IDs like "l2" before "l10".
func idLess(a, b string) bool {
	if len(a) > 1 && len(b) > 1 {
		na, ea := strconv.Atoi(a[1:])
		nb, eb := strconv.Atoi(b[1:])
		if ea == nil && eb == nil {
			return na < nb
		}
	}
	return a < b
}
