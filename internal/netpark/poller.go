package netpark

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// idleExit is how long the Poller goroutine lingers with nothing parked
// before it exits (Close and a first deadline cut its wait short).
const idleExit = 100 * time.Millisecond

// scanEvery is how often deadlines are checked while any is set: a parked
// connection is woken at most this late after its deadline.
const scanEvery = 50 * time.Millisecond

// ErrUnsupported is returned by New where the platform has no poller.
var ErrUnsupported = errors.New("netpark: not supported on this platform")

// Poller watches parked connections and wakes each once it is readable.
// Its methods are safe for concurrent use.
type Poller struct {
	ep    *epoll    // nil where unsupported: nothing is ever parked
	epoch time.Time // deadlines are kept as the time since (monotonic)

	mu      sync.Mutex // guards the fields below
	parked  table      // by socket descriptor
	timed   int        // parked entries with a deadline
	running bool       // the goroutine runs (or is about to)
	closed  bool
	wg      sync.WaitGroup // the goroutine
}

// parked is one registered connection and what to call when it is readable.
type parked struct {
	conn     net.Conn
	wake     func()
	deadline time.Duration // since epoch; 0: none. Not a time.Time: 16 bytes less per parked conn
}

// New returns a Poller of its own; most callers share Default. It fails
// with ErrUnsupported where the platform has no poller.
func New() (*Poller, error) {
	ep, err := openEpoll()
	if err != nil {
		return nil, fmt.Errorf("netpark: open poller: %w", err)
	}
	return &Poller{ep: ep, epoch: time.Now()}, nil
}

var defaultPoller = sync.OnceValue(func() *Poller {
	p, err := New()
	if err != nil {
		return &Poller{} // parks nothing
	}
	return p
})

// Default returns the process-wide Poller. It is never closed; its
// goroutine runs only while something is parked.
func Default() *Poller { return defaultPoller() }

// fdOf returns the socket descriptor of conn, or -1 when conn is not a
// plain socket.
func fdOf(conn net.Conn) int {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil {
		return -1
	}
	return fd
}

// Park registers conn and reports whether it did. Once it has, wake is
// called exactly once, from the Poller's goroutine, when conn becomes
// readable or the Poller closes — unless Unpark takes conn back first.
// wake must not block (start a goroutine). When Park reports false (not a
// plain socket, unsupported platform, closed Poller) nothing happens and
// the caller goes on reading as before.
func (p *Poller) Park(conn net.Conn, wake func()) bool {
	return p.ParkUntil(conn, time.Time{}, wake)
}

// ParkUntil is Park with a deadline: wake is also called (once, within
// about 50 ms) when deadline passes with conn still silent, which is how an
// owner keeps a keepalive deadline without a goroutine or a timer per
// connection. wake does not say which happened: the owner checks its own
// clock, and reading a socket that is not readable just parks it again.
// A zero deadline means none.
func (p *Poller) ParkUntil(conn net.Conn, deadline time.Time, wake func()) bool {
	if p.ep == nil {
		return false
	}
	fd := fdOf(conn)
	if fd < 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.parked.get(fd) != nil {
		return false // parked twice: a caller bug, refuse rather than lose a wake
	}
	if err := p.ep.arm(fd); err != nil {
		return false
	}
	e := parked{conn: conn, wake: wake}
	if !deadline.IsZero() {
		e.deadline = max(deadline.Sub(p.epoch), 1) // one already passed stays a deadline
	}
	p.parked.put(fd, e)
	if e.deadline != 0 {
		p.timed++
		if p.timed == 1 && p.running {
			// The goroutine may be in a long wait: shorten it to scanEvery.
			// With other deadlines already set its wait is scanEvery at
			// most (it sets each wait under p.mu, from timed), so a fleet
			// parking with keepalives costs no wake per park.
			p.ep.kick()
		}
	}
	if !p.running {
		p.running = true
		p.wg.Add(1)
		go p.run()
	}
	return true
}

// Unpark takes conn back and reports whether it was still parked; then its
// wake will not be called and the caller resumes it. False means conn was
// not parked or its wake has been or is being called.
func (p *Poller) Unpark(conn net.Conn) bool {
	if p.ep == nil {
		return false
	}
	fd := fdOf(conn)
	if fd < 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.parked.get(fd)
	if e == nil || e.conn != conn {
		return false
	}
	p.remove(fd, *e)
	p.ep.disarm(fd)
	return true
}

// remove forgets a parked entry. p.mu is held.
func (p *Poller) remove(fd int, e parked) {
	p.parked.del(fd)
	if e.deadline != 0 {
		p.timed--
	}
}

// Len returns how many connections are parked.
func (p *Poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parked.n
}

// Close wakes every parked connection, stops the goroutine and releases
// the poller; later Parks report false. Meant for Pollers from New.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	due := make([]func(), 0, p.parked.n)
	p.parked.each(func(fd int, e parked) {
		p.remove(fd, e)
		if p.ep != nil {
			p.ep.disarm(fd)
		}
		due = append(due, e.wake)
	})
	p.mu.Unlock()
	for _, wake := range due {
		wake()
	}
	if p.ep != nil {
		p.ep.kick()
	}
	p.wg.Wait()
	if p.ep == nil {
		return nil
	}
	if err := p.ep.close(); err != nil {
		return fmt.Errorf("netpark: close poller: %w", err)
	}
	return nil
}

// run waits for parked sockets to become readable and wakes them, until
// nothing is parked for idleExit or the Poller closes.
func (p *Poller) run() {
	defer p.wg.Done()
	fds := make([]int, 0, 64)
	var due []func()
	lastScan := time.Since(p.epoch)
	for {
		// The wait's length is set under p.mu, so a kick (ParkUntil's, under
		// p.mu, or Close's, after it set closed under p.mu) always comes
		// after it and is never overwritten by it.
		p.mu.Lock()
		wait := idleExit
		if p.timed > 0 {
			wait = scanEvery
		}
		if p.closed {
			wait = 0
		}
		err := p.ep.setWait(wait)
		p.mu.Unlock()
		if err == nil {
			fds, err = p.ep.wait(fds[:0])
		} else {
			fds = fds[:0]
		}
		due = due[:0]
		p.mu.Lock()
		for _, fd := range fds {
			if e := p.parked.get(fd); e != nil {
				due = append(due, e.wake)
				p.remove(fd, *e) // one-shot: the registration is already disarmed; frees *e
			}
		}
		if now := time.Since(p.epoch); p.timed > 0 && now-lastScan >= scanEvery {
			lastScan = now
			p.parked.each(func(fd int, e parked) {
				if e.deadline != 0 && now >= e.deadline {
					p.remove(fd, e)
					p.ep.disarm(fd)
					due = append(due, e.wake)
				}
			})
		}
		exit := p.closed || err != nil || (p.parked.n == 0 && len(fds) == 0)
		if exit {
			p.running = false
			if err != nil && !p.closed {
				// The epoll set is unusable: hand every conn back.
				p.parked.each(func(fd int, e parked) {
					p.remove(fd, e)
					due = append(due, e.wake)
				})
				p.closed = true
			}
		}
		p.mu.Unlock()
		for _, wake := range due {
			wake()
		}
		clear(due)
		if exit {
			return
		}
	}
}
