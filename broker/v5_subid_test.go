package broker

import (
	"slices"
	"testing"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// subscribeID subscribes with a Subscription Identifier (0: none) and
// requires every filter granted its QoS.
func subscribeID(t *testing.T, r *client.Raw, id uint32, subs ...packet.Subscription) {
	t.Helper()
	s := &packet.Subscribe{PacketID: 3, Subscriptions: subs}
	if id != 0 {
		s.Props = &packet.Properties{SubscriptionIDs: []uint32{id}}
	}
	if err := r.WritePacket(s); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	ack := expect[*packet.Suback](t, r)
	for i, code := range ack.ReturnCodes {
		if code != subs[i].QoS {
			t.Fatalf("SUBACK code 0x%02X for %s, want %d", code, subs[i].Filter, subs[i].QoS)
		}
	}
}

// subIDs are the Subscription Identifiers of a delivered message, sorted.
func subIDs(p *packet.Publish) []uint32 {
	if p.Props == nil {
		return nil
	}
	ids := slices.Clone(p.Props.SubscriptionIDs)
	slices.Sort(ids)
	return ids
}

// ping sends PINGREQ and requires PINGRESP as the next packet: nothing was
// queued for r before it.
func ping(t *testing.T, r *client.Raw) {
	t.Helper()
	if err := r.WritePacket(&packet.Pingreq{}); err != nil {
		t.Fatalf("pingreq: %v", err)
	}
	expect[*packet.Pingresp](t, r)
}

// TestV5SubscriptionIdentifiers checks that a delivered PUBLISH carries the
// identifiers of the matching subscriptions [MQTT-3.3.4-3], one copy at the
// highest QoS for overlapping ones with all of them [MQTT-3.3.4-2]
// [MQTT-3.3.4-4], that a replacing SUBSCRIBE without one removes it, that
// retained messages sent on subscribe carry it, and that identifier 0 is a
// Protocol Error.
func TestV5SubscriptionIdentifiers(t *testing.T) {
	tb := startBroker(t, nil)
	s := tb.connect5(t, "sid-sub")
	plain := tb.connect5(t, "sid-plain")
	p := tb.connect5(t, "sid-pub")
	subscribeID(t, s, 7, sub("sid/a", 1))
	subscribeID(t, s, 9, sub("sid/+", 2))
	subscribe(t, plain, sub("sid/#", 0))

	publish(t, p, &packet.Publish{Topic: "sid/a", QoS: 2, PacketID: 1, Payload: []byte("both")})
	m := expect[*packet.Publish](t, s)
	if m.QoS != 2 || !slices.Equal(subIDs(m), []uint32{7, 9}) {
		t.Errorf("overlapping match: QoS %d IDs %v, want one copy at QoS 2 with IDs [7 9]", m.QoS, subIDs(m))
	}
	if m.QoS == 2 {
		_ = s.WritePacket(&packet.Pubrec{PacketID: m.PacketID})
		expect[*packet.Pubrel](t, s)
		_ = s.WritePacket(&packet.Pubcomp{PacketID: m.PacketID})
	}
	ping(t, s) // one copy only
	if m := expect[*packet.Publish](t, plain); len(subIDs(m)) != 0 {
		t.Errorf("subscriber without identifiers got IDs %v", subIDs(m))
	}

	// The replacing subscription has no identifier: the message has none.
	subscribeID(t, s, 0, sub("sid/+", 0))
	publish(t, p, &packet.Publish{Topic: "sid/b", Payload: []byte("none")})
	if m := expect[*packet.Publish](t, s); len(subIDs(m)) != 0 {
		t.Errorf("after a SUBSCRIBE without identifier: IDs %v, want none", subIDs(m))
	}
	expect[*packet.Publish](t, plain)

	// Retained messages sent because of the subscription carry its identifier.
	publish(t, p, &packet.Publish{Topic: "sid/r/x", Retain: true, Payload: []byte("kept")})
	expect[*packet.Publish](t, plain)
	subscribeID(t, s, 11, sub("sid/r/#", 1))
	if m := expect[*packet.Publish](t, s); !m.Retain || !slices.Equal(subIDs(m), []uint32{11}) {
		t.Errorf("retained message on subscribe: RETAIN %v IDs %v, want RETAIN with IDs [11]", m.Retain, subIDs(m))
	}

	// Identifier 0 is a Protocol Error: DISCONNECT 0x82.
	z := tb.connect5(t, "sid-zero")
	if err := z.WritePacket(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{sub("sid/z", 0)},
		Props: &packet.Properties{SubscriptionIDs: []uint32{0}}}); err != nil {
		t.Fatal(err)
	}
	expectServerDisconnect(t, z, rcProtocolError)
	tb.wait(t, events.And(disconnectOf("sid-zero"), func(e events.Event) bool { return e.Cause == events.CauseViolation }))
}
