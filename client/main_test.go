package client

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/internal/mosquittotest"
	"github.com/mqttfleet/mqttfleet/packet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startMosquitto runs Debian's Mosquitto for one test with an MQTT and a
// WebSocket listener on 127.0.0.1, skipping the test when it is missing.
// Each of extraConf is one more line of mosquitto.conf.
func startMosquitto(t *testing.T, extraConf ...string) *mosquittotest.Mosquitto {
	t.Helper()
	return mosquittotest.Start(t, mosquittotest.WebSocket(),
		mosquittotest.Config(append([]string{"persistence false"}, extraConf...)...))
}

// fakeServer accepts one connection on a loopback port and hands it to the
// test as a Raw, so the test scripts the broker's side packet by packet.
type fakeServer struct {
	ln    net.Listener
	conns chan net.Conn
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &fakeServer{ln: ln, conns: make(chan net.Conn, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err == nil {
			s.conns <- conn
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

// accept returns the server side of the client's connection after reading
// its CONNECT and answering CONNACK code 0.
func (s *fakeServer) accept(t *testing.T) (*Raw, *packet.Connect) {
	t.Helper()
	var conn net.Conn
	select {
	case conn = <-s.conns:
	case <-time.After(5 * time.Second):
		t.Fatalf("fake server: no connection within 5s")
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := NewRaw(conn, packet.V311)
	p, err := r.ReadPacket(5 * time.Second)
	if err != nil {
		t.Fatalf("fake server: read CONNECT: %v", err)
	}
	cp, ok := p.(*packet.Connect)
	if !ok {
		t.Fatalf("fake server: got %s, want CONNECT", p.Type())
	}
	r.SetVersion(cp.ProtocolLevel)
	return r, cp
}

// connectFake connects a client to a fresh fake server that accepts it.
func connectFake(t *testing.T, opts Options) (*Client, *Raw) {
	t.Helper()
	s := newFakeServer(t)
	type result struct {
		c   *Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := Dial(ctx, s.addr(), opts)
		res <- result{c, err}
	}()
	srv, _ := s.accept(t)
	if err := srv.WritePacket(&packet.Connack{}); err != nil {
		t.Fatalf("fake server: write CONNACK: %v", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("connect to fake server: %v", r.err)
	}
	t.Cleanup(func() { _ = r.c.Close() })
	return r.c, srv
}

// expect reads the next packet on the fake server and checks its type.
func expect[P packet.Packet](t *testing.T, r *Raw) P {
	t.Helper()
	p, err := r.ReadPacket(5 * time.Second)
	if err != nil {
		t.Fatalf("fake server: read: %v", err)
	}
	want, ok := p.(P)
	if !ok {
		var zero P
		t.Fatalf("fake server: got %s, want %T", p.Type(), zero)
	}
	return want
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newFakeServerB is a loopback listener for benchmarks.
func newFakeServerB(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("listen: %v", err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	return ln
}
