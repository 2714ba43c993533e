package conformance

import (
	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/packet"
)

var _ = register(specDef{
	Area: "subscribe", Text: "answers a multi-filter SUBSCRIBE with one SUBACK: its identifier, one code per filter in order",
	Statements: []string{"MQTT-3.8.4-1", "MQTT-3.8.4-2", "MQTT-2.3.1-7", "MQTT-3.8.4-4", "MQTT-3.8.4-5", "MQTT-3.9.3-1", "MQTT-3.9.3-2"},
	Needs:      []string{"qos2"},
	Body: func(e *env) {
		sub, pub := e.client("s"), e.client("p")
		ts := []string{e.topic("a"), e.topic("b"), e.topic("c")}
		req := []byte{2, 0, 1}
		s := &packet.Subscribe{PacketID: 0x1234}
		for i, t := range ts {
			s.Subscriptions = append(s.Subscriptions, packet.Subscription{Filter: t, QoS: req[i]})
		}
		e.send(sub, s)
		ack := expect[*packet.Suback](e, sub)
		Expect(ack.PacketID).To(Equal(uint16(0x1234)))
		for _, c := range ack.ReturnCodes {
			Expect(c).To(BeElementOf(byte(0), byte(1), byte(2), byte(0x80)), "SUBACK return code")
		}
		Expect(ack.ReturnCodes).To(Equal(req), "granted QoS per filter, in filter order")
		for i, t := range ts {
			e.pub(pub, t, t, 2, false)
			got := e.recv(sub)
			Expect(got.Topic).To(Equal(t))
			Expect(got.QoS).To(Equal(req[i]))
		}
	},
})

var _ = register(specDef{
	Area: "subscribe", Text: "answers UNSUBSCRIBE with an UNSUBACK echoing its identifier, even when nothing was subscribed",
	Statements: []string{"MQTT-3.10.4-4", "MQTT-3.10.4-5", "MQTT-2.3.1-7"},
	Body: func(e *env) {
		r := e.client("u")
		e.send(r, &packet.Unsubscribe{PacketID: 0x4321, Filters: []string{e.topic("never")}})
		Expect(expect[*packet.Unsuback](e, r).PacketID).To(Equal(uint16(0x4321)))
	},
})

var _ = register(specDef{
	Area: "subscribe", Text: "stops delivering after UNSUBSCRIBE",
	Statements: []string{"MQTT-3.10.4-2"},
	Body: func(e *env) {
		t, marker := e.topic("gone"), e.topic("marker")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, t, marker)
		e.send(sub, &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{t}})
		expect[*packet.Unsuback](e, sub)
		e.pub(pub, t, "late", 1, false)
		e.pub(pub, marker, "marker", 1, false)
		Expect(e.recv(sub).Topic).To(Equal(marker), "message delivered after UNSUBSCRIBE")
	},
})

var _ = register(specDef{
	Area: "subscribe", Text: "compares UNSUBSCRIBE filters literally and deletes exact matches only",
	Statements: []string{"MQTT-3.10.4-1"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		t := e.topic("lit/a")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, e.topic("lit/+"))
		e.send(sub, &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{t, e.topic("lit/#")}})
		expect[*packet.Unsuback](e, sub)
		e.pub(pub, t, "still", 0, false)
		Expect(string(e.recv(sub).Payload)).To(Equal("still"), "a filter that only matches was unsubscribed")
		e.send(sub, &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{e.topic("lit/+")}})
		expect[*packet.Unsuback](e, sub)
		e.pub(pub, t, "gone", 0, false)
		e.nothing(sub)
	},
})

var _ = register(specDef{
	Area: "subscribe", Text: "handles a multi-filter UNSUBSCRIBE as a sequence answered by one UNSUBACK",
	Statements: []string{"MQTT-3.10.4-6"},
	Body: func(e *env) {
		a, b, keep := e.topic("a"), e.topic("b"), e.topic("keep")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, a, b, keep)
		e.send(sub, &packet.Unsubscribe{PacketID: 77, Filters: []string{a, b}})
		Expect(expect[*packet.Unsuback](e, sub).PacketID).To(Equal(uint16(77)))
		e.ping(sub) // exactly one UNSUBACK
		e.pub(pub, a, "a", 1, false)
		e.pub(pub, b, "b", 1, false)
		e.pub(pub, keep, "keep", 1, false)
		Expect(e.recv(sub).Topic).To(Equal(keep))
	},
})

var _ = register(specDef{
	Area: "subscribe", Text: "completes a QoS 2 delivery already in progress after UNSUBSCRIBE",
	Statements: []string{"MQTT-3.10.4-3"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("inprog")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 2, t)
		e.pub(pub, t, "in flight", 2, false)
		p := expect[*packet.Publish](e, sub)
		e.send(sub, &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{t}})
		expect[*packet.Unsuback](e, sub)
		e.send(sub, &packet.Pubrec{PacketID: p.PacketID})
		Expect(expect[*packet.Pubrel](e, sub).PacketID).To(Equal(p.PacketID))
		e.send(sub, &packet.Pubcomp{PacketID: p.PacketID})
		e.ping(sub)
	},
})

var _ = register(specDef{
	Area: "subscribe", Text: "rejects wildcard filters when it does not support wildcards",
	Statements: []string{"MQTT-3.8.3-2"}, Needs: []string{"!wildcards"},
	Body: func(e *env) {
		Expect(e.sub(e.client("s"), 0, e.topic("+"))).To(Equal([]byte{0x80}))
	},
})

var _ = register(specDef{
	Area: "keepalive", Text: "answers each PINGREQ with a PINGRESP",
	Statements: []string{"MQTT-3.12.4-1"},
	Body: func(e *env) {
		r := e.client("ping")
		for range 3 {
			e.ping(r)
		}
	},
})
