package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestSessionPresent checks the session present flag [MQTT-3.2.2-1]
// [MQTT-3.2.2-2] [MQTT-3.2.2-3] and that a clean session discards the old one
// [MQTT-3.1.2-6].
func TestSessionPresent(t *testing.T) {
	tb := startBroker(t, nil)
	for i, tc := range []struct {
		clean, want bool
	}{
		{false, false}, // new persistent session
		{false, true},  // resumed [MQTT-3.1.2-4]
		{true, false},  // clean: discarded
		{false, false}, // the clean one did not survive
	} {
		r, ack := tb.raw(t, &packet.Connect{ClientID: "sp", CleanSession: tc.clean}, 0)
		if ack.SessionPresent != tc.want {
			t.Errorf("step %d (clean %v): session present %v, want %v", i, tc.clean, ack.SessionPresent, tc.want)
		}
		_ = r.WriteBytes([]byte{0xE0, 0})
		tb.wait(t, events.And(disconnectOf("sp"), func(e events.Event) bool { return true }))
		tb.rec.Reset()
	}
}

// TestOfflineQueue checks that QoS 1/2 messages for an offline persistent
// session are queued (bounded, drops counted and evented), QoS 0 is not, and
// all come in order after reconnecting, with subscriptions kept.
func TestOfflineQueue(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MaxQueued = 5 })
	r, _ := tb.raw(t, &packet.Connect{ClientID: "offline"}, 0)
	subscribe(t, r, sub("q/#", 2))
	_ = r.WriteBytes([]byte{0xE0, 0})
	tb.wait(t, disconnectOf("offline"))

	pub := tb.connect(t, "q-pub")
	publish(t, pub, &packet.Publish{Topic: "q/zero", Payload: []byte("qos0")})
	for i := range 8 {
		publish(t, pub, &packet.Publish{Topic: "q/x", QoS: byte(1 + i%2), PacketID: uint16(i + 1), Payload: fmt.Appendf(nil, "%d", i)})
	}
	drops := tb.rec.Filter(events.And(events.Is(events.Drop), events.ForClient("offline")))
	if len(drops) != 3 || drops[0].Cause != events.CauseQueueFull {
		t.Errorf("want 3 queue_full drops, got %+v", drops)
	}
	if st := tb.Stats(); st.MessagesDropped != 3 {
		t.Errorf("stats dropped %d, want 3", st.MessagesDropped)
	}
	r2, ack := tb.raw(t, &packet.Connect{ClientID: "offline"}, 0)
	if !ack.SessionPresent {
		t.Fatal("session present 0 after reconnect")
	}
	var qos2 []uint16
	for i := range 5 {
		p := expect[*packet.Publish](t, r2)
		if string(p.Payload) != fmt.Sprint(i) || p.QoS != byte(1+i%2) {
			t.Fatalf("message %d: %+v", i, p)
		}
		if p.QoS == 1 {
			_ = r2.WritePacket(&packet.Puback{PacketID: p.PacketID})
		} else {
			_ = r2.WritePacket(&packet.Pubrec{PacketID: p.PacketID})
			qos2 = append(qos2, p.PacketID)
		}
	}
	for _, id := range qos2 {
		if rel := expect[*packet.Pubrel](t, r2); rel.PacketID != id {
			t.Fatalf("PUBREL %d, want %d", rel.PacketID, id)
		}
		_ = r2.WritePacket(&packet.Pubcomp{PacketID: id})
	}
	expectNothing(t, r2, 200*time.Millisecond)
}

// TestResendUnacked checks [MQTT-4.4.0-1]: unacknowledged messages are resent
// with DUP and their original IDs, in order, and a QoS 2 flow past PUBREC
// resumes with PUBREL.
func TestResendUnacked(t *testing.T) {
	tb := startBroker(t, nil)
	r, _ := tb.raw(t, &packet.Connect{ClientID: "resend"}, 0)
	subscribe(t, r, sub("r/#", 2))
	pub := tb.connect(t, "r-pub")
	for i := range 3 {
		publish(t, pub, &packet.Publish{Topic: "r/x", QoS: 1, PacketID: uint16(i + 1), Payload: fmt.Appendf(nil, "%d", i)})
	}
	publish(t, pub, &packet.Publish{Topic: "r/y", QoS: 2, PacketID: 9, Payload: []byte("two")})
	var ids []uint16
	for range 4 {
		ids = append(ids, expect[*packet.Publish](t, r).PacketID)
	}
	_ = r.WritePacket(&packet.Pubrec{PacketID: ids[3]}) // QoS 2 flow moves to PUBREL
	expect[*packet.Pubrel](t, r)
	_ = r.Close()
	tb.wait(t, disconnectOf("resend"))

	r2, ack := tb.raw(t, &packet.Connect{ClientID: "resend"}, 0)
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	for i := range 3 {
		p := expect[*packet.Publish](t, r2)
		if !p.Dup || p.PacketID != ids[i] || string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("resent %d: %+v, want DUP, id %d", i, p, ids[i])
		}
		_ = r2.WritePacket(&packet.Puback{PacketID: p.PacketID})
	}
	if rel := expect[*packet.Pubrel](t, r2); rel.PacketID != ids[3] {
		t.Fatalf("PUBREL id %d, want %d", rel.PacketID, ids[3])
	}
	_ = r2.WritePacket(&packet.Pubcomp{PacketID: ids[3]})
	expectNothing(t, r2, 200*time.Millisecond)
}

// TestInflightWindow checks that at most MaxInflight QoS 1 messages are
// unacknowledged and the rest queue behind the window.
func TestInflightWindow(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MaxInflight = 3 })
	r := tb.connect(t, "window")
	subscribe(t, r, sub("w", 1))
	pub := tb.connect(t, "w-pub")
	for i := range 5 {
		publish(t, pub, &packet.Publish{Topic: "w", QoS: 1, PacketID: uint16(i + 1), Payload: fmt.Appendf(nil, "%d", i)})
	}
	var got []*packet.Publish
	for range 3 {
		got = append(got, expect[*packet.Publish](t, r))
	}
	expectNothing(t, r, 200*time.Millisecond)
	_ = r.WritePacket(&packet.Puback{PacketID: got[0].PacketID})
	if p := expect[*packet.Publish](t, r); string(p.Payload) != "3" {
		t.Fatalf("after one ack got %q, want 3", p.Payload)
	}
	expectNothing(t, r, 200*time.Millisecond)
}
