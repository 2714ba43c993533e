package broker

import (
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// Idle plain-TCP connections are parked in the broker's own
// internal/netpark Poller, so an idle connection holds no goroutine at all
// (a goroutine costs at least a 2 KB stack and its 480-byte descriptor). A
// connection that has been silent for parkAfter is parked by its reading
// goroutine, which then exits; when the socket becomes readable, when its
// keepalive deadline passes or when the Poller closes, the Poller calls
// wake, which starts a new goroutine (resume). A connection being shut down
// is taken back with Unpark and resumed by shutdown itself.
//
//	conn.loop --silent parkAfter--> park (netpark, one-shot) --readable /
//	deadline / Poller closed--> wake: conn.resume in a new goroutine --> loop ...
//	shutdown --Unpark true--> conn.resume in a new goroutine
//
// The broker has a Poller of its own rather than netpark.Default(): Close
// must know that no wake is still to come before it waits for the broker's
// goroutines (each wake adds one), and only closing the Poller says that.

// parkable reports whether nc can wait in the Poller: a plain TCP socket,
// whose readability is what epoll sees. TLS and WebSocket connections
// buffer in user space, and pipes have no descriptor.
func parkable(nc net.Conn) bool {
	_, ok := nc.(*net.TCPConn)
	return ok
}

// park hands an idle connection to the Poller until it is readable or its
// keepalive deadline ka (broker clock, 0: none) passes. It reports false
// when the connection is ending or cannot be registered; the caller then
// goes on reading. Holding c.endMu across the check and the park is what
// keeps shutdown from missing a connection that parks as it ends: either
// park sees the reason, or shutdown's Unpark finds the connection parked.
func (c *conn) park(ka time.Duration) bool {
	var deadline time.Time // zero: no keepalive, no deadline
	if ka > 0 {
		deadline = c.b.start.Add(ka) // b.start carries the monotonic clock, as b.since does
	}
	c.endMu.Lock()
	ok := c.reason == nil && c.b.parker.ParkUntil(c.rd.nc, deadline, c.wake)
	c.endMu.Unlock()
	if ok {
		c.b.stacks.parked(c.b)
	}
	return ok
}

// wake is the Poller's callback: continue the connection in a new
// goroutine. The Poller calls it from its own goroutine (not counted in
// b.wg) or from Poller.Close, and never after Poller.Close has returned;
// Broker.Close closes the Poller before it waits for b.wg, and stays
// counted in b.wg itself until then, so this Add never races with a Wait
// that could see zero. It takes no lock (netpark holds none of its own when
// it calls wake) and does not block.
func (c *conn) wake() {
	c.b.wg.Add(1)
	go c.resume()
}

// unpark takes a connection that is being shut down back from the Poller,
// before its socket is closed (so its descriptor cannot be reused while
// registered), and resumes it so a goroutine sees the end and runs finish.
// When Unpark reports false the connection was not parked, or the Poller
// is already waking it. c.endMu is held.
func (c *conn) unpark() {
	if c.b.parker.Unpark(c.rd.nc) {
		c.wake()
	}
}

// parkedCount is Stats.Parked: connections waiting in the Poller.
func (b *Broker) parkedCount() int {
	if b.parker == nil {
		return 0
	}
	return b.parker.Len()
}

// stackRelease returns the stacks of goroutines that exited when a wave of
// connections went idle. Their stacks are only freed by a GC, which an
// idle broker does not run for two minutes (the forced GC), so RSS would
// stay as if every connection still had its goroutine. After a wave of at
// least releaseWave parks has ended (a second without one), at most every
// releaseEvery, debug.FreeOSMemory gives the memory back.
//
// A goroutine waits for the wave to end only while a wave is counted; it is
// started by the park that completes the wave, is counted in b.wg and stops
// on Close. Nothing runs while the broker is quiet.
type stackRelease struct {
	mu          sync.Mutex // guards the fields below; a leaf lock
	parks       int        // connections parked since the last release
	lastPark    time.Time
	lastRelease time.Time
	waiting     bool // the goroutine waiting for the wave to end runs
}

const (
	releaseWave  = 1000
	releaseQuiet = time.Second      // a wave has ended after this long without a park
	releaseEvery = 10 * time.Second // FreeOSMemory stops the world: not more often
)

// parked counts one park. Its caller is a connection's reading goroutine,
// counted in b.wg, so starting the waiting goroutine cannot race with
// Close's Wait.
func (s *stackRelease) parked(b *Broker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parks++
	s.lastPark = time.Now()
	if s.parks >= releaseWave && !s.waiting && b.ctx.Err() == nil {
		s.waiting = true
		b.wg.Add(1)
		go s.wait(b)
	}
}

// wait sleeps until the wave has ended and releaseEvery has passed since
// the last release, then frees the exited goroutines' stacks. It returns
// at once when the broker closes.
func (s *stackRelease) wait(b *Broker) {
	defer b.wg.Done()
	t := time.NewTimer(releaseQuiet)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			s.mu.Lock()
			s.waiting = false
			s.mu.Unlock()
			return
		case <-t.C:
		}
		s.mu.Lock()
		now := time.Now()
		until := max(s.lastPark.Add(releaseQuiet).Sub(now), s.lastRelease.Add(releaseEvery).Sub(now))
		if until > 0 {
			s.mu.Unlock()
			t.Reset(until)
			continue
		}
		s.parks, s.lastRelease, s.waiting = 0, now, false
		s.mu.Unlock()
		debug.FreeOSMemory()
		return
	}
}
