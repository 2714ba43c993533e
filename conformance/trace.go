package conformance

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// trace records every byte the probes of one spec send and receive, with
// time and connection, so a failing spec or a deviation write-up shows the
// exchange on the wire.
type trace struct {
	mu    sync.Mutex
	start time.Time
	lines []string
}

func newTrace() *trace { return &trace{start: time.Now()} }

// String returns the trace, one chunk a line.
func (t *trace) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

func (t *trace) add(conn, dir string, b []byte, note string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) >= 2000 {
		return
	}
	line := fmt.Sprintf("%8.3fs %-24s %s", time.Since(t.start).Seconds(), conn, dir)
	if len(b) > 0 {
		shown := b
		if len(shown) > 64 {
			shown = shown[:64]
		}
		line += fmt.Sprintf(" %-11s % x", packet.Type(b[0]>>4).String(), shown)
		if len(b) > 64 {
			line += fmt.Sprintf(" ... (%d bytes)", len(b))
		}
	}
	if note != "" {
		line += " " + note
	}
	t.lines = append(t.lines, line)
}

// wrap returns nc with every Write and Read recorded under name.
func (t *trace) wrap(nc net.Conn, name string) net.Conn {
	t.add(name, "connect", nil, nc.LocalAddr().String()+" -> "+nc.RemoteAddr().String())
	return &traceConn{Conn: nc, t: t, name: name}
}

type traceConn struct {
	net.Conn
	t    *trace
	name string
}

func (c *traceConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.t.add(c.name, "->", b[:n], errNote(err))
	return n, err
}

func (c *traceConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 || (err != nil && !isTimeout(err)) {
		c.t.add(c.name, "<-", b[:n], errNote(err))
	}
	return n, err
}

func (c *traceConn) Close() error {
	c.t.add(c.name, "close", nil, "")
	return c.Conn.Close()
}

func errNote(err error) string {
	if err == nil {
		return ""
	}
	return "(" + err.Error() + ")"
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
