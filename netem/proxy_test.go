package netem

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// upstream is a TCP listener standing in for a broker: each accepted
// connection is handed to the test.
type upstream struct {
	ln    net.Listener
	conns chan net.Conn
}

func withUpstream(t testing.TB) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen upstream: %v", err)
	}
	u := &upstream{ln: ln, conns: make(chan net.Conn, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for {
			select {
			case c := <-u.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return u
}

func (u *upstream) addr() string { return u.ln.Addr().String() }

// accept returns the next connection the proxy made, or fails the test.
func (u *upstream) accept(t testing.TB) net.Conn {
	t.Helper()
	select {
	case c := <-u.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("upstream: no connection within 5 s")
		return nil
	}
}

func withProxy(t testing.TB, up string, rec *events.Recorder) *Proxy {
	t.Helper()
	px := NewProxy(ProxyConfig{Listen: "127.0.0.1:0", Upstream: up, Events: rec, Seed: 1, Logger: testLogger(t)})
	if err := px.Start(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() { px.Close() })
	return px
}

// link is one device connection through the proxy and its broker-side end.
type tlink struct {
	id     string
	device net.Conn
	broker net.Conn
}

// dialLink opens a connection through px and waits for both its ends.
func dialLink(t testing.TB, px *Proxy, u *upstream, rec *events.Recorder) tlink {
	t.Helper()
	c, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	b := u.accept(t)
	local := c.LocalAddr().String()
	ev, err := rec.WaitFor(5*time.Second, func(e events.Event) bool {
		return e.Kind == events.LinkOpened && e.Remote == local
	})
	if err != nil {
		t.Fatalf("wait for link of %s: %v", local, err)
	}
	return tlink{id: ev.Link, device: c, broker: b}
}

// ends returns (writer, reader) for a direction.
func (l tlink) ends(d Direction) (net.Conn, net.Conn) {
	if d == Downstream {
		return l.broker, l.device
	}
	return l.device, l.broker
}

// readFull reads exactly n bytes from c or fails.
func readFull(t testing.TB, c net.Conn, n int, timeout time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func mustApply(t testing.TB, px *Proxy, sel Selector, f Fault) string {
	t.Helper()
	id, err := px.Apply(sel, f)
	if err != nil {
		t.Fatalf("apply %v to %v: %v", f, sel, err)
	}
	return id
}

func TestForwardsBothWaysAndPassesFIN(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	for _, d := range []Direction{Upstream, Downstream} {
		w, r := l.ends(d)
		msg := []byte("hello " + string(d))
		if _, err := w.Write(msg); err != nil {
			t.Fatalf("%s write: %v", d, err)
		}
		if got := readFull(t, r, len(msg), 5*time.Second); string(got) != string(msg) {
			t.Fatalf("%s: got %q want %q", d, got, msg)
		}
	}
	l.device.(*net.TCPConn).CloseWrite()
	l.broker.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := l.broker.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("broker after device FIN: n=%d err=%v, want EOF", n, err)
	}
	// Half-closed: the broker can still answer.
	if _, err := l.broker.Write([]byte("bye")); err != nil {
		t.Fatalf("broker write after half close: %v", err)
	}
	readFull(t, l.device, 3, 5*time.Second)
	l.broker.Close()
	if _, err := rec.WaitFor(5*time.Second, func(e events.Event) bool {
		return e.Kind == events.LinkClosed && e.Link == l.id
	}); err != nil {
		t.Fatal(err)
	}
	if n := len(px.Links()); n != 0 {
		t.Fatalf("links after close: %d", n)
	}
}

func TestApplyRejectsBadInput(t *testing.T) {
	u := withUpstream(t)
	px := withProxy(t, u.addr(), events.NewRecorder())
	for _, tc := range []struct {
		name string
		sel  Selector
		f    Fault
	}{
		{"no selector", Selector{}, Fault{Kind: Blackhole}},
		{"two selectors", Selector{All: true, Group: "g"}, Fault{Kind: Blackhole}},
		{"unknown kind", AllLinks(), Fault{Kind: "melt"}},
		{"zero rate", AllLinks(), Fault{Kind: Bandwidth}},
		{"zero latency", AllLinks(), Fault{Kind: Latency}},
		{"bad distribution", AllLinks(), Fault{Kind: Latency, Latency: time.Millisecond, Distribution: "cauchy"}},
		{"zero chunk", AllLinks(), Fault{Kind: Slice}},
		{"share > 1", AllLinks(), Fault{Kind: Stall, Share: 1.5}},
		{"every without duration", AllLinks(), Fault{Kind: Stall, Every: time.Second}},
		{"bad direction", AllLinks(), Fault{Kind: Stall, Direction: "sideways"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := px.Apply(tc.sel, tc.f); err == nil {
				t.Fatal("want error")
			}
		})
	}
	if _, err := px.Apply(ByLink("l999"), Fault{Kind: Stall}); !errors.Is(err, ErrUnknownLink) {
		t.Fatalf("apply to unknown link: %v", err)
	}
	if err := px.Remove("f999"); !errors.Is(err, ErrUnknownFault) {
		t.Fatalf("remove unknown: %v", err)
	}
}

func TestRuntimeSwitchOnLiveLink(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	l.device.Write([]byte("a"))
	readFull(t, l.broker, 1, 5*time.Second)
	// The link's reader is blocked in Read now; the blackhole must catch the very next bytes.
	id := mustApply(t, px, ByLink(l.id), Fault{Kind: Blackhole, Direction: Upstream})
	l.device.Write([]byte("lost"))
	l.broker.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := l.broker.Read(make([]byte, 8)); n != 0 || !isTimeout(err) {
		t.Fatalf("read during blackhole: n=%d err=%v", n, err)
	}
	if err := px.Remove(id); err != nil {
		t.Fatal(err)
	}
	l.device.Write([]byte("back"))
	if got := readFull(t, l.broker, 4, 5*time.Second); string(got) != "back" {
		t.Fatalf("after removal got %q", got)
	}
}

// testLogger logs through t when -v is given, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(b)))
	return len(b), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
