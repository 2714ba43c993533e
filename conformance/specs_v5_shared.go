package conformance

import (
	"slices"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 specs: Subscription Identifiers (section 3.8.2.1.2, 3.3.4) and
// shared subscriptions (section 4.8.2). Both features are optional, so the
// specs need the "sub-ids" and "shared-subs" capabilities. Which member of
// a share group gets a message is the broker's choice: the specs make the
// member they watch the only one when it matters, or count over all.

// subscribeID5 subscribes with Subscription Identifier id (0: none) and
// requires every filter granted its QoS.
func (e *env) subscribeID5(r *client.Raw, id uint32, subs ...packet.Subscription) {
	s := &packet.Subscribe{PacketID: e.nextID(), Subscriptions: subs}
	if id != 0 {
		s.Props = &packet.Properties{SubscriptionIDs: []uint32{id}}
	}
	e.send(r, s)
	ack := await[*packet.Suback](e, r, s.PacketID)
	want := make([]byte, len(subs))
	for i, sub := range subs {
		want[i] = sub.QoS
	}
	Expect(ack.ReturnCodes).To(Equal(want), "SUBACK reason codes")
}

// drain returns every PUBLISH the broker sent r before answering a PINGREQ
// (a barrier: the broker queued them before it read the PINGREQ), each
// acknowledged.
func (e *env) drain(r *client.Raw) []*packet.Publish {
	e.send(r, &packet.Pingreq{})
	setAside[*packet.Pingresp](e, r, "PINGRESP")
	var got []*packet.Publish
	for len(e.pending[r]) > 0 {
		got = append(got, e.recv(r))
	}
	return got
}

// subIDsOf are the Subscription Identifiers of a delivered message, sorted.
func subIDsOf(p *packet.Publish) []uint32 {
	if p.Props == nil {
		return nil
	}
	ids := slices.Clone(p.Props.SubscriptionIDs)
	slices.Sort(ids)
	return ids
}

// checkOverlap checks the copies one client got of a message of QoS 2
// matching several of its subscriptions, whose identifiers and granted QoS
// are in subs. One copy has the highest granted QoS [MQTT-3.3.4-2]; a
// single copy carries every identifier [MQTT-3.3.4-4]; separate copies
// carry one each, with their subscription's QoS [MQTT-3.3.4-5].
func checkOverlap(copies []*packet.Publish, subs map[uint32]byte) {
	Expect(copies).NotTo(BeEmpty(), "no copy of the message arrived")
	Expect(len(copies)).To(BeNumerically("<=", len(subs)), "more copies than matching subscriptions")
	var ids []uint32
	var top byte
	for id, qos := range subs {
		ids = append(ids, id)
		top = max(top, qos)
	}
	slices.Sort(ids)
	if len(copies) == 1 {
		Expect(copies[0].QoS).To(Equal(top), "QoS of the one copy for overlapping subscriptions [MQTT-3.3.4-2]")
		Expect(subIDsOf(copies[0])).To(Equal(ids), "Subscription Identifiers of the one copy [MQTT-3.3.4-4]")
		return
	}
	var seen []uint32
	var best byte
	for _, c := range copies {
		got := subIDsOf(c)
		Expect(got).To(HaveLen(1), "each separate copy carries its own subscription's identifier [MQTT-3.3.4-5]")
		Expect(subs).To(HaveKey(got[0]), "Subscription Identifier %d of a copy", got[0])
		Expect(c.QoS).To(Equal(subs[got[0]]), "QoS of the copy for subscription %d", got[0])
		seen = append(seen, got[0])
		best = max(best, c.QoS)
	}
	slices.Sort(seen)
	Expect(seen).To(Equal(ids), "one copy per subscription [MQTT-3.3.4-5]")
	Expect(best).To(Equal(top), "one copy at the highest granted QoS [MQTT-3.3.4-2]")
}

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "sends the Subscription Identifiers of the matching subscriptions with each message, one copy or one per subscription",
	Statements: []string{"MQTT-3.3.4-2", "MQTT-3.3.4-3", "MQTT-3.3.4-4", "MQTT-3.3.4-5"},
	Needs:      []string{"sub-ids", "wildcards", "qos2"},
	Body: func(e *env) {
		t, other := e.topic("a"), e.topic("b")
		r := e.client("s")
		e.subscribeID5(r, 7, packet.Subscription{Filter: t, QoS: 1})
		e.subscribeID5(r, 9, packet.Subscription{Filter: e.prefix() + "/+", QoS: 2})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("both")})
		checkOverlap(e.drain(r), map[uint32]byte{7: 1, 9: 2})

		e.publish5(p, &packet.Publish{Topic: other, QoS: 2, Payload: []byte("one")})
		copies := e.drain(r)
		Expect(copies).To(HaveLen(1), "copies for one matching subscription")
		Expect(subIDsOf(copies[0])).To(Equal([]uint32{9}), "Subscription Identifier [MQTT-3.3.4-3]")
	},
})

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "sends the Subscription Identifier with retained messages sent on subscribe, and drops it when a SUBSCRIBE without one replaces the subscription",
	Statements: []string{"MQTT-3.3.4-3", "MQTT-3.8.4-3"},
	Needs:      []string{"sub-ids", "retain", "qos1"},
	Body: func(e *env) {
		t := e.topic("r")
		p := e.client("p")
		e.retained = append(e.retained, t)
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Retain: true, Payload: []byte("kept")})
		r := e.client("s")
		e.subscribeID5(r, 42, packet.Subscription{Filter: t, QoS: 1})
		m := e.recv(r)
		Expect(m.Retain).To(BeTrue(), "the retained message")
		Expect(subIDsOf(m)).To(Equal([]uint32{42}), "Subscription Identifier of the retained message [MQTT-3.3.4-3]")
		e.subscribeID5(r, 0, packet.Subscription{Filter: t, QoS: 1, RetainHandling: 2})
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("new")})
		m = e.recv(r)
		Expect(subIDsOf(m)).To(BeEmpty(), "the replacing subscription has no Subscription Identifier [MQTT-3.8.4-3]")
	},
})

