package client

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/netpark"
	"github.com/mqttfleet/mqttfleet/packet"
)

// skipWithoutPoller skips tests of parking where the platform cannot park.
func skipWithoutPoller(t *testing.T) {
	t.Helper()
	p, err := netpark.New()
	if err != nil {
		t.Skipf("no netpark poller on this platform: %v", err)
	}
	_ = p.Close()
}

// waitParked waits until c's reader has parked (parkAfter of silence), or
// fails the test after 10 s.
func waitParked(t *testing.T, c *Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !c.parked.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("client %s not parked within 10 s", c.ClientID())
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// TestParkedReceivesPublish: a parked client is woken by an incoming
// PUBLISH, delivers it, acknowledges it and parks again.
func TestParkedReceivesPublish(t *testing.T) {
	skipWithoutPoller(t)
	tests := []struct {
		name     string
		qos      byte
		channel  bool // deliver on Messages instead of OnMessage
		wantAck  packet.Type
		finishQ2 bool
	}{
		{name: "QoS 0 OnMessage", qos: 0},
		{name: "QoS 1 OnMessage", qos: 1, wantAck: packet.PUBACK},
		{name: "QoS 1 Messages", qos: 1, channel: true, wantAck: packet.PUBACK},
		{name: "QoS 2 OnMessage", qos: 2, wantAck: packet.PUBREC, finishQ2: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan *packet.Publish, 1)
			opts := Options{ClientID: "parked-rx", KeepAlive: time.Minute}
			if !tt.channel {
				opts.OnMessage = func(p *packet.Publish) { got <- p }
			}
			c, srv := connectFake(t, opts)
			waitParked(t, c)
			for round := range 2 { // park, wake, park again, wake again
				id := uint16(7 + round)
				pub := &packet.Publish{Topic: "t/1", QoS: tt.qos, Payload: []byte(fmt.Sprint("m", round))}
				if tt.qos > 0 {
					pub.PacketID = id
				}
				if err := srv.WritePacket(pub); err != nil {
					t.Fatalf("write PUBLISH: %v", err)
				}
				var m *packet.Publish
				select {
				case m = <-got:
				case m = <-c.Messages():
				case <-time.After(5 * time.Second):
					t.Fatalf("round %d: parked client did not deliver the PUBLISH", round)
				}
				if string(m.Payload) != string(pub.Payload) {
					t.Fatalf("round %d: payload %q, want %q", round, m.Payload, pub.Payload)
				}
				switch tt.wantAck {
				case packet.PUBACK:
					if a := expect[*packet.Puback](t, srv); a.PacketID != id {
						t.Fatalf("PUBACK id %d, want %d", a.PacketID, id)
					}
				case packet.PUBREC:
					if a := expect[*packet.Pubrec](t, srv); a.PacketID != id {
						t.Fatalf("PUBREC id %d, want %d", a.PacketID, id)
					}
				}
				if tt.finishQ2 {
					waitParked(t, c) // PUBREL wakes it too
					if err := srv.WritePacket(&packet.Pubrel{PacketID: id}); err != nil {
						t.Fatal(err)
					}
					if a := expect[*packet.Pubcomp](t, srv); a.PacketID != id {
						t.Fatalf("PUBCOMP id %d, want %d", a.PacketID, id)
					}
				}
				waitParked(t, c)
			}
			if c.Err() != nil {
				t.Fatalf("link ended: %v", c.Err())
			}
		})
	}
}

