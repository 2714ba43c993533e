//go:build !linux

package netpark

import "time"

// epoll is Linux-only; elsewhere New fails and nothing is ever parked.
type epoll struct{}

func openEpoll() (*epoll, error)             { return nil, ErrUnsupported }
func (*epoll) arm(int) error                 { return ErrUnsupported }
func (*epoll) disarm(int)                    {}
func (*epoll) setWait(time.Duration) error   { return ErrUnsupported }
func (*epoll) wait(fds []int) ([]int, error) { return fds, ErrUnsupported }
func (*epoll) kick()                         {}
func (*epoll) close() error                  { return nil }
