//go:build linux

package netpark

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// epoll is an epoll set whose registrations are one-shot: a readiness
// event disarms the descriptor until the next arm.
//
// The set's own descriptor is handed to Go's poller (an epoll descriptor
// is readable while it has events), so the Poller goroutine waits like any
// network read: no OS thread blocked in epoll_wait, no thread hand-off on
// every wake — only a non-blocking epoll_wait when events are there.
type epoll struct {
	fd     int
	file   *os.File             // fd, registered with Go's poller
	raw    syscall.RawConn      // file's, for waiting on readability
	events []syscall.EpollEvent // used only by the one run goroutine
}

func openEpoll() (*epoll, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile registers it with Go's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	file := os.NewFile(uintptr(fd), "netpark-epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	return &epoll{fd: fd, file: file, raw: raw, events: make([]syscall.EpollEvent, 128)}, nil
}

// arm watches fd for readability (data, EOF, hang-up, error) once. A
// descriptor left registered by an earlier one-shot event is re-armed.
func (e *epoll) arm(fd int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	err := syscall.EpollCtl(e.fd, syscall.EPOLL_CTL_ADD, fd, &ev)
	if errors.Is(err, syscall.EEXIST) {
		err = syscall.EpollCtl(e.fd, syscall.EPOLL_CTL_MOD, fd, &ev)
	}
	if err != nil {
		return fmt.Errorf("epoll_ctl fd %d: %w", fd, err)
	}
	return nil
}

// disarm removes fd, so a closed and reused descriptor starts afresh.
func (e *epoll) disarm(fd int) {
	var ev syscall.EpollEvent
	_ = syscall.EpollCtl(e.fd, syscall.EPOLL_CTL_DEL, fd, &ev)
}

// setWait bounds the next wait to timeout from now (a kick shortens it).
func (e *epoll) setWait(timeout time.Duration) error {
	if err := e.file.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("epoll deadline: %w", err)
	}
	return nil
}

// wait appends the descriptors that become ready to fds; none when the
// time set by setWait passed or kick was called.
func (e *epoll) wait(fds []int) ([]int, error) {
	var werr error
	err := e.raw.Read(func(fd uintptr) bool {
		n, err := syscall.EpollWait(int(fd), e.events, 0)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				return false
			}
			werr = fmt.Errorf("epoll_wait: %w", err)
			return true
		}
		for _, ev := range e.events[:n] {
			fds = append(fds, int(ev.Fd))
		}
		// Nothing ready: wait for Go's poller to see the set readable. A
		// full batch may leave more: take them on the next call.
		return n > 0
	})
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fds, fmt.Errorf("epoll wait: %w", err)
	}
	return fds, werr
}

// kick makes a wait in progress return at once.
func (e *epoll) kick() { _ = e.file.SetReadDeadline(time.Unix(1, 0)) }

func (e *epoll) close() error { return e.file.Close() }
