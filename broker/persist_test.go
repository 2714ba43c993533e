package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// persistConfig writes a broker configuration with persistence on (sync
// every_write unless extra says otherwise) and returns its path and the
// store's.
func persistConfig(t *testing.T, extra string) (cfgPath, storePath string) {
	t.Helper()
	dir := t.TempDir()
	storePath = filepath.Join(dir, "broker.db")
	cfgPath = filepath.Join(dir, "broker.yaml")
	yaml := fmt.Sprintf("persistence:\n  enabled: true\n  path: %q\n%s", storePath, extra)
	if !strings.Contains(extra, "sync:") {
		yaml += "  sync: every_write\n"
	}
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, storePath
}

// readPublish reads packets until a PUBLISH and returns it.
func readPublish(t *testing.T, r *client.Raw) *packet.Publish {
	t.Helper()
	return expect[*packet.Publish](t, r)
}

// TestPersistRestart: a retained message and a persistent session with a
// subscription and 100 queued QoS 1 messages survive a graceful restart and
// a kill -9 of the broker process (sync every_write), and each message is
// delivered once after the client reconnects; acknowledged ones are gone
// after a further restart.
func TestPersistRestart(t *testing.T) {
	for _, mode := range []string{"graceful", "kill9"} {
		t.Run(mode, func(t *testing.T) {
			cfgPath, _ := persistConfig(t, "")
			b1 := startChild(t, cfgPath)
			if b1.recovered != [5]int{} {
				t.Fatalf("a new store recovered %v", b1.recovered)
			}
			sub := b1.connect(t, &packet.Connect{ClientID: "dev-sub", CleanSession: false}, false)
			if codes := subscribe(t, sub, packet.Subscription{Filter: "q/#", QoS: 1}); codes[0] != 1 {
				t.Fatalf("SUBACK %v", codes)
			}
			if err := sub.WritePacket(&packet.Disconnect{}); err != nil {
				t.Fatal(err)
			}
			_ = sub.Close()

			pub := b1.connect(t, &packet.Connect{ClientID: "dev-pub", CleanSession: true}, false)
			publish(t, pub, &packet.Publish{Topic: "state/dev", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("on")})
			// Pipelined: the acknowledgements share group commits.
			for i := range 100 {
				if err := pub.WritePacket(&packet.Publish{Topic: fmt.Sprintf("q/%d", i), QoS: 1, PacketID: uint16(i + 2), Payload: []byte(fmt.Sprintf("m-%d", i))}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 100 {
				if ack := expect[*packet.Puback](t, pub); ack.PacketID != uint16(i+2) {
					t.Fatalf("PUBACK %d, want %d", ack.PacketID, i+2)
				}
			}
			// Every PUBACK promised the message is on disk.
			if mode == "kill9" {
				b1.kill(t)
			} else {
				_ = pub.Close()
				b1.stop(t)
			}

			b2 := startChild(t, cfgPath)
			if got := b2.recovered; got[0] != 1 || got[1] != 1 || got[2]+got[3] != 100 {
				t.Fatalf("recovered retained, sessions, queued, inflight, incoming QoS 2 = %v; want 1, 1, and 100 messages", got)
			}
			sub = b2.connect(t, &packet.Connect{ClientID: "dev-sub", CleanSession: false}, true)
			for i := range 100 {
				p := readPublish(t, sub)
				if want := fmt.Sprintf("m-%d", i); string(p.Payload) != want || p.QoS != 1 {
					t.Fatalf("message %d: %q QoS %d, want %q QoS 1", i, p.Payload, p.QoS, want)
				}
				if err := sub.WritePacket(&packet.Puback{PacketID: p.PacketID}); err != nil {
					t.Fatal(err)
				}
			}
			// The retained message came back too.
			if err := sub.WritePacket(&packet.Subscribe{PacketID: 9, Subscriptions: []packet.Subscription{{Filter: "state/#", QoS: 1}}}); err != nil {
				t.Fatal(err)
			}
			expect[*packet.Suback](t, sub)
			if p := readPublish(t, sub); p.Topic != "state/dev" || string(p.Payload) != "on" || !p.Retain {
				t.Fatalf("retained: %s %q retain %v", p.Topic, p.Payload, p.Retain)
			} else if err := sub.WritePacket(&packet.Puback{PacketID: p.PacketID}); err != nil {
				t.Fatal(err)
			}
			// Nothing else is pending: the next message is a new one.
			pub = b2.connect(t, &packet.Connect{ClientID: "dev-pub", CleanSession: true}, false)
			publish(t, pub, &packet.Publish{Topic: "q/marker", QoS: 1, PacketID: 1, Payload: []byte("marker")})
			p := readPublish(t, sub)
			if string(p.Payload) != "marker" {
				t.Fatalf("after the 100 messages got %q, want the marker", p.Payload)
			}
			if err := sub.WritePacket(&packet.Puback{PacketID: p.PacketID}); err != nil {
				t.Fatal(err)
			}
			// A ping round trip orders the PUBACK before the stop.
			if err := sub.WritePacket(&packet.Pingreq{}); err != nil {
				t.Fatal(err)
			}
			expect[*packet.Pingresp](t, sub)
			b2.stop(t)
			if !strings.Contains(b2.stderr.String(), "persistence recovered") {
				t.Errorf("no recovery log line in:\n%s", b2.stderr)
			}

			// Acknowledged messages are gone; the session and the retained message stay.
			b3 := startChild(t, cfgPath)
			if got := b3.recovered; got != [5]int{1, 1, 0, 0, 0} {
				t.Fatalf("after acknowledging: recovered %v, want [1 1 0 0 0]", got)
			}
			b3.stop(t)
		})
	}
}

// TestPersistQoS2InFlight: across a kill -9, an incoming QoS 2 message
// awaiting PUBREL is not routed again when resent and its PUBREL completes
// (5.0: PUBCOMP success, not Packet Identifier not found); an outgoing QoS
// 2 message past PUBREC is resumed with PUBREL, and an unacknowledged QoS 1
// message is resent with DUP and its packet ID.
func TestPersistQoS2InFlight(t *testing.T) {
	cfgPath, _ := persistConfig(t, "")
	b1 := startChild(t, cfgPath)
	v5 := func(id string) *packet.Connect {
		exp := uint32(3600)
		return &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: id, Props: &packet.Properties{SessionExpiry: &exp}}
	}
	sub := b1.connect(t, v5("q2-sub"), false)
	if codes := subscribe(t, sub, packet.Subscription{Filter: "x/#", QoS: 2}); codes[0] != 2 {
		t.Fatalf("SUBACK %v", codes)
	}
	pub := b1.connect(t, v5("q2-pub"), false)
	// The publisher's QoS 2 message: PUBREC, no PUBREL yet.
	if err := pub.WritePacket(&packet.Publish{Topic: "x/two", QoS: 2, PacketID: 7, Payload: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Pubrec](t, pub)
	// The subscriber receives it, answers PUBREC, gets PUBREL, holds PUBCOMP.
	two := readPublish(t, sub)
	if err := sub.WritePacket(&packet.Pubrec{PacketID: two.PacketID}); err != nil {
		t.Fatal(err)
	}
	if rel := expect[*packet.Pubrel](t, sub); rel.PacketID != two.PacketID {
		t.Fatalf("PUBREL %d, want %d", rel.PacketID, two.PacketID)
	}
	// A QoS 1 message the subscriber does not acknowledge.
	if err := pub.WritePacket(&packet.Publish{Topic: "x/one", QoS: 1, PacketID: 8, Payload: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Puback](t, pub)
	one := readPublish(t, sub)
	// The PUBREC's state change is not waited for by any acknowledgement;
	// a ping after it orders it before the PINGRESP, and the store commits
	// in order, so a QoS 0 round trip through the committer is not needed:
	// a SUBSCRIBE (whose SUBACK waits for everything queued before it) is.
	if codes := subscribe(t, sub, packet.Subscription{Filter: "sync/#", QoS: 0}); codes[0] != 0 {
		t.Fatalf("SUBACK %v", codes)
	}
	b1.kill(t)

	b2 := startChild(t, cfgPath)
	if got := b2.recovered; got[1] != 2 || got[3] != 2 || got[4] != 1 {
		t.Fatalf("recovered %v, want 2 sessions, 2 in flight, 1 incoming QoS 2", got)
	}
	sub = b2.connect(t, v5("q2-sub"), true)
	if rel := expect[*packet.Pubrel](t, sub); rel.PacketID != two.PacketID {
		t.Fatalf("resumed with PUBREL %d, want %d", rel.PacketID, two.PacketID)
	}
	if p := readPublish(t, sub); p.PacketID != one.PacketID || !p.Dup || string(p.Payload) != "one" {
		t.Fatalf("resent %q id %d dup %v, want %q id %d dup", p.Payload, p.PacketID, p.Dup, "one", one.PacketID)
	}
	if err := sub.WritePacket(&packet.Pubcomp{PacketID: two.PacketID}); err != nil {
		t.Fatal(err)
	}
	if err := sub.WritePacket(&packet.Puback{PacketID: one.PacketID}); err != nil {
		t.Fatal(err)
	}
	pub = b2.connect(t, v5("q2-pub"), true)
	// Resent: acknowledged, not routed again [MQTT-4.3.3-2].
	if err := pub.WritePacket(&packet.Publish{Topic: "x/two", QoS: 2, PacketID: 7, Dup: true, Payload: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Pubrec](t, pub)
	if err := pub.WritePacket(&packet.Pubrel{PacketID: 7}); err != nil {
		t.Fatal(err)
	}
	if comp := expect[*packet.Pubcomp](t, pub); comp.PacketID != 7 || comp.ReasonCode != 0 {
		t.Fatalf("PUBCOMP %d reason %#x, want 7 success (the ID was held across the restart)", comp.PacketID, comp.ReasonCode)
	}
	publish(t, pub, &packet.Publish{Topic: "x/marker", QoS: 1, PacketID: 9, Payload: []byte("marker")})
	if p := readPublish(t, sub); string(p.Payload) != "marker" {
		t.Fatalf("subscriber got %q, want the marker (the resent QoS 2 message must not be routed again)", p.Payload)
	}
	b2.stop(t)
}

// TestPersistSessionEnds: a clean start that ends a stored session has
// made that durable by its CONNACK (kill -9 right after it brings nothing
// back), and a 5.0 DISCONNECT that changes the Session Expiry Interval is
// stored.
func TestPersistSessionEnds(t *testing.T) {
	cfgPath, _ := persistConfig(t, "")
	b1 := startChild(t, cfgPath)
	r := b1.connect(t, &packet.Connect{ClientID: "ends", CleanSession: false}, false)
	subscribe(t, r, packet.Subscription{Filter: "e/#", QoS: 1})
	_ = r.WritePacket(&packet.Disconnect{})
	_ = r.Close()
	exp := uint32(3600)
	r5 := b1.connect(t, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "five", Props: &packet.Properties{SessionExpiry: &exp}}, false)
	subscribe(t, r5, packet.Subscription{Filter: "f/#", QoS: 1})
	// The clean start's CONNACK comes after the old session's deletion is on disk.
	b1.connect(t, &packet.Connect{ClientID: "ends", CleanSession: true}, false)
	b1.kill(t)

	b2 := startChild(t, cfgPath)
	if got := b2.recovered; got[1] != 1 {
		t.Fatalf("recovered %v, want only the 5.0 session", got)
	}
	r5 = b2.connect(t, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "five", Props: &packet.Properties{SessionExpiry: &exp}}, true)
	// DISCONNECT with Session Expiry Interval 0: the session ends with the connection.
	zero := uint32(0)
	if err := r5.WritePacket(&packet.Disconnect{Props: &packet.Properties{SessionExpiry: &zero}}); err != nil {
		t.Fatal(err)
	}
	if err := r5.ExpectClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	b2.stop(t) // graceful: whatever was queued is committed
	b3 := startChild(t, cfgPath)
	if got := b3.recovered; got[1] != 0 {
		t.Fatalf("recovered %v after the session ended, want no session", got)
	}
	b3.stop(t)
}
