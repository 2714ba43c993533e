package broker

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestKeepaliveExpiry checks [MQTT-3.1.2-24] with the acceptance figures: a
// client with keepalive 2 s that goes silent while its socket stays open is
// closed between 3.0 and 3.5 s after its last packet, and a subscriber gets
// its will once [MQTT-3.1.2-8].
func TestKeepaliveExpiry(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	watcher := tb.connect(t, "ka-watcher")
	subscribe(t, watcher, sub("will/ka", 0))

	// CONNECT is the last packet the client sends, and the broker read it
	// between these two instants: the close must come at least 3.0 s after
	// the first and at most 3.5 s after the second.
	sent := time.Now()
	r, _ := tb.raw(t, &packet.Connect{ClientID: "silent", CleanSession: true, KeepAlive: 2,
		Will: &packet.Will{Topic: "will/ka", Payload: []byte("expired")}}, 0)
	acked := time.Now()
	if err := r.ExpectClosed(6 * time.Second); err != nil {
		t.Fatalf("silent client not closed: %v", err)
	}
	closed := time.Now()
	t.Logf("closed %v after CONNECT was sent, %v after CONNACK arrived", closed.Sub(sent), closed.Sub(acked))
	if closed.Sub(sent) < 3*time.Second || closed.Sub(acked) > 3500*time.Millisecond {
		t.Errorf("closed %v after CONNECT / %v after CONNACK, want 3.0 s..3.5 s of silence", closed.Sub(sent), closed.Sub(acked))
	}
	e := tb.wait(t, events.And(events.Is(events.KeepaliveExpired), events.ForClient("silent")))
	if e.Latency < 3*time.Second || e.Latency > 3500*time.Millisecond {
		t.Errorf("broker measured %v of silence, want 3.0 s..3.5 s", e.Latency)
	}
	if d := tb.wait(t, disconnectOf("silent")); d.Cause != events.CauseKeepalive || d.Statement != "MQTT-3.1.2-24" {
		t.Errorf("disconnect %+v", d)
	}
	w := expect[*packet.Publish](t, watcher)
	if w.Topic != "will/ka" || string(w.Payload) != "expired" {
		t.Errorf("will %+v", w)
	}
	expectNothing(t, watcher, 300*time.Millisecond) // once
}

// TestKeepalivePinging checks that a client pinging every 2 s with keepalive
// 2 s stays connected for 20 s, each PINGREQ answered at once.
func TestKeepalivePinging(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s test")
	}
	t.Parallel()
	tb := startBroker(t, nil)
	r, _ := tb.raw(t, &packet.Connect{ClientID: "pinger", CleanSession: true, KeepAlive: 2}, 0)
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		time.Sleep(2 * time.Second) // the client's own ping period, not a wait for a condition
		sent := time.Now()
		if err := r.WritePacket(&packet.Pingreq{}); err != nil {
			t.Fatalf("ping after %v: %v", time.Since(start), err)
		}
		expect[*packet.Pingresp](t, r)
		if d := time.Since(sent); d > 500*time.Millisecond {
			t.Errorf("PINGRESP took %v", d)
		}
	}
	if n := tb.rec.Count(disconnectOf("pinger")); n != 0 {
		t.Fatalf("pinging client disconnected")
	}
}

// TestKeepaliveZero checks that keepalive 0 disables expiry.
func TestKeepaliveZero(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	r, _ := tb.raw(t, &packet.Connect{ClientID: "nokeepalive", CleanSession: true}, 0)
	// Waiting proves only that no short keepalive is applied; the connection
	// itself must carry none at all (a default of minutes would pass the wait).
	if ka := tb.keepaliveOf(t, "nokeepalive"); ka != 0 {
		t.Fatalf("keepalive 0 connection has keepalive %v; want none", ka)
	}
	expectNothing(t, r, 2*time.Second)
	if err := r.WritePacket(&packet.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Pingresp](t, r)
}

// waitParked polls Stats until n connections are parked (idle for 1 s).
func waitParked(t *testing.T, tb *testBroker, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tb.Stats().Parked < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", tb.Stats().Parked, n)
		}
		time.Sleep(20 * time.Millisecond) // polling a counter with a deadline
	}
}