// TestParkedKeepalive: the keepalive timer pings a parked client, the
// PINGRESP wakes it, and an unanswered PINGREQ still ends the link in time.
func TestParkedKeepalive(t *testing.T) {
	skipWithoutPoller(t)
	rec := events.NewRecorder()
	const keepAlive, pingTimeout = 2 * time.Second, time.Second
	beforeDial := time.Now()
	c, srv := connectFake(t, Options{ClientID: "parked-ping", KeepAlive: keepAlive, PingTimeout: pingTimeout, Events: rec})
	waitParked(t, c) // parkAfter < keepAlive: parked before the first PINGREQ
	expect[*packet.Pingreq](t, srv)
	if !c.parked.Load() {
		t.Fatal("writing PINGREQ woke the reader")
	}
	if err := srv.WritePacket(&packet.Pingresp{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.WaitFor(5*time.Second, events.Is(events.Ping)); err != nil {
		t.Fatalf("PINGRESP to a parked client not seen: %v", err)
	}
	waitParked(t, c)
	expect[*packet.Pingreq](t, srv) // and never answered
	sent := time.Now()
	if !c.parked.Load() {
		t.Fatal("not parked when the unanswered PINGREQ went out")
	}
	select {
	case <-c.Done():
	case <-time.After(pingTimeout + 5*time.Second):
		t.Fatalf("parked client still up %v after an unanswered PINGREQ", time.Since(sent))
	}
	ended := time.Now()
	if el := ended.Sub(sent); el > pingTimeout+2*time.Second {
		t.Errorf("ping timeout noticed after %v, want about %v", el, pingTimeout)
	}
	// Not early either. The server reads a PINGREQ only after the client
	// stamped it, so the instant it was read cannot bound the timeout from
	// below; the dial can. The client writes nothing but PINGREQs here, each
	// a keepalive after its previous write (CONNECT, then the first PINGREQ),
	// and gives up a full ping timeout after the second.
	if el := ended.Sub(beforeDial); el < 2*keepAlive+pingTimeout {
		t.Errorf("link ended %v after dialing, before two keepalives and the ping timeout (%v)", el, 2*keepAlive+pingTimeout)
	}
	if !errors.Is(c.Err(), ErrPingTimeout) {
		t.Errorf("Err() = %v, want ErrPingTimeout", c.Err())
	}
	if err := srv.ExpectClosed(5 * time.Second); err != nil {
		t.Errorf("server side: %v", err)
	}
}

// TestParkedSlowPacket: a packet that starts arriving and stalls past
// parkAfter is still read whole (the park deadline does not cut it).
func TestParkedSlowPacket(t *testing.T) {
	skipWithoutPoller(t)
	got := make(chan *packet.Publish, 1)
	c, srv := connectFake(t, Options{ClientID: "slow", OnMessage: func(p *packet.Publish) { got <- p }})
	waitParked(t, c)
	buf, err := packet.Append(nil, &packet.Publish{Topic: "slow/topic", QoS: 1, PacketID: 3, Payload: []byte("payload")}, packet.V311)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteBytes(buf[:5]); err != nil {
		t.Fatal(err)
	}
	// The resumed reader's park deadline is parkAfter after it started, so
	// the stall is timed from the resume, not from the write: a poller slow
	// to wake would otherwise push the deadline past the rest of the packet.
	deadline := time.Now().Add(10 * time.Second)
	for c.parked.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("first bytes of a packet did not resume the parked client within 10 s")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	// The rest comes after the reader's park deadline has passed: this wait
	// is the condition under test, not a stand-in for one.
	<-time.After(parkAfter + parkAfter/2)
	restAt := c.now()
	if err := srv.WriteBytes(buf[5:]); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Topic != "slow/topic" || string(m.Payload) != "payload" {
			t.Fatalf("got %q %q", m.Topic, m.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("stalled packet not delivered (link: %v)", c.Err())
	}
	if a := expect[*packet.Puback](t, srv); a.PacketID != 3 {
		t.Fatalf("PUBACK id %d, want 3", a.PacketID)
	}
	// Show the deadline really fired inside the packet: the reader that read
	// it parks again once idle, and parking publishes (through c.parked) its
	// start, so reading startedAt then is race-free. Its park deadline was
	// startedAt + parkAfter (lastRecv, from the CONNACK, is older), and the
	// rest of the packet was written after that.
	waitParked(t, c)
	if d := c.startedAt + int64(parkAfter); restAt <= d {
		t.Fatalf("rest of the packet written %v before the reader's park deadline: the stall did not cross it",
			time.Duration(d-restAt))
	}
}

// TestCloseParked: ending a parked client, by any means, leaves no
// goroutine behind — neither its reader nor the poller's.
func TestCloseParked(t *testing.T) {
	skipWithoutPoller(t)
	tests := []struct {
		name    string
		end     func(t *testing.T, c *Client, srv *Raw)
		wantErr error
	}{
		{"Close", func(t *testing.T, c *Client, _ *Raw) { _ = c.Close() }, ErrClosed},
		{"Disconnect", func(t *testing.T, c *Client, srv *Raw) {
			errc := make(chan error, 1)
			go func() { errc <- c.Disconnect(ctxT(t, 5*time.Second)) }()
			expect[*packet.Disconnect](t, srv)
			_ = srv.Close()
			if err := <-errc; err != nil {
				t.Errorf("Disconnect: %v", err)
			}
		}, ErrDisconnected},
		{"broker drops the link", func(t *testing.T, c *Client, srv *Raw) {
			_ = srv.Close()
			<-c.Done()
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			c, srv := connectFake(t, Options{ClientID: "closing", KeepAlive: time.Minute})
			waitParked(t, c)
			tt.end(t, c, srv)
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done not closed")
			}
			if tt.wantErr != nil && !errors.Is(c.Err(), tt.wantErr) {
				t.Errorf("Err() = %v, want %v", c.Err(), tt.wantErr)
			}
			if c.Err() == nil {
				t.Error("Err() = nil after the end")
			}
		})
	}
}

// TestManyParkAndWake: many clients park, are woken by messages, park
// again and are closed while some wake — meant for -race.
func TestManyParkAndWake(t *testing.T) {
	skipWithoutPoller(t)
	if testing.Short() {
		t.Skip("connects 100 clients to mosquitto")
	}
	b := startMosquitto(t)
	const n = 100
	ctx := ctxT(t, 60*time.Second)
	var received atomic.Int64
	clients := make([]*Client, n)
	for i := range clients {
		c, _, err := Dial(ctx, b.Addr, Options{ClientID: fmt.Sprintf("many-%d", i), CleanSession: true,
			KeepAlive: 30 * time.Second, OnMessage: func(*packet.Publish) { received.Add(1) }})
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "many/all", QoS: 1}); err != nil {
			t.Fatalf("client %d: subscribe: %v", i, err)
		}
		clients[i] = c
	}
	// A publisher whose conn is hidden from parking: it keeps its reader.
	pubConn, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := Connect(ctx, pipeless{pubConn}, Options{ClientID: "many-pub", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for round := range 3 {
		for _, c := range clients {
			waitParked(t, c)
		}
		want := int64(n * (round + 1))
		if err := pub.Publish(ctx, "many/all", 1, false, []byte{byte(round)}); err != nil {
			t.Fatalf("round %d: publish: %v", round, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for received.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d messages delivered", round, received.Load(), want)
			}
			time.Sleep(10 * time.Millisecond) // polling with a deadline
		}
	}
	// Close every client while a last message wakes them.
	if err := pub.Publish(ctx, "many/all", 1, false, []byte("last")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			if err := c.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	wg.Wait()
	for _, c := range clients {
		if !errors.Is(c.Err(), ErrClosed) {
			t.Errorf("%s: Err() = %v, want ErrClosed", c.ClientID(), c.Err())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for netpark.Default().Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d conns still parked after every client closed", netpark.Default().Len())
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// pipeless hides a TCP conn's type so the client never parks it, as with
// TLS or WebSocket conns.
type pipeless struct{ net.Conn }
