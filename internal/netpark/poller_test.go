package netpark

import (
	"net"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Skipf("no poller here: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// waitWake fails the test unless woke is signalled within a few seconds.
func waitWake(t *testing.T, woke <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not woken", what)
	}
}

func TestWakesWhenReadable(t *testing.T) {
	tests := []struct {
		name  string
		event func(t *testing.T, server net.Conn)
	}{
		{"data", func(t *testing.T, s net.Conn) {
			if _, err := s.Write([]byte{0xd0, 0}); err != nil {
				t.Fatalf("write: %v", err)
			}
		}},
		{"peer closed", func(t *testing.T, s net.Conn) { _ = s.Close() }},
		{"half close", func(t *testing.T, s net.Conn) { _ = s.(*net.TCPConn).CloseWrite() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPoller(t)
			c, s := tcpPair(t)
			woke := make(chan struct{}, 2)
			if !p.Park(c, func() { woke <- struct{}{} }) {
				t.Fatal("Park refused a TCP conn")
			}
			if p.Len() != 1 {
				t.Fatalf("Len %d, want 1", p.Len())
			}
			select {
			case <-woke:
				t.Fatal("woken before anything happened")
			case <-time.After(50 * time.Millisecond):
			}
			tt.event(t, s)
			waitWake(t, woke, tt.name)
			if p.Len() != 0 || p.Unpark(c) {
				t.Fatal("still parked after its wake")
			}
			// Parking again after a wake works (re-armed registration).
			buf := make([]byte, 8)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = c.Read(buf)
			if tt.name == "data" {
				if !p.Park(c, func() { woke <- struct{}{} }) {
					t.Fatal("Park refused a second time")
				}
				if _, err := s.Write([]byte{1}); err != nil {
					t.Fatalf("write: %v", err)
				}
				waitWake(t, woke, "second park")
			}
		})
	}
}

func TestUnparkTakesBack(t *testing.T) {
	p := newPoller(t)
	c, s := tcpPair(t)
	woke := make(chan struct{}, 1)
	if !p.Park(c, func() { woke <- struct{}{} }) {
		t.Fatal("Park refused")
	}
	if p.Park(c, func() {}) {
		t.Fatal("parked twice")
	}
	if !p.Unpark(c) {
		t.Fatal("Unpark of a parked conn reported false")
	}
	if p.Unpark(c) {
		t.Fatal("second Unpark reported true")
	}
	if _, err := s.Write([]byte{1}); err != nil {
		t.Fatalf("write: %v", err)
	}
	select {
	case <-woke:
		t.Fatal("woken after Unpark")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRefusesNonSockets(t *testing.T) {
	p := newPoller(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if p.Park(a, func() {}) {
		t.Fatal("parked a net.Pipe")
	}
	if p.Unpark(a) {
		t.Fatal("unparked a net.Pipe")
	}
}

func TestCloseWakesParked(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Skipf("no poller here: %v", err)
	}
	c, _ := tcpPair(t)
	woke := make(chan struct{}, 1)
	if !p.Park(c, func() { woke <- struct{}{} }) {
		t.Fatal("Park refused")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitWake(t, woke, "close")
	if p.Park(c, func() {}) {
		t.Fatal("parked on a closed poller")
	}
}

// TestGoroutineOnlyWhileParked: with nothing parked the poller's goroutine
// exits by itself.
func TestGoroutineOnlyWhileParked(t *testing.T) {
	p := newPoller(t)
	c, _ := tcpPair(t)
	g0 := runtime.NumGoroutine()
	if !p.Park(c, func() {}) {
		t.Fatal("Park refused")
	}
	if !p.Unpark(c) {
		t.Fatal("Unpark reported false")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > g0 {
		if time.Now().After(deadline) {
			t.Fatalf("poller goroutine still running after %v idle", 5*time.Second)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// TestManyParkAndWake parks many conns at once and wakes them all.
func TestManyParkAndWake(t *testing.T) {
	p := newPoller(t)
	const n = 200
	woke := make(chan int, n)
	servers := make([]net.Conn, n)
	for i := range n {
		c, s := tcpPair(t)
		servers[i] = s
		if !p.Park(c, func() { woke <- i }) {
			t.Fatalf("conn %d: Park refused", i)
		}
	}
	for _, s := range servers {
		if _, err := s.Write([]byte{1}); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	seen := make(map[int]bool, n)
	timeout := time.After(10 * time.Second)
	for len(seen) < n {
		select {
		case i := <-woke:
			if seen[i] {
				t.Fatalf("conn %d woken twice", i)
			}
			seen[i] = true
		case <-timeout:
			t.Fatalf("%d of %d woken", len(seen), n)
		}
	}
}