// TestParkedConnections checks what happens to idle connections parked in
// the poller: they wake for traffic, are taken over within 100 ms
// [MQTT-3.1.4-2], publish their will when the broker closes [MQTT-3.1.2-8],
// and Close leaves no goroutine behind (goleak in TestMain).
func TestParkedConnections(t *testing.T) {
	t.Parallel()
	rec := events.NewRecorder()
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Events = rec
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = b.Close()
		}
	}()
	tb := &testBroker{Broker: b, rec: rec, tcp: b.Addr("tcp")[len("tcp://"):]}
	watcher := tb.connect(t, "park-watcher")
	subscribe(t, watcher, sub("will/park/#", 0))
	idle := tb.connect(t, "park-idle")
	old, _ := tb.raw(t, &packet.Connect{ClientID: "park-dup", KeepAlive: 60, Will: &packet.Will{Topic: "will/park/dup", Payload: []byte("x")}}, 0)
	tb.raw(t, &packet.Connect{ClientID: "park-dying", CleanSession: true, KeepAlive: 60, Will: &packet.Will{Topic: "will/park/dying", Payload: []byte("y")}}, 0)
	waitParked(t, tb, 4)

	// Traffic wakes a parked connection.
	if err := idle.WritePacket(&packet.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Pingresp](t, idle)

	// Takeover of a parked connection.
	gone := make(chan time.Time, 1)
	go func() { _ = old.ExpectClosed(10 * time.Second); gone <- time.Now() }()
	tb.raw(t, &packet.Connect{ClientID: "park-dup", KeepAlive: 60}, 0)
	acked := time.Now()
	select {
	case at := <-gone:
		if d := at.Sub(acked); d > 100*time.Millisecond {
			t.Errorf("parked connection closed %v after the new CONNACK", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("parked connection not closed on takeover")
	}
	if w := expect[*packet.Publish](t, watcher); w.Topic != "will/park/dup" {
		t.Errorf("will %q", w.Topic)
	}
	waitParked(t, tb, 3) // watcher, idle, dying (the new park-dup may still be awake)

	// Close wakes parked connections and publishes their wills.
	closed = true
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	e := tb.wait(t, events.And(events.Is(events.WillPublished), events.ForClient("park-dying")))
	if e.Cause != events.CauseShutdown {
		t.Errorf("will cause %q", e.Cause)
	}
}

// earlyTimeoutConn makes the broker's next read fail with a timeout at once,
// as a read deadline shorter than the keepalive would (the 1 s park timer, a
// deadline left over from an earlier wait).
type earlyTimeoutConn struct {
	net.Conn
	early atomic.Int32 // reads still to fail

	mu       sync.Mutex
	deadline time.Time // the read deadline the broker set
}

func (c *earlyTimeoutConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *earlyTimeoutConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// Read fails with a deadline error, while early reads are left, only when
// no byte arrives within 20 ms: as a real deadline, which cannot fire while
// the rest of a packet is already there. (Failing the read that follows a
// packet's first byte would test a situation no socket produces.)
func (c *earlyTimeoutConn) Read(p []byte) (int, error) {
	if c.early.Load() <= 0 {
		return c.Conn.Read(p)
	}
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := c.Conn.Read(p)
	_ = c.Conn.SetReadDeadline(d)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		c.early.Add(-1)
	}
	return n, err
}

// TestEarlyDeadlineIsNotKeepalive checks that a read timeout before 1.5x the
// keepalive since the last packet does not close the connection: only the
// clock decides [MQTT-3.1.2-24]. This is how the fleet simulator saw
// connections with keepalive 30 s closed "for keepalive" after ~1 s of
// silence.
func TestEarlyDeadlineIsNotKeepalive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		keepalive uint16
		early     int32
	}{
		{"keepalive 30 s, one early timeout", 30, 1},
		{"keepalive 30 s, three in a row", 30, 3},
		{"keepalive 2 s, one early timeout", 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := startBroker(t, nil)
			brokerSide, clientSide := net.Pipe()
			t.Cleanup(func() { _ = clientSide.Close() })
			ec := &earlyTimeoutConn{Conn: brokerSide}
			tb.ServeConn(ec)
			id := "early-" + tc.name
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, _, err := client.RawConnect(ctx, clientSide, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311,
				ClientID: id, CleanSession: true, KeepAlive: tc.keepalive})
			if err != nil {
				t.Fatal(err)
			}
			ec.early.Store(tc.early)
			for i := range 3 {
				if err := r.WritePacket(&packet.Pingreq{}); err != nil {
					t.Fatalf("ping %d: %v", i, err)
				}
				expect[*packet.Pingresp](t, r)
			}
			// The broker's reader meets the early timeouts once it waits again.
			for deadline := time.Now().Add(5 * time.Second); ec.early.Load() > 0; {
				if time.Now().After(deadline) {
					t.Fatalf("%d early timeouts not consumed", ec.early.Load())
				}
				time.Sleep(5 * time.Millisecond) // polling a counter the reader updates
			}
			if err := r.WritePacket(&packet.Pingreq{}); err != nil {
				t.Fatalf("ping after the early timeouts: %v", err)
			}
			expect[*packet.Pingresp](t, r)
			if n := tb.rec.Count(disconnectOf(id)); n != 0 {
				e, _ := tb.rec.WaitFor(0, disconnectOf(id))
				t.Fatalf("closed after an early read timeout: %+v", e)
			}
		})
	}
}
