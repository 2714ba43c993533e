//go:build linux

package netpark

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// epoll is an epoll set whose registrations are one-shot: a readiness
// event disarms the descriptor until the next arm.
type epoll struct {
	fd     int
	events []syscall.EpollEvent // used only by the one run goroutine
}

func openEpoll() (*epoll, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &epoll{fd: fd, events: make([]syscall.EpollEvent, 128)}, nil
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

// wait appends the descriptors that became ready within timeout to fds.
func (e *epoll) wait(fds []int, timeout time.Duration) ([]int, error) {
	n, err := syscall.EpollWait(e.fd, e.events, int(timeout/time.Millisecond))
	if err != nil {
		if errors.Is(err, syscall.EINTR) {
			return fds, nil
		}
		return fds, fmt.Errorf("epoll_wait: %w", err)
	}
	for _, ev := range e.events[:n] {
		fds = append(fds, int(ev.Fd))
	}
	return fds, nil
}

func (e *epoll) close() error { return syscall.Close(e.fd) }
