package broker

import (
	"testing"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// sendQoS2 sends a QoS 2 PUBLISH (the caller reads the answer).
func sendQoS2(t *testing.T, r *client.Raw, id uint16, dup bool) {
	t.Helper()
	if err := r.WritePacket(&packet.Publish{Topic: "rm/x", QoS: 2, PacketID: id, Dup: dup, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

// TestV5ReceiveMaximum checks that a 5.0 client is held to the Receive
// Maximum the broker advertised [MQTT-3.3.4-7]: QoS 2 flows between PUBREC
// and PUBREL count (QoS 1 is acknowledged at once); one more new PUBLISH
// gets DISCONNECT 0x93. A resent PUBLISH does not count again, a PUBREL
// frees a place, flows carried over from an earlier connection do not use
// up the new connection's quota, and 3.1.1 clients have no such limit.
func TestV5ReceiveMaximum(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MaxInflight = 2 })

	r, ack := tb.raw5(t, &packet.Connect{ClientID: "rm-over", CleanSession: true}, 0)
	if rm := ack.Props.ReceiveMaximum; rm == nil || *rm != 2 {
		t.Fatalf("Receive Maximum %v, want 2", rm)
	}
	for id := uint16(1); id <= 2; id++ {
		sendQoS2(t, r, id, false)
		expect[*packet.Pubrec](t, r)
	}
	sendQoS2(t, r, 2, true) // a resend: still 2 flows
	expect[*packet.Pubrec](t, r)
	_ = r.WritePacket(&packet.Pubrel{PacketID: 1})
	expect[*packet.Pubcomp](t, r)
	sendQoS2(t, r, 3, false) // 1 was released: 2 flows again
	expect[*packet.Pubrec](t, r)
	sendQoS2(t, r, 4, false)
	expectServerDisconnect(t, r, 0x93)
	e := tb.wait(t, events.And(events.Is(events.Violation), events.ForClient("rm-over")))
	if e.Statement != "MQTT-3.3.4-7" || e.Code != 0x93 {
		t.Errorf("violation statement %q code 0x%02X", e.Statement, e.Code)
	}

	// Two flows carried over in the session: the new connection has its
	// own quota of 2 beside them.
	cp := &packet.Connect{ClientID: "rm-carry", Props: &packet.Properties{SessionExpiry: u32(60)}}
	r, _ = tb.raw5(t, cp, 0)
	sendQoS2(t, r, 1, false)
	expect[*packet.Pubrec](t, r)
	sendQoS2(t, r, 2, false)
	expect[*packet.Pubrec](t, r)
	_ = r.Close()
	tb.wait(t, disconnectOf("rm-carry"))
	r, _ = tb.raw5(t, cp, 0)
	for id := uint16(3); id <= 4; id++ {
		sendQoS2(t, r, id, false)
		expect[*packet.Pubrec](t, r)
	}
	sendQoS2(t, r, 5, false)
	expectServerDisconnect(t, r, 0x93)

	// 3.1.1: no Receive Maximum.
	r = tb.connect(t, "rm-311")
	for id := uint16(1); id <= 4; id++ {
		sendQoS2(t, r, id, false)
		expect[*packet.Pubrec](t, r)
	}
}

// TestV5FailedPubrecEndsFlow: a subscriber's PUBREC with a reason code of
// 0x80 or more acknowledges the QoS 2 message and ends its flow: no PUBREL
// follows and a resumed session does not get the message again
// [MQTT-4.4.0-2]; a successful PUBREC still gets its PUBREL [MQTT-4.3.3-4].
func TestV5FailedPubrecEndsFlow(t *testing.T) {
	tb := startBroker(t, nil)
	cp := &packet.Connect{ClientID: "rec-fail", Props: &packet.Properties{SessionExpiry: u32(60)}}
	s, _ := tb.raw5(t, cp, 0)
	subscribe(t, s, sub("rec/x", 2))
	p := tb.connect5(t, "rec-pub")
	publish(t, p, &packet.Publish{Topic: "rec/x", QoS: 2, PacketID: 1, Payload: []byte("refused")})
	publish(t, p, &packet.Publish{Topic: "rec/x", QoS: 2, PacketID: 2, Payload: []byte("taken")})
	refused, taken := expect[*packet.Publish](t, s), expect[*packet.Publish](t, s)
	_ = s.WritePacket(&packet.Pubrec{PacketID: refused.PacketID, ReasonCode: 0x80})
	_ = s.WritePacket(&packet.Pubrec{PacketID: taken.PacketID})
	if rel := expect[*packet.Pubrel](t, s); rel.PacketID != taken.PacketID {
		t.Fatalf("PUBREL for packet ID %d, want only %d's", rel.PacketID, taken.PacketID)
	}
	_ = s.WritePacket(&packet.Pubcomp{PacketID: taken.PacketID})
	_ = s.WritePacket(&packet.Pingreq{})
	expect[*packet.Pingresp](t, s)
	_ = s.Close()
	tb.wait(t, disconnectOf("rec-fail"))
	cp.CleanSession = false
	s, ack := tb.raw5(t, cp, 0)
	if !ack.SessionPresent {
		t.Fatal("session not resumed")
	}
	_ = s.WritePacket(&packet.Pingreq{})
	expect[*packet.Pingresp](t, s) // nothing resent before it
}
