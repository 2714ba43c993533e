package broker

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestConnectRules covers CONNECT handling: [MQTT-3.1.0-1] [MQTT-3.1.0-2]
// [MQTT-3.1.2-1] [MQTT-3.1.2-2] [MQTT-3.1.3-6] [MQTT-3.1.3-8] [MQTT-4.8.0-1].
func TestConnectRules(t *testing.T) {
	tb := startBroker(t, nil)
	for _, tc := range []struct {
		name      string
		raw       []byte          // sent first, instead of a CONNECT
		cp        *packet.Connect // sent first otherwise
		then      packet.Packet   // sent after a successful CONNACK
		wantCode  int             // expected CONNACK code; -1: closed without CONNACK
		statement string          // expected Disconnect statement
	}{
		{name: "first packet PINGREQ", raw: []byte{0xC0, 0x00}, wantCode: -1, statement: "MQTT-3.1.0-1"},
		{name: "second CONNECT", cp: &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "second", CleanSession: true},
			then: &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "second", CleanSession: true}, wantCode: 0, statement: "MQTT-3.1.0-2"},
		{name: "bad protocol name", raw: []byte{0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 60, 0, 2, 'i', 'd'}, wantCode: -1, statement: "MQTT-3.1.2-1"},
		{name: "unsupported level", raw: []byte{0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'T', 9, 2, 0, 60, 0, 2, 'i', 'd'}, wantCode: 1, statement: "MQTT-3.1.2-2"},
		{name: "empty id persistent", cp: &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4}, wantCode: 2, statement: "MQTT-3.1.3-8"},
		{name: "empty id clean", cp: &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true}, wantCode: 0},
		{name: "MQTT 3.1", cp: &packet.Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, ClientID: "v31", CleanSession: true}, wantCode: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := client.NewRaw(tb.dial(t), packet.V311)
			var err error
			if tc.raw != nil {
				err = r.WriteBytes(tc.raw)
			} else {
				err = r.WritePacket(tc.cp)
			}
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			if tc.wantCode >= 0 {
				ack := expect[*packet.Connack](t, r)
				if int(ack.ReturnCode) != tc.wantCode {
					t.Fatalf("CONNACK code %d, want %d", ack.ReturnCode, tc.wantCode)
				}
			}
			if tc.then != nil {
				if err := r.WritePacket(tc.then); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			if tc.statement == "" {
				expectNothing(t, r, 200*time.Millisecond)
				return
			}
			// [MQTT-4.8.0-1] closed without anything more being sent.
			if err := r.ExpectClosed(5 * time.Second); err != nil {
				t.Fatalf("want the broker to close: %v", err)
			}
			tb.wait(t, events.And(events.Is(events.Disconnect), func(e events.Event) bool { return e.Statement == tc.statement }))
		})
	}
}

