//go:build !linux

package broker

import (
	"errors"
	"net"
	"time"
)

// poller is Linux-only; elsewhere idle connections keep their goroutine.
type poller struct{}

func newPoller(*Broker) (*poller, error)       { return nil, errors.New("no epoll") }
func pollFD(net.Conn) int32                    { return 0 }
func (*poller) park(*conn, time.Duration) bool { return false }
func (*poller) unpark(*conn)                   {}
func (*poller) count() int                     { return 0 }
func (*poller) close()                         {}
func (*poller) run()                           {}
