//go:build linux

package broker

import (
	"errors"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

// poller parks idle plain-TCP connections in an epoll set of its own, so an
// idle connection holds no goroutine at all (a goroutine costs at least a
// 2 KB stack and its 480-byte descriptor). A connection that has been silent
// for parkAfter is parked by its reading goroutine, which then exits; when
// the socket becomes readable, when its keepalive deadline passes or when it
// is shut down, the poller starts a new goroutine for it.
//
//	conn.loop --silent parkAfter--> park (epoll, one-shot) --readable /
//	deadline / shutdown--> wake: conn.resume in a new goroutine --> loop ...
//
// The socket stays registered with Go's own poller too; both are allowed to
// watch one file descriptor, and the Go side is only used while a goroutine
// reads.
type poller struct {
	b    *Broker
	epfd int

	mu     sync.Mutex // guards the fields below; taken after c.endMu, never before
	parked map[int32]*conn
	closed bool
	// freed counts connections parked since the last stack release.
	freed     int
	lastPark  time.Time
	lastClean time.Time
}

// scanEvery bounds how late a parked connection's keepalive expiry is
// noticed (the acceptance allows 0.5 s).
const scanEvery = 50 * time.Millisecond

func newPoller(b *Broker) (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &poller{b: b, epfd: fd, parked: map[int32]*conn{}}, nil
}

// close releases the epoll descriptor of a poller whose goroutine never ran.
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = syscall.Close(p.epfd)
}

// pollFD returns the descriptor of a plain TCP connection plus one, or 0
// when nc cannot be parked (TLS, WebSocket, pipes).
func pollFD(nc net.Conn) int32 {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return 0
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	var fd int32
	if sc.Control(func(f uintptr) { fd = int32(f) + 1 }) != nil {
		return 0
	}
	return fd
}

// park hands an idle connection to the poller. It reports false when the
// connection is ending or cannot be registered; the caller then goes on.
func (p *poller) park(c *conn, deadline time.Duration) bool {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	if c.reason != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	fd := int(c.pfd - 1)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	op := syscall.EPOLL_CTL_MOD
	if !c.inEpoll {
		op = syscall.EPOLL_CTL_ADD
	}
	err := syscall.EpollCtl(p.epfd, op, fd, &ev)
	if errors.Is(err, syscall.EEXIST) {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
	} else if errors.Is(err, syscall.ENOENT) {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
	}
	if err != nil {
		return false
	}
	c.inEpoll = true
	c.parkDeadline = deadline
	p.parked[c.pfd] = c
	p.freed++
	p.lastPark = time.Now()
	return true
}

// count returns how many connections are parked.
func (p *poller) count() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// unpark wakes a parked connection that is being shut down, before its
// socket is closed (so its descriptor cannot be reused while registered).
// c.endMu is held.
func (p *poller) unpark(c *conn) {
	p.mu.Lock()
	cur := p.parked[c.pfd]
	if cur == c {
		delete(p.parked, c.pfd)
		ev := syscall.EpollEvent{}
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(c.pfd-1), &ev)
		c.inEpoll = false
	}
	p.mu.Unlock()
	if cur == c {
		p.wake(c)
	}
}

// wake starts a new goroutine for c. The caller is a counted goroutine or
// Close before its Wait, so the Add is safe.
func (p *poller) wake(c *conn) {
	p.b.wg.Add(1)
	go c.resume()
}

// run waits for parked sockets to become readable and for keepalive
// deadlines, until the broker closes.
func (p *poller) run() {
	defer p.b.wg.Done()
	defer syscall.Close(p.epfd)
	events := make([]syscall.EpollEvent, 256)
	var due []*conn
	lastScan := time.Now()
	for {
		n, err := syscall.EpollWait(p.epfd, events, int(scanEvery/time.Millisecond))
		if p.b.ctx.Err() != nil {
			p.mu.Lock()
			p.closed = true
			p.mu.Unlock()
			return
		}
		if err != nil && !errors.Is(err, syscall.EINTR) {
			p.b.log.Error("epoll wait", "err", err)
			return
		}
		due = due[:0]
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if c := p.parked[ev.Fd+1]; c != nil {
				delete(p.parked, ev.Fd+1)
				due = append(due, c)
			}
		}
		if time.Since(lastScan) >= scanEvery {
			lastScan = time.Now()
			now := p.b.since()
			for k, c := range p.parked {
				if c.parkDeadline > 0 && now >= c.parkDeadline {
					delete(p.parked, k)
					due = append(due, c)
				}
			}
		}
		// After a wave of at least 1000 parks has ended (a second without
		// one), at most every 10 s.
		release := p.freed >= 1000 && time.Since(p.lastPark) >= time.Second && time.Since(p.lastClean) >= 10*time.Second
		if release {
			p.freed, p.lastClean = 0, time.Now()
		}
		p.mu.Unlock()
		for _, c := range due {
			p.wake(c)
		}
		clear(due)
		if release {
			// A wave of connections went idle: their exited goroutines'
			// stacks are only freed by a GC, which an idle broker would not
			// run for two minutes. Give the memory back now.
			debug.FreeOSMemory()
		}
	}
}