// TestAssignedClientID checks [MQTT-3.1.3-6]: two empty IDs get distinct IDs.
func TestAssignedClientID(t *testing.T) {
	tb := startBroker(t, nil)
	tb.raw(t, &packet.Connect{CleanSession: true}, 0)
	tb.raw(t, &packet.Connect{CleanSession: true}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	acks, err := tb.rec.WaitN(ctx, events.And(events.Is(events.ConnAck), func(e events.Event) bool { return e.Code == 0 }), 2)
	if err != nil || len(acks) != 2 || acks[0].ClientID == "" || acks[0].ClientID == acks[1].ClientID {
		t.Fatalf("want two distinct assigned IDs, got %+v", acks)
	}
}

// TestTakeover checks [MQTT-3.1.4-2]: the first connection is closed within
// 100 ms of the second CONNACK, its will is published with cause takeover,
// and a persistent session continues [MQTT-3.2.2-2].
func TestTakeover(t *testing.T) {
	tb := startBroker(t, nil)
	watcher := tb.connect(t, "watcher")
	subscribe(t, watcher, sub("will/#", 1))

	first, _ := tb.raw(t, &packet.Connect{ClientID: "dup", KeepAlive: 60,
		Will: &packet.Will{Topic: "will/dup", Payload: []byte("gone"), QoS: 1}}, 0)
	subscribe(t, first, sub("kept/topic", 1))

	closed := make(chan time.Time, 1)
	go func() {
		_ = first.ExpectClosed(10 * time.Second)
		closed <- time.Now()
	}()
	second, ack := tb.raw(t, &packet.Connect{ClientID: "dup", KeepAlive: 60}, 0)
	acked := time.Now()
	if !ack.SessionPresent {
		t.Errorf("takeover of a persistent session: session present 0, want 1")
	}
	select {
	case at := <-closed:
		if d := at.Sub(acked); d > 100*time.Millisecond {
			t.Errorf("first connection closed %v after the second CONNACK, want within 100ms", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("first connection not closed")
	}
	e := tb.wait(t, disconnectOf("dup"))
	if e.Cause != events.CauseTakeover {
		t.Errorf("disconnect cause %q, want takeover", e.Cause)
	}
	w := expect[*packet.Publish](t, watcher)
	if w.Topic != "will/dup" || string(w.Payload) != "gone" || w.QoS != 1 {
		t.Errorf("will %+v", w)
	}
	_ = watcher.WritePacket(&packet.Puback{PacketID: w.PacketID})
	tb.wait(t, events.And(events.Is(events.WillPublished), events.ForClient("dup"), func(e events.Event) bool { return e.Cause == events.CauseTakeover }))

	// The subscription made on the first connection still delivers.
	pub := tb.connect(t, "pub")
	publish(t, pub, &packet.Publish{Topic: "kept/topic", QoS: 1, PacketID: 3, Payload: []byte("x")})
	if p := expect[*packet.Publish](t, second); p.Topic != "kept/topic" {
		t.Errorf("got %q", p.Topic)
	}
}

// TestMaxConnections checks that connections beyond the limit get CONNACK 3.
func TestMaxConnections(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MaxConnections = 2 })
	tb.connect(t, "a")
	tb.connect(t, "b")
	tb.raw(t, &packet.Connect{ClientID: "c", CleanSession: true}, packet.RefusedServerUnavailable)
}

// TestMaxConnectionsConcurrent checks that max_connections holds when many
// clients connect at once: exactly the limit is accepted, the rest get
// CONNACK 3, and a freed slot can be taken again.
func TestMaxConnectionsConcurrent(t *testing.T) {
	for _, tc := range []struct{ limit, clients int }{{1, 20}, {5, 60}, {20, 100}} {
		t.Run(fmt.Sprintf("%d of %d", tc.limit, tc.clients), func(t *testing.T) {
			tb := startBroker(t, func(c *Config) { c.MaxConnections = tc.limit })
			// Admitted handshakes wait until all clients got that far or
			// 500 ms passed, so they overlap as under a connect storm.
			var arrived atomic.Int64
			all := make(chan struct{})
			timer := time.AfterFunc(500*time.Millisecond, func() { close(all) })
			testHookAdmitted = func() {
				if arrived.Add(1) == int64(tc.clients) && timer.Stop() {
					close(all)
				}
				<-all
			}
			t.Cleanup(func() { testHookAdmitted = nil })
			conns := make([]net.Conn, tc.clients)
			for i := range conns {
				conns[i] = tb.dial(t)
			}
			// Every CONNECT is written before any CONNACK is read, so the
			// handshakes overlap in the broker.
			var wg sync.WaitGroup
			codes := make([]int, tc.clients)
			start := make(chan struct{})
			for i, nc := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_, ack, err := client.RawConnect(ctx, nc, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311,
						ClientID: fmt.Sprintf("max-%d", i), CleanSession: true})
					codes[i] = -1
					if err == nil {
						codes[i] = int(ack.ReturnCode)
					}
				}()
			}
			close(start)
			wg.Wait()
			accepted, refused := -1, 0
			for i, code := range codes {
				switch code {
				case int(packet.Accepted):
					if accepted < 0 {
						accepted = 0
					}
					accepted++
					if accepted == 1 {
						_ = conns[i].Close() // frees a slot for the last check
					}
				case int(packet.RefusedServerUnavailable):
					refused++
				default:
					t.Errorf("client %d: CONNACK %d", i, code)
				}
			}
			if accepted != tc.limit || refused != tc.clients-tc.limit {
				t.Fatalf("%d accepted, %d refused; want %d and %d", accepted, refused, tc.limit, tc.clients-tc.limit)
			}
			// The closed connection's slot becomes free once the broker sees it end.
			deadline := time.Now().Add(5 * time.Second)
			for tb.Stats().ClientsConnected >= tc.limit && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // polling a counter with a deadline
			}
			tb.raw(t, &packet.Connect{ClientID: "max-again", CleanSession: true}, packet.Accepted)
			tb.raw(t, &packet.Connect{ClientID: "max-over", CleanSession: true}, packet.RefusedServerUnavailable)
		})
	}
}

// TestMaxPacketSize checks that a packet over the limit closes the connection.
func TestMaxPacketSize(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MaxPacketSize = 1024 })
	r := tb.connect(t, "big")
	if err := r.WritePacket(&packet.Publish{Topic: "t", Payload: make([]byte, 2048)}); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpectClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if e := tb.wait(t, disconnectOf("big")); e.Cause != events.CauseTooLarge {
		t.Errorf("cause %q, want too_large", e.Cause)
	}
}

// client_id_prefixes admits only the Client Identifiers it names: others are
// refused with 0x02 (3.1.1) or 0x85 (5.0) and closed [MQTT-3.1.3-8]
// [MQTT-3.1.3-9], each a connack event naming the statement; an identifier
// the broker assigns is its own and not checked.
func TestClientIDPrefixes(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.ClientIDPrefixes = []string{"dev-", "gw-"} })
	for _, tc := range []struct {
		level byte
		id    string
		want  byte
	}{
		{packet.V311, "dev-1", packet.Accepted},
		{packet.V311, "gw-9", packet.Accepted},
		{packet.V311, "rogue", packet.RefusedIdentifierRejected},
		{packet.V5, "dev-2", 0x00},
		{packet.V5, "devx", 0x85},
		{packet.V5, "", 0x00}, // assigned by the broker
	} {
		r, _ := tb.raw(t, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: tc.level, ClientID: tc.id, CleanSession: true}, tc.want)
		if tc.want != 0 {
			if err := r.ExpectClosed(5 * time.Second); err != nil {
				t.Errorf("%q at level %d after the refusal: %v", tc.id, tc.level, err)
			}
			e := tb.wait(t, events.And(events.Is(events.ConnAck), events.ForClient(tc.id)))
			if e.Statement != "MQTT-3.1.3-8" || e.Code != int(packet.RefusedIdentifierRejected) && e.Code != 0x85 {
				t.Errorf("connack event for %q: statement %q code %#x", tc.id, e.Statement, e.Code)
			}
		}
	}
}
