package broker

import (
	"container/heap"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// Session expiry (MQTT 5.0 Session Expiry Interval): an offline session
// with a finite interval is queued in one min-heap by the time it ends;
// one goroutine (started with the first such session, stopped by Close)
// sleeps on one timer until the earliest and drops the sessions due
// [MQTT-4.1.0-2]. No goroutine or timer per session. Everything here is
// guarded by Broker.mu, like the session map.

// expiryQueue is the heap of sessions waiting to expire.
type expiryQueue struct {
	h       expiryHeap
	wake    chan struct{} // tells the goroutine that the earliest time moved
	running bool
}

type expiryHeap []*session

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expireAt < h[j].expireAt }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].expIdx, h[j].expIdx = i+1, j+1
}
func (h *expiryHeap) Push(x any) {
	s := x.(*session)
	*h = append(*h, s)
	s.expIdx = len(*h)
}
func (h *expiryHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.expIdx = 0
	return s
}

// scheduleExpiry queues s to end at (broker clock). b.mu is held.
func (b *Broker) scheduleExpiry(s *session, at time.Duration) {
	q := &b.expiry
	s.expireAt = at
	if s.expIdx > 0 {
		heap.Fix(&q.h, s.expIdx-1)
	} else {
		heap.Push(&q.h, s)
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
	if q.h[0] == s {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// unscheduleExpiry takes s out of the queue (it reconnected or was dropped).
// b.mu is held.
func (b *Broker) unscheduleExpiry(s *session) {
	if s.expIdx > 0 {
		heap.Remove(&b.expiry.h, s.expIdx-1)
	}
	s.expireAt = 0
}

// setExpiry changes the interval of s (DISCONNECT from a 5.0 client).
func (b *Broker) setExpiry(s *session, expiry uint32) {
	b.mu.Lock()
	s.expiry = expiry
	b.mu.Unlock()
}

// expiryLoop drops sessions whose expiry time passed, sleeping until the
// earliest one, until the broker closes.
func (b *Broker) expiryLoop(wake <-chan struct{}) {
	defer b.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var expired []string
	for {
		b.mu.Lock()
		now := b.since()
		next := time.Duration(-1)
		q := &b.expiry
		for q.h.Len() > 0 {
			s := q.h[0]
			if s.expireAt > now {
				next = s.expireAt - now
				break
			}
			heap.Pop(&q.h)
			s.mu.Lock()
			offline := s.conn == nil
			s.mu.Unlock()
			if offline && b.sessions[s.id] == s {
				b.dropSession(s)
				expired = append(expired, s.id)
			}
		}
		b.mu.Unlock()
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
			return
		case <-wake:
		case <-timer.C:
		}
	}
}
