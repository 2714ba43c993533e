package simulator

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// kickServer is a scripted MQTT server on 127.0.0.1: it answers every
// CONNECT with CONNACK 0 and closes the first connection right after that
// CONNACK; later connections stay open, their packets read and dropped.
type kickServer struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startKickServer(t *testing.T) *kickServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &kickServer{ln: ln}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *kickServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		first := s.accepted.Add(1) == 1
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c, first)
		}()
	}
}

// serve reads the CONNECT whole (so closing sends FIN, not RST, and the
// CONNACK is not lost) and answers it.
func (s *kickServer) serve(c net.Conn, kick bool) {
	defer c.Close()
	if err := skipPacket(c); err != nil {
		return
	}
	if _, err := c.Write([]byte{0x20, 0x02, 0x00, 0x00}); err != nil || kick {
		return
	}
	_, _ = io.Copy(io.Discard, c)
}

// skipPacket reads one MQTT control packet and drops it.
func skipPacket(r io.Reader) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	n, mul := 0, 1
	for i := 0; i < 4; i++ {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return err
		}
		n += int(b[0]&0x7f) * mul
		if b[0]&0x80 == 0 {
			_, err := io.CopyN(io.Discard, r, int64(n))
			return err
		}
		mul *= 128
	}
	return errors.New("malformed remaining length")
}

func (s *kickServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// holdUntilLost wraps a driver: its first Connect returns only after the
// connection's Lost callback has run, which forces the window between the
// CONNACK and the device recording the connection.
type holdUntilLost struct {
	Driver
	calls atomic.Int32
	held  atomic.Bool // the window was forced (Lost seen before returning)
}

func (h *holdUntilLost) Connect(ctx context.Context, p *ConnectParams) (Conn, error) {
	if h.calls.Add(1) != 1 {
		return h.Driver.Connect(ctx, p)
	}
	spy := &lostSpy{Handler: p.Handler, lost: make(chan struct{})}
	q := *p
	q.Handler = spy
	conn, err := h.Driver.Connect(ctx, &q)
	if err != nil {
		return nil, err
	}
	select {
	case <-spy.lost:
		h.held.Store(true)
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	return conn, nil
}

// lostSpy forwards every callback and signals the first Lost after
// forwarding it.
type lostSpy struct {
	Handler
	once sync.Once
	lost chan struct{}
}

func (s *lostSpy) Lost(err error) {
	s.Handler.Lost(err)
	s.once.Do(func() { close(s.lost) })
}

// TestLostBeforeOnline: a link that drops between the CONNACK and the
// device recording its connection still counts one disconnect and leads to
// exactly one reconnect (the policy's for native, paho's own for paho),
// after which the device is online until the run ends.
func TestLostBeforeOnline(t *testing.T) {
	cases := []struct {
		name     string
		driver   Driver
		attempts int // Connect events: paho reconnects by itself, unseen by the fleet
	}{
		{"native", Native{}, 2},
		{"paho", Paho{}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startKickServer(t)
			drv := &holdUntilLost{Driver: tc.driver}
			// paho's own reconnect waits about a second; 4 s leaves margin
			// on a loaded machine.
			p := &profile.Profile{Name: "early-loss", Duration: 4 * time.Second, Drain: 50 * time.Millisecond,
				Groups: []profile.Group{{Count: 1, ClientID: "early-{{.Index}}",
					Reconnect: profile.Reconnect{Policy: profile.ReconnectFixed, Delay: 200 * time.Millisecond, Max: time.Second}}}}
			rec := events.NewRecorder()
			res := runFleet(t, Config{Profile: p, Broker: srv.ln.Addr().String(), Driver: drv, Events: rec})
			if !drv.held.Load() {
				t.Fatalf("the driver never reported the first link lost: window not exercised")
			}
			var ioLost, shutdown, acks, connects int
			for _, e := range rec.Events() {
				switch {
				case e.Kind == events.Disconnect && e.Cause == events.CauseShutdown:
					shutdown++
				case e.Kind == events.Disconnect:
					ioLost++
				case e.Kind == events.ConnAck && e.Code == 0:
					acks++
				case e.Kind == events.Connect:
					connects++
				}
			}
			if ioLost != 1 || acks != 2 || connects != tc.attempts || shutdown != 1 {
				t.Fatalf("lost %d, connacks %d, attempts %d, shutdown disconnects %d; want 1 2 %d 1 (counters %v)",
					ioLost, acks, connects, shutdown, tc.attempts, res.Counters)
			}
			if got := res.Counters["reconnects"]; got != 1 {
				t.Fatalf("reconnects %d, want 1", got)
			}
			if got := srv.accepted.Load(); got != 2 {
				t.Fatalf("server accepted %d connections, want 2", got)
			}
		})
	}
}
