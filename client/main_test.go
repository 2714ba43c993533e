package client

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/packet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const mosquittoBin = "/usr/sbin/mosquitto"

// broker is a Mosquitto started for one test.
type broker struct {
	addr   string // host:port of the MQTT listener
	wsAddr string // host:port of the WebSocket listener
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before Mosquitto binds it; startMosquitto retries then.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMosquitto runs Debian's Mosquitto on free loopback ports (one MQTT
// and one WebSocket listener), waits until it accepts, and stops it when
// the test ends. It skips the test when the binary is missing. Each of
// extraConf is one more line of mosquitto.conf.
func startMosquitto(t *testing.T, extraConf ...string) broker {
	t.Helper()
	if _, err := os.Stat(mosquittoBin); err != nil {
		t.Skipf("mosquitto not installed (%s: %v); apt-get install mosquitto", mosquittoBin, err)
	}
	for attempt := 1; ; attempt++ {
		b, err := tryMosquitto(t, extraConf)
		if err == nil {
			return b
		}
		if attempt == 3 {
			t.Fatalf("start mosquitto: %v", err)
		}
		t.Logf("start mosquitto (attempt %d): %v", attempt, err)
	}
}

func tryMosquitto(t *testing.T, extraConf []string) (broker, error) {
	port, wsPort := freePort(t), freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nlistener %d 127.0.0.1\nprotocol websockets\npersistence false\n", port, wsPort)
	for _, line := range extraConf {
		cfg += line + "\n"
	}
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return broker{}, err
	}
	cmd := exec.Command(mosquittoBin, "-c", conf)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return broker{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	b := broker{addr: fmt.Sprintf("127.0.0.1:%d", port), wsAddr: fmt.Sprintf("127.0.0.1:%d", wsPort)}
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", b.addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			break
		}
		select {
		case werr := <-exited:
			exited <- werr
			stop()
			return broker{}, fmt.Errorf("mosquitto exited (%v): %s", werr, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return broker{}, fmt.Errorf("mosquitto did not accept on %s within 5s: %s", b.addr, out.String())
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", out.String())
		}
	})
	return b, nil
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
