package broker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// member5 connects a 5.0 client with the given Session Expiry Interval and
// Receive Maximum (0: none sent) and Clean Start clean.
func (tb *testBroker) member5(t *testing.T, id string, clean bool, expiry uint32, recvMax uint16) (*client.Raw, *packet.Connack) {
	t.Helper()
	props := &packet.Properties{SessionExpiry: u32(expiry)}
	if recvMax > 0 {
		props.ReceiveMaximum = &recvMax
	}
	return tb.raw5(t, &packet.Connect{ClientID: id, CleanSession: clean, Props: props}, 0)
}

// recvPublish reads the next packet, a PUBLISH, and returns it.
func recvPublish(t *testing.T, r *client.Raw) *packet.Publish {
	t.Helper()
	return expect[*packet.Publish](t, r)
}

// kill closes a client's socket without DISCONNECT and waits until the
// broker has detached its session.
func (tb *testBroker) kill(t *testing.T, r *client.Raw, id string) {
	t.Helper()
	n := tb.rec.Count(disconnectOf(id))
	_ = r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tb.rec.WaitN(ctx, disconnectOf(id), n+1); err != nil {
		t.Fatalf("wait for the broker to see %s gone: %v", id, err)
	}
}

// TestV5SharedRoundRobin checks the distribution policy: with every member
// connected and free, messages go to the members in turn, one member per
// message, with the member's granted QoS [MQTT-4.8.2-3] and Subscription
// Identifier; an ordinary subscriber to the same topic gets every message.
func TestV5SharedRoundRobin(t *testing.T) {
	tb := startBroker(t, nil)
	members := make([]*client.Raw, 3)
	for i := range members {
		members[i] = tb.connect5(t, fmt.Sprintf("rr-%d", i))
		subscribeID(t, members[i], uint32(i+1), sub("$share/g/rr/+", byte(i))) // QoS 0, 1, 2
	}
	all := tb.connect5(t, "rr-all")
	subscribe(t, all, sub("rr/+", 2))
	p := tb.connect5(t, "rr-pub")
	for i := range 6 {
		publish(t, p, &packet.Publish{Topic: "rr/t", QoS: 2, PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
	}
	for i, r := range members {
		got := []*packet.Publish{recvPublish(t, r), recvPublish(t, r)}
		for k, m := range got {
			if want := byte(i + 3*k); m.Payload[0] != want {
				t.Errorf("member %d message %d: payload %d, want %d (round robin)", i, k, m.Payload[0], want)
			}
			if m.QoS != byte(i) {
				t.Errorf("member %d: QoS %d, want its granted QoS %d [MQTT-4.8.2-3]", i, m.QoS, i)
			}
			if !slices.Equal(subIDs(m), []uint32{uint32(i + 1)}) {
				t.Errorf("member %d: Subscription Identifiers %v, want [%d]", i, subIDs(m), i+1)
			}
			switch m.QoS {
			case 1:
				_ = r.WritePacket(&packet.Puback{PacketID: m.PacketID})
			case 2:
				_ = r.WritePacket(&packet.Pubrec{PacketID: m.PacketID})
				expect[*packet.Pubrel](t, r)
				_ = r.WritePacket(&packet.Pubcomp{PacketID: m.PacketID})
			}
		}
		ping(t, r) // two messages each, no more
	}
	for range 6 {
		recvPublish(t, all)
	}
}

// TestV5SharedSubscribeRules checks share name validation (SUBACK 0x8F)
// [MQTT-4.8.2-1] [MQTT-4.8.2-2], that a shared subscription gets no
// retained messages, that UNSUBSCRIBE leaves the group, that No Local on a
// shared subscription is a Protocol Error [MQTT-3.8.3-4], and that a 3.1.1
// client's "$share/..." filter stays an ordinary filter.
func TestV5SharedSubscribeRules(t *testing.T) {
	tb := startBroker(t, nil)
	r := tb.connect5(t, "rules")
	got := subscribe(t, r, sub("$share//sr/a", 1), sub("$share/a+/sr/a", 1), sub("$share/a#/sr/a", 1),
		sub("$share/a", 1), sub("$share/a/", 1), sub("$share/ok/sr/a", 1))
	if want := []byte{0x8F, 0x8F, 0x8F, 0x8F, 0x8F, 1}; string(got) != string(want) {
		t.Errorf("SUBACK codes % X, want % X", got, want)
	}

	p := tb.connect5(t, "rules-pub")
	publish(t, p, &packet.Publish{Topic: "sr/ret", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("kept")}) // stored once PUBACK is back
	subscribe(t, r, sub("$share/ok/sr/ret", 0))
	ping(t, r) // no retained message on a shared subscription

	publish(t, p, &packet.Publish{Topic: "sr/a", Payload: []byte("in")})
	recvPublish(t, r)
	if err := r.WritePacket(&packet.Unsubscribe{PacketID: 4, Filters: []string{"$share/ok/sr/a"}}); err != nil {
		t.Fatal(err)
	}
	if u := expect[*packet.Unsuback](t, r); string(u.ReasonCodes) != "\x00" {
		t.Errorf("UNSUBACK codes % X, want 00", u.ReasonCodes)
	}
	publish(t, p, &packet.Publish{Topic: "sr/a", Payload: []byte("out")})
	ping(t, r)

	old := tb.connect(t, "rules-311")
	if got := subscribe(t, old, sub("$share/ok/sr/a", 0)); string(got) != "\x00" {
		t.Fatalf("3.1.1 SUBACK % X", got)
	}
	publish(t, p, &packet.Publish{Topic: "sr/a", Payload: []byte("not for 3.1.1")})
	publish(t, p, &packet.Publish{Topic: "$share/ok/sr/a", Payload: []byte("literal")})
	if m := recvPublish(t, old); m.Topic != "$share/ok/sr/a" {
		t.Errorf("3.1.1 client got %q, want only the literal topic", m.Topic)
	}

	nl := tb.connect5(t, "rules-nolocal")
	if err := nl.WritePacket(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/ok/sr/a", NoLocal: true}}}); err != nil {
		t.Fatal(err)
	}
	expectServerDisconnect(t, nl, rcProtocolError)
	if e := tb.wait(t, disconnectOf("rules-nolocal")); e.Statement != "MQTT-3.8.3-4" {
		t.Errorf("disconnect statement %q, want MQTT-3.8.3-4", e.Statement)
	}
}

// TestV5SharedPrefersRoom checks that a member whose inflight window is
// full is passed over for one with room.
func TestV5SharedPrefersRoom(t *testing.T) {
	tb := startBroker(t, nil)
	a, _ := tb.member5(t, "room-a", true, 0, 1)
	b := tb.connect5(t, "room-b")
	subscribe(t, a, sub("$share/g/room", 1))
	subscribe(t, b, sub("$share/g/room", 1))
	p := tb.connect5(t, "room-pub")
	for i := range 3 {
		publish(t, p, &packet.Publish{Topic: "room", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
	}
	if m := recvPublish(t, a); m.Payload[0] != 0 {
		t.Errorf("a got %d, want message 0", m.Payload[0])
	}
	ping(t, a) // its window of 1 is full: messages 1 and 2 went to b
	for want := range []byte{1, 2} {
		if m := recvPublish(t, b); m.Payload[0] != byte(want+1) {
			t.Errorf("b got %d, want %d", m.Payload[0], want+1)
		}
	}
}

// TestV5SharedMemberLoss checks what becomes of messages a member holds
// when it goes: a QoS 2 message in flight to a member that disconnects
// with its session kept is completed on reconnect [MQTT-4.8.2-4]; one whose
// session ends goes to no one else [MQTT-4.8.2-5]; unacknowledged QoS 1
// goes to another member when the session ends; messages queued but never
// sent move to a connected member when their member disconnects.
func TestV5SharedMemberLoss(t *testing.T) {
	tb := startBroker(t, nil)
	p := tb.connect5(t, "loss-pub")
	pid := uint16(0)
	send := func(topic string, qos byte, payload string) {
		t.Helper()
		pid++
		publish(t, p, &packet.Publish{Topic: topic, QoS: qos, PacketID: pid, Payload: []byte(payload)})
	}

	t.Run("QoS 2 completed on reconnect", func(t *testing.T) {
		a, _ := tb.member5(t, "l1-a", true, 300, 0)
		b := tb.connect5(t, "l1-b")
		subscribe(t, a, sub("$share/g/l1", 2))
		subscribe(t, b, sub("$share/g/l1", 2))
		send("l1", 2, "first") // round robin starts at a
		m := recvPublish(t, a)
		tb.kill(t, a, "l1-a")
		send("l1", 2, "second")
		if m2 := recvPublish(t, b); string(m2.Payload) != "second" {
			t.Fatalf("b got %q, want second", m2.Payload)
		}
		a, ack := tb.member5(t, "l1-a", false, 300, 0)
		if !ack.SessionPresent {
			t.Fatal("session not resumed")
		}
		again := recvPublish(t, a)
		if string(again.Payload) != "first" || !again.Dup || again.PacketID != m.PacketID {
			t.Fatalf("resent %q dup %v id %d, want first, DUP, id %d", again.Payload, again.Dup, again.PacketID, m.PacketID)
		}
		_ = a.WritePacket(&packet.Pubrec{PacketID: again.PacketID})
		expect[*packet.Pubrel](t, a)
		_ = a.WritePacket(&packet.Pubcomp{PacketID: again.PacketID})
		ping(t, a)
		ping(t, b) // "first" never reached b
	})

	t.Run("QoS 2 lost with the session, QoS 1 handed on", func(t *testing.T) {
		a := tb.connect5(t, "l2-a") // Session Expiry 0: the session ends with the connection
		b := tb.connect5(t, "l2-b")
		subscribe(t, a, sub("$share/g/l2/+", 2))
		subscribe(t, b, sub("$share/g/l2/+", 2))
		send("l2/q2", 2, "q2") // to a
		send("l2/q1", 1, "q1") // to b
		send("l2/q1", 1, "q1 for a")
		recvPublish(t, a)
		recvPublish(t, a)
		if m := recvPublish(t, b); string(m.Payload) != "q1" {
			t.Fatalf("b got %q", m.Payload)
		}
		n := tb.rec.Count(events.Is(events.Drop))
		tb.kill(t, a, "l2-a")
		if m := recvPublish(t, b); string(m.Payload) != "q1 for a" || m.Dup {
			t.Fatalf("b got %q dup %v, want the unacknowledged QoS 1 message as a new one", m.Payload, m.Dup)
		}
		drops := tb.rec.Filter(events.Is(events.Drop))[n:]
		if len(drops) != 1 || drops[0].Statement != "MQTT-4.8.2-5" || drops[0].Cause != events.CauseSessionEnded || drops[0].Topic != "l2/q2" {
			t.Fatalf("drop events %+v, want one for l2/q2 citing MQTT-4.8.2-5", drops)
		}
		ping(t, b) // the QoS 2 message went to no one else
	})

	t.Run("queued messages move when their member disconnects", func(t *testing.T) {
		a, _ := tb.member5(t, "l3-a", true, 300, 1)
		b, _ := tb.member5(t, "l3-b", true, 300, 0)
		subscribe(t, a, sub("$share/g/l3", 1))
		subscribe(t, b, sub("$share/g/l3", 1))
		tb.kill(t, b, "l3-b") // b is an offline member now
		for i := range 3 {
			send("l3", 1, fmt.Sprint(i)) // all to a, the only connected member: 0 in flight, 1 and 2 queued
		}
		if m := recvPublish(t, a); string(m.Payload) != "0" {
			t.Fatalf("a got %q", m.Payload)
		}
		b, _ = tb.member5(t, "l3-b", false, 300, 0)
		ping(t, b)
		tb.kill(t, a, "l3-a")
		for _, want := range []string{"1", "2"} {
			if m := recvPublish(t, b); string(m.Payload) != want {
				t.Fatalf("b got %q, want %q", m.Payload, want)
			}
		}
		a, _ = tb.member5(t, "l3-a", false, 300, 1)
		if m := recvPublish(t, a); string(m.Payload) != "0" || !m.Dup {
			t.Fatalf("a got %q dup %v, want its unacknowledged message resent", m.Payload, m.Dup)
		}
		ping(t, a)
	})
}

// TestV5SharedRejected checks that a message a member refuses (PUBACK or
// PUBREC 0x80 or more) is not offered to another member [MQTT-4.8.2-6], and
// that a refusing PUBREC ends the flow without PUBREL.
func TestV5SharedRejected(t *testing.T) {
	tb := startBroker(t, nil)
	a := tb.connect5(t, "rej-a")
	b := tb.connect5(t, "rej-b")
	subscribe(t, a, sub("$share/g/rej", 2))
	subscribe(t, b, sub("$share/g/rej", 2))
	p := tb.connect5(t, "rej-pub")
	publish(t, p, &packet.Publish{Topic: "rej", QoS: 1, PacketID: 1, Payload: []byte("q1")})
	publish(t, p, &packet.Publish{Topic: "rej", QoS: 2, PacketID: 2, Payload: []byte("skip")}) // to b
	publish(t, p, &packet.Publish{Topic: "rej", QoS: 2, PacketID: 3, Payload: []byte("q2")})
	m1, m2 := recvPublish(t, a), recvPublish(t, a)
	bm := recvPublish(t, b)
	_ = b.WritePacket(&packet.Pubrec{PacketID: bm.PacketID})
	expect[*packet.Pubrel](t, b)
	_ = b.WritePacket(&packet.Pubcomp{PacketID: bm.PacketID})

	_ = a.WritePacket(&packet.Puback{PacketID: m1.PacketID, ReasonCode: 0x80})
	_ = a.WritePacket(&packet.Pubrec{PacketID: m2.PacketID, ReasonCode: 0x83})
	ping(t, a) // no PUBREL after the refusing PUBREC
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rejected := events.And(events.Is(events.Drop), func(e events.Event) bool { return e.Cause == events.CauseRejected })
	evs, err := tb.rec.WaitN(ctx, rejected, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Statement != "MQTT-4.8.2-6" || e.ClientID != "rej-a" {
			t.Errorf("rejection event %+v", e)
		}
	}
	ping(t, b) // neither refused message went to b
}
