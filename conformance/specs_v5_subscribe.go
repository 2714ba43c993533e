package conformance

import (
	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 specs: SUBSCRIBE and UNSUBSCRIBE, subscription options, retained
// messages, malformed packets.

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "answers a SUBSCRIBE of several filters with one SUBACK, a reason code per filter in order",
	Statements: []string{"MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-2.2.1-6", "MQTT-3.8.4-5", "MQTT-3.8.4-6", "MQTT-3.8.4-7", "MQTT-3.9.3-1", "MQTT-3.9.3-2"},
	Needs:      []string{"qos2"},
	Body: func(e *env) {
		r := e.client("s")
		ack := e.subscribe5(r, packet.Subscription{Filter: e.topic("2"), QoS: 2}, packet.Subscription{Filter: e.topic("0"), QoS: 0},
			packet.Subscription{Filter: e.topic("1"), QoS: 1})
		Expect(ack.ReturnCodes).To(Equal([]byte{2, 0, 1}), "SUBACK reason codes")
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: e.topic("1"), QoS: 1, Payload: []byte("x")})
		Expect(e.recv(r).QoS).To(Equal(byte(1)))
	},
})

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "does not grant a topic filter with '#' or '+' misplaced",
	Statements: []string{"MQTT-4.7.1-1", "MQTT-4.7.1-2"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		for _, bad := range []string{e.prefix() + "/#/x", e.prefix() + "/a+"} {
			r := e.client("s")
			e.send(r, &packet.Subscribe{PacketID: 7, Subscriptions: []packet.Subscription{{Filter: bad}}})
			refusedFilter(e, r, bad)
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "answers UNSUBSCRIBE with one UNSUBACK, a reason code per filter in order, and stops delivering",
	Statements: []string{"MQTT-3.10.4-1", "MQTT-3.10.4-2", "MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-3.10.4-6", "MQTT-3.11.3-1", "MQTT-3.11.3-2"},
	Body: func(e *env) {
		t := e.topic("u")
		r := e.client("s")
		e.sub5(r, packet.Subscription{Filter: t, QoS: 0})
		u := &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{t, e.topic("never")}}
		e.send(r, u)
		ack := await[*packet.Unsuback](e, r, u.PacketID)
		Expect(ack.ReasonCodes).To(HaveLen(2), "one UNSUBACK reason code per filter")
		Expect(ack.ReasonCodes[0]).To(Equal(byte(0x00)), "UNSUBACK reason code for an existing subscription")
		Expect([]byte{0x00, 0x11}).To(ContainElement(ack.ReasonCodes[1]), "UNSUBACK reason code where no subscription existed")
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, Payload: []byte("x")})
		e.nothing(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "replaces a subscription to the same filter, resending retained messages with Retain Handling 0",
	Statements: []string{"MQTT-3.8.4-3", "MQTT-3.8.4-4", "MQTT-3.3.1-9"}, Needs: []string{"qos1", "retain"},
	Body: func(e *env) {
		t := e.topic("r")
		p := e.client("p")
		e.retained = append(e.retained, t)
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Retain: true, Payload: []byte("kept")})
		r := e.client("s")
		e.sub5(r, packet.Subscription{Filter: t, QoS: 0})
		Expect(string(e.recv(r).Payload)).To(Equal("kept"))
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		m := e.recv(r)
		Expect(string(m.Payload)).To(Equal("kept"), "retained message resent on the replacing subscription")
		Expect(m.Retain).To(BeTrue())
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("new")})
		m = e.recv(r)
		Expect(m.QoS).To(Equal(byte(1)), "QoS of the replacing subscription")
		e.nothing(r) // one subscription, one copy
	},
})

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "sends retained messages with Retain Handling 1 only for a new subscription, never with 2",
	Statements: []string{"MQTT-3.3.1-10", "MQTT-3.3.1-11"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t := e.topic("r")
		p := e.client("p")
		e.retained = append(e.retained, t)
		e.publish5(p, &packet.Publish{Topic: t, Retain: true, Payload: []byte("kept")})
		r1 := e.client("s1")
		e.sub5(r1, packet.Subscription{Filter: t, RetainHandling: 1})
		Expect(string(e.recv(r1).Payload)).To(Equal("kept"), "Retain Handling 1, new subscription")
		e.sub5(r1, packet.Subscription{Filter: t, RetainHandling: 1})
		e.ping(r1) // existing subscription: nothing before the PINGRESP
		r2 := e.client("s2")
		e.sub5(r2, packet.Subscription{Filter: t, RetainHandling: 2})
		e.ping(r2)
	},
})

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "forwards RETAIN as published only with Retain As Published 1",
	Statements: []string{"MQTT-3.3.1-12", "MQTT-3.3.1-13"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t := e.topic("rap")
		clear, keep := e.client("c"), e.client("k")
		e.sub5(clear, packet.Subscription{Filter: t})
		e.sub5(keep, packet.Subscription{Filter: t, RetainAsPublished: true})
		p := e.client("p")
		e.retained = append(e.retained, t)
		e.publish5(p, &packet.Publish{Topic: t, Retain: true, Payload: []byte("x")})
		Expect(e.recv(clear).Retain).To(BeFalse(), "RETAIN with Retain As Published 0")
		Expect(e.recv(keep).Retain).To(BeTrue(), "RETAIN with Retain As Published 1")
	},
})

