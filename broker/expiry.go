package broker

import (
	"container/heap"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Broker timers (MQTT 5.0): an offline session with a finite Session Expiry
// Interval and a will waiting out its Will Delay Interval are each queued in
// one min-heap by the time they are due; one goroutine (started with the
// first entry, stopped by Close) sleeps on one timer until the earliest and
// acts on the entries due: it drops the session [MQTT-4.1.0-2] or publishes
// the will [MQTT-3.1.2-8]. No goroutine or timer per session or will.
// Everything here is guarded by Broker.mu, like the session map.

// expiryQueue is the heap of timed entries.
type expiryQueue struct {
	h       expiryHeap
	wake    chan struct{} // tells the goroutine that the earliest time moved
	running bool
}

// timerEntry is one thing the timer goroutine does at a time: end a session
// (session.exp) or publish its delayed will (session.willT).
type timerEntry struct {
	at   time.Duration // on the broker clock
	idx  int           // index+1 in the heap; 0: not queued
	s    *session
	will bool // publish s's pending will, else expire s
}

type expiryHeap []*timerEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i+1, j+1
}
func (h *expiryHeap) Push(x any) {
	e := x.(*timerEntry)
	*h = append(*h, e)
	e.idx = len(*h)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = 0
	return e
}

// pendingWill is a will that waits out its Will Delay Interval after its
// connection closed. Guarded by Broker.mu.
type pendingWill struct {
	w        *packet.Will
	user     string
	clientID string
	cause    events.Cause // why the connection ended
}

// schedule queues e to be due at (broker clock). b.mu is held.
func (b *Broker) schedule(e *timerEntry, at time.Duration) {
	q := &b.expiry
	e.at = at
	if e.idx > 0 {
		heap.Fix(&q.h, e.idx-1)
	} else {
		heap.Push(&q.h, e)
	}
	if !q.running {
		if b.closed {
			return // sessions end with the broker anyway
		}
		q.running = true
		q.wake = make(chan struct{}, 1)
		// The caller is a goroutine counted in b.wg (a connection's reader),
		// so Add cannot race with Close's Wait at zero.
		b.wg.Add(1)
		go b.expiryLoop(q.wake)
		return
	}
	if q.h[0] == e {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// unschedule takes e out of the queue. b.mu is held.
func (b *Broker) unschedule(e *timerEntry) {
	if e.idx > 0 {
		heap.Remove(&b.expiry.h, e.idx-1)
	}
	e.at = 0
}

// scheduleExpiry queues s to end at (broker clock). b.mu is held.
func (b *Broker) scheduleExpiry(s *session, at time.Duration) {
	s.exp.s = s
	b.schedule(&s.exp, at)
}

// unscheduleExpiry takes s out of the queue (it reconnected or was dropped).
// b.mu is held.
func (b *Broker) unscheduleExpiry(s *session) { b.unschedule(&s.exp) }

// deferWill makes w the pending will of s, published after delay seconds
// unless a new connection for the client ID comes first [MQTT-3.1.3-9] or
// sooner if the session ends [MQTT-3.1.2-8]. It reports false, and queues
// nothing, when the broker is closing (the session ends now). b.mu is held.
func (b *Broker) deferWill(s *session, pw *pendingWill, delay uint32) bool {
	if b.closed {
		return false
	}
	s.will = pw
	s.willT.s, s.willT.will = s, true
	b.schedule(&s.willT, b.since()+time.Duration(delay)*time.Second)
	return true
}

// takeWill removes the pending will of s, if any, and returns it. b.mu is held.
func (b *Broker) takeWill(s *session) *pendingWill {
	pw := s.will
	if pw != nil {
		s.will = nil
		b.unschedule(&s.willT)
	}
	return pw
}

// setExpiry changes the interval of s (DISCONNECT from a 5.0 client).
func (b *Broker) setExpiry(s *session, expiry uint32) {
	b.mu.Lock()
	s.expiry = expiry
	s.persistSetExpiry(expiry)
	b.mu.Unlock()
}

// expiryLoop drops sessions whose expiry time passed and publishes wills
// whose delay passed, sleeping until the earliest, until the broker closes;
// then it publishes the wills still waiting: their sessions end with it.
func (b *Broker) expiryLoop(wake <-chan struct{}) {
	defer b.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var expired []string
	var wills []*pendingWill
	for {
		b.mu.Lock()
		now := b.since()
		next := time.Duration(-1)
		q := &b.expiry
		for q.h.Len() > 0 {
			e := q.h[0]
			if e.at > now {
				next = e.at - now
				break
			}
			heap.Pop(&q.h)
			s := e.s
			if e.will {
				if s.will != nil {
					wills = append(wills, s.will)
					s.will = nil
				}
				continue
			}
			s.mu.Lock()
			offline := s.conn == nil
			s.mu.Unlock()
			if offline && b.sessions[s.id] == s {
				if pw := b.dropSession(s); pw != nil {
					wills = append(wills, pw) // the session ends before the delay
				}
				expired = append(expired, s.id)
			}
		}
		b.mu.Unlock()
		for _, pw := range wills {
			b.publishPendingWill(pw)
		}
		wills = wills[:0]
		for _, id := range expired {
			b.emit(events.Event{Kind: events.SessionExpired, ClientID: id})
			b.log.Debug("session expired", "client", id)
		}
		expired = expired[:0]
		if next < 0 {
			next = time.Hour // nothing queued: wake will tell
		}
		timer.Reset(next)
		select {
		case <-b.ctx.Done():
			b.flushWills()
			return
		case <-wake:
		case <-timer.C:
		}
	}
}

// flushWills publishes the wills still waiting when the broker closes (their
// sessions end with it), with cause shutdown. After Close set b.closed no
// will is deferred any more (deferWill), so none is left behind.
func (b *Broker) flushWills() {
	var wills []*pendingWill
	b.mu.Lock()
	for _, e := range b.expiry.h {
		if e.will && e.s.will != nil {
			wills = append(wills, e.s.will)
			e.s.will = nil
		}
	}
	// Session entries stay: the sessions end with the broker.
	kept := b.expiry.h[:0]
	for _, e := range b.expiry.h {
		if e.will {
			e.idx = 0
			continue
		}
		kept = append(kept, e)
	}
	clear(b.expiry.h[len(kept):])
	b.expiry.h = kept
	for i, e := range kept {
		e.idx = i + 1
	}
	heap.Init(&b.expiry.h)
	b.mu.Unlock()
	for _, pw := range wills {
		pw.cause = events.CauseShutdown
		b.publishPendingWill(pw)
	}
}
