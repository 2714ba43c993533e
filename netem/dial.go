package netem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// Dial connects to the proxy's default listener as a device of group, for
// in-process callers such as the simulator: the link opens in that group
// (LinkOpened already says so), and ByGroup(group) addresses it.
//
// It binds the socket's source port before connecting and tells the proxy
// which group that port belongs to, so there is no window in which the link
// exists under another group.
func (p *Proxy) Dial(ctx context.Context, group string) (net.Conn, error) {
	addr := p.Addr()
	if addr == "" {
		return nil, errors.New("netem: dial: proxy not started")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("netem: dial %s: %w", addr, err)
	}
	ip := net.ParseIP(host)
	var port string
	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var berr error
		cerr := c.Control(func(fd uintptr) {
			port, berr = bindEphemeral(int(fd), ip)
		})
		if cerr != nil {
			return cerr
		}
		if berr != nil {
			return berr
		}
		p.mu.Lock()
		p.pending[port] = group
		p.mu.Unlock()
		return nil
	}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if port != "" {
			p.mu.Lock()
			delete(p.pending, port)
			p.mu.Unlock()
		}
		return nil, fmt.Errorf("netem: dial %s as group %q: %w", addr, group, err)
	}
	return c, nil
}

// bindEphemeral binds fd to an ephemeral port on the address the proxy
// listens on (so source and destination match on loopback) and returns it.
func bindEphemeral(fd int, ip net.IP) (string, error) {
	var sa syscall.Sockaddr
	if ip4 := ip.To4(); ip4 != nil {
		s := &syscall.SockaddrInet4{}
		if !ip4.IsUnspecified() {
			copy(s.Addr[:], ip4)
		}
		sa = s
	} else {
		s := &syscall.SockaddrInet6{}
		if ip != nil && !ip.IsUnspecified() {
			copy(s.Addr[:], ip.To16())
		}
		sa = s
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return "", fmt.Errorf("bind source port: %w", err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		return "", fmt.Errorf("read source port: %w", err)
	}
	switch a := got.(type) {
	case *syscall.SockaddrInet4:
		return strconv.Itoa(a.Port), nil
	case *syscall.SockaddrInet6:
		return strconv.Itoa(a.Port), nil
	}
	return "", errors.New("bind source port: unexpected address family")
}