var _ = register(specDef{
	V5: true, Area: "malformed", Text: "closes the connection on a SUBSCRIBE with Subscription Identifier 0",
	Statements: []string{"MQTT-4.13.1-1"},
	Needs:      []string{"sub-ids"},
	Body: func(e *env) {
		r := e.client("z")
		// Properties: length 2, Subscription Identifier (0x0B) 0.
		e.sendBytes(r, packet.Frame(0x82, u16(1), []byte{2, 0x0B, 0}, str(e.topic("z")), []byte{0}))
		e.closedOnError(r, 0x81, 0x82)
	},
})

var _ = register(specDef{
	V5: true, Area: "shared", Text: "delivers each message of a shared subscription to one member of the group, at that member's granted QoS",
	Statements: []string{"MQTT-4.8.2-1", "MQTT-4.8.2-3"},
	Needs:      []string{"shared-subs", "qos2"},
	Body: func(e *env) {
		t := e.topic("s")
		filter := "$share/g" + e.id("n") + "/" + t
		members := make([]*client.Raw, 3)
		for i := range members {
			members[i] = e.client(string(rune('m' + i))) // m, n, o: one client ID each
			e.sub5(members[i], packet.Subscription{Filter: filter, QoS: byte(i)})
		}
		all := e.client("a")
		e.sub5(all, packet.Subscription{Filter: t, QoS: 2})
		p := e.client("p")
		const n = 9
		for i := range n {
			e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte{byte(i)}})
		}
		seen := map[byte]int{}
		for i, m := range members {
			for _, c := range e.drain(m) {
				Expect(c.QoS).To(Equal(byte(i)), "QoS of a message to the member granted QoS %d [MQTT-4.8.2-3]", i)
				seen[c.Payload[0]]++
			}
		}
		for i := range n {
			Expect(seen[byte(i)]).To(Equal(1), "members of the group that got message %d", i)
		}
		Expect(e.drain(all)).To(HaveLen(n), "an ordinary subscription gets every message")
	},
})

var _ = register(specDef{
	V5: true, Area: "shared", Text: "sends a client subscribed directly and through a shared subscription the Subscription Identifier of each",
	Statements: []string{"MQTT-3.3.4-3", "MQTT-3.3.4-5"},
	Needs:      []string{"shared-subs", "sub-ids", "qos2"},
	Body: func(e *env) {
		t := e.topic("d")
		r := e.client("s")
		e.subscribeID5(r, 3, packet.Subscription{Filter: t, QoS: 1})
		e.subscribeID5(r, 4, packet.Subscription{Filter: "$share/g" + e.id("n") + "/" + t, QoS: 2})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("x")})
		checkOverlap(e.drain(r), map[uint32]byte{3: 1, 4: 2})
	},
})

// refusesFilters requires each filter refused on a connection of its own:
// a SUBACK failure code (0x8F Topic Filter invalid), the connection then
// still usable, or a DISCONNECT with an error code.
func (e *env) refusesFilters(filters ...string) {
	for i, bad := range filters {
		r := e.client(string(rune('s' + i)))
		e.send(r, &packet.Subscribe{PacketID: 7, Subscriptions: []packet.Subscription{{Filter: bad}}})
		p := e.next(r)
		switch v := p.(type) {
		case *packet.Suback:
			Expect(v.ReturnCodes).To(HaveLen(1))
			Expect(v.ReturnCodes[0]).To(BeNumerically(">=", 0x80), "SUBACK reason code for %q", bad)
			e.ping(r)
		case *packet.Disconnect:
			Expect(v.ReasonCode).To(BeNumerically(">=", 0x80), "DISCONNECT reason code for %q", bad)
			e.checkDisconnect(r, v)
		default:
			Expect(p).To(BeNil(), "expected SUBACK or DISCONNECT after SUBSCRIBE %q", bad)
		}
	}
}