var _ = register(specDef{
	V5: true, Area: "subscribe", Text: "does not send a client its own messages on a No Local subscription",
	Statements: []string{"MQTT-3.8.3-3"},
	Body: func(e *env) {
		t := e.topic("nl")
		r := e.client("s")
		e.sub5(r, packet.Subscription{Filter: t, NoLocal: true})
		e.publish5(r, &packet.Publish{Topic: t, Payload: []byte("mine")})
		other := e.client("o")
		e.publish5(other, &packet.Publish{Topic: t, Payload: []byte("theirs")})
		Expect(string(e.recv(r).Payload)).To(Equal("theirs"))
		e.nothing(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "retain", Text: "replaces and deletes retained messages, and keeps them on RETAIN 0",
	Statements: []string{"MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-7", "MQTT-3.3.1-8"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t, gone := e.topic("r"), e.topic("gone")
		p := e.client("p")
		e.retained = append(e.retained, t, gone)
		e.publish5(p, &packet.Publish{Topic: t, Retain: true, Payload: []byte("one")})
		e.publish5(p, &packet.Publish{Topic: t, Retain: true, Payload: []byte("two")})
		e.publish5(p, &packet.Publish{Topic: t, Payload: []byte("not retained")})
		e.publish5(p, &packet.Publish{Topic: gone, Retain: true, Payload: []byte("x")})
		e.publish5(p, &packet.Publish{Topic: gone, Retain: true})
		r := e.client("s")
		e.sub5(r, packet.Subscription{Filter: t})
		Expect(string(e.recv(r).Payload)).To(Equal("two"))
		e.sub5(r, packet.Subscription{Filter: gone})
		e.ping(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "topics", Text: "does not match topics starting with '$' by filters starting with '#' or '+'",
	Statements: []string{"MQTT-4.7.2-1"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		dollar := "$mqf/" + e.prefix()
		wild := e.client("w")
		e.sub5(wild, packet.Subscription{Filter: "#"})
		e.sub5(wild, packet.Subscription{Filter: "+/" + e.prefix() + "/#"})
		own := e.client("o")
		e.sub5(own, packet.Subscription{Filter: dollar})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: dollar, Payload: []byte("x")})
		Expect(e.recvOn(own, dollar).Topic).To(Equal(dollar))
		e.publish5(p, &packet.Publish{Topic: e.topic("marker"), Payload: []byte("m")})
		Expect(e.recvOn(wild, e.topic("marker")).Topic).To(Equal(e.topic("marker")), "no '$' topic before the marker")
	},
})

var _ = register(specDef{
	V5: true, Area: "malformed", Text: "closes the connection on a PUBLISH with QoS 3",
	Statements: []string{"MQTT-3.3.1-4", "MQTT-4.13.1-1"},
	Body: func(e *env) {
		r := e.client("m")
		e.sendBytes(r, packet.Frame(0x36, str(e.topic("q3")), u16(1), []byte{0}, []byte("x")))
		e.closedOnError(r, 0x81, 0x82)
	},
})

var _ = register(specDef{
	V5: true, Area: "malformed", Text: "closes the connection on PUBREL, SUBSCRIBE, UNSUBSCRIBE or DISCONNECT with wrong fixed-header flags",
	Statements: []string{"MQTT-3.6.1-1", "MQTT-3.8.1-1", "MQTT-3.10.1-1", "MQTT-3.14.1-1", "MQTT-2.1.3-1"},
	Body: func(e *env) {
		for _, b := range [][]byte{
			packet.Frame(0x60, u16(1), []byte{0, 0}),                            // PUBREL flags 0000
			packet.Frame(0x80, u16(1), []byte{0}, str(e.topic("f")), []byte{0}), // SUBSCRIBE flags 0000
			packet.Frame(0xA0, u16(1), []byte{0}, str(e.topic("f"))),            // UNSUBSCRIBE flags 0000
			packet.Frame(0xE1, []byte{0}),                                       // DISCONNECT flags 0001
		} {
			r := e.client("m")
			e.sendBytes(r, b)
			e.closedOnError(r, 0x81, 0x82)
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "malformed", Text: "closes the connection on a SUBSCRIBE with reserved option bits set",
	Statements: []string{"MQTT-3.8.3-5"},
	Body: func(e *env) {
		r := e.client("m")
		e.sendBytes(r, packet.Frame(0x82, u16(1), []byte{0}, str(e.topic("f")), []byte{0xC0}))
		e.closedOnError(r, 0x81, 0x82)
	},
})

var _ = register(specDef{
	V5: true, Area: "malformed", Text: "closes the connection on a topic name with a wildcard, U+0000 or a surrogate",
	Statements: []string{"MQTT-3.3.2-2", "MQTT-4.7.0-1", "MQTT-4.7.3-2", "MQTT-1.5.4-1", "MQTT-1.5.4-2"},
	Body: func(e *env) {
		for _, topic := range []string{e.prefix() + "/+", e.prefix() + "/#", e.prefix() + "/\x00", e.prefix() + "/\xed\xa0\x80"} {
			r := e.client("m")
			e.sendBytes(r, packet.Frame(0x30, str(topic), []byte{0}, []byte("x")))
			e.closedOnError(r, 0x81, 0x82, 0x90)
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "ping", Text: "answers PINGREQ with PINGRESP",
	Statements: []string{"MQTT-3.12.4-1"},
	Body: func(e *env) {
		r := e.client("p")
		e.ping(r)
		e.ping(r)
	},
})