var _ = register(specDef{
	V5: true, Area: "shared", Text: "refuses a shared subscription with an empty ShareName",
	Statements: []string{"MQTT-4.8.2-1"},
	Needs:      []string{"shared-subs"},
	Body:       func(e *env) { e.refusesFilters("$share//" + e.topic("f")) },
})

var _ = register(specDef{
	V5: true, Area: "shared", Text: "refuses a shared subscription whose ShareName holds '+' or '#'",
	Statements: []string{"MQTT-4.8.2-2"},
	Needs:      []string{"shared-subs"},
	Body:       func(e *env) { e.refusesFilters("$share/a+/"+e.topic("f"), "$share/a#/"+e.topic("f")) },
})

var _ = register(specDef{
	V5: true, Area: "shared", Text: "refuses a shared subscription with no Topic Filter after the ShareName",
	Statements: []string{"MQTT-4.8.2-2"},
	Needs:      []string{"shared-subs"},
	Body:       func(e *env) { e.refusesFilters("$share/"+e.id("n"), "$share/"+e.id("n")+"/") },
})

var _ = register(specDef{
	V5: true, Area: "shared", Text: "closes the connection on No Local set on a shared subscription",
	Statements: []string{"MQTT-3.8.3-4"},
	Needs:      []string{"shared-subs"},
	Body: func(e *env) {
		r := e.client("s")
		e.send(r, &packet.Subscribe{PacketID: 7, Subscriptions: []packet.Subscription{{Filter: "$share/g/" + e.topic("nl"), NoLocal: true}}})
		e.closedOnError(r, 0x82)
	},
})

var _ = register(specDef{
	V5: true, Area: "shared", Text: "completes a shared QoS 2 delivery to the member that reconnects, not to another member",
	Statements: []string{"MQTT-4.8.2-4"},
	Needs:      []string{"shared-subs", "qos2", "persistent-sessions"},
	Body: func(e *env) {
		t, id := e.topic("q2"), e.id("a")
		filter := "$share/g" + e.id("n") + "/" + t
		a, _ := e.session5(id, true, 300)
		e.sub5(a, packet.Subscription{Filter: filter, QoS: 2})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("once")})
		first := expect[*packet.Publish](e, a) // the only member: it is chosen
		b := e.client("b")
		e.sub5(b, packet.Subscription{Filter: filter, QoS: 2})
		Expect(a.Close()).To(Succeed()) // gone before PUBREC
		a, ack := e.session5(id, false, 0)
		Expect(ack.SessionPresent).To(BeTrue(), "the session is resumed")
		again := expect[*packet.Publish](e, a)
		Expect(again.PacketID).To(Equal(first.PacketID), "the interrupted message resent to the member [MQTT-4.8.2-4]")
		Expect(string(again.Payload)).To(Equal("once"))
		e.ack(a, again)
		e.nothing(b)
	},
})

var _ = register(specDef{
	V5: true, Area: "shared", Text: "does not give a QoS 2 message to another member when its member's session ends first",
	Statements: []string{"MQTT-4.8.2-5"},
	Needs:      []string{"shared-subs", "qos2"},
	Body: func(e *env) {
		t, id := e.topic("q2"), e.id("a")
		filter := "$share/g" + e.id("n") + "/" + t
		a, _ := e.session5(id, true, 0)
		e.sub5(a, packet.Subscription{Filter: filter, QoS: 2})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("lost")})
		expect[*packet.Publish](e, a)
		b := e.client("b")
		e.sub5(b, packet.Subscription{Filter: filter, QoS: 2})
		// DISCONNECT with Session Expiry 0 ends the session; a new connection
		// for the client ID proves the broker has handled it.
		e.send(a, &packet.Disconnect{})
		e.closed(a)
		_, ack := e.session5(id, true, 0)
		Expect(ack.SessionPresent).To(BeFalse())
		e.nothing(b)
	},
})

var _ = register(specDef{
	V5: true, Area: "shared", Text: "does not offer a shared message its member refused to another member",
	Statements: []string{"MQTT-4.8.2-6"},
	Needs:      []string{"shared-subs", "qos2"},
	Body: func(e *env) {
		t := e.topic("rej")
		filter := "$share/g" + e.id("n") + "/" + t
		a := e.client("a")
		e.sub5(a, packet.Subscription{Filter: filter, QoS: 2})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("q1")})
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("q2")})
		m1, m2 := expect[*packet.Publish](e, a), expect[*packet.Publish](e, a)
		b := e.client("b")
		e.sub5(b, packet.Subscription{Filter: filter, QoS: 2})
		e.send(a, &packet.Puback{PacketID: m1.PacketID, ReasonCode: 0x80})
		e.send(a, &packet.Pubrec{PacketID: m2.PacketID, ReasonCode: 0x80})
		e.ping(a) // no PUBREL after a refusing PUBREC, and a handled both
		e.nothing(b)
	},
})
