package conformance

import (
	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// untilPing sends PINGREQ and returns the PUBLISHes that arrive before the
// PINGRESP, acknowledged: what the broker sent on this connection before
// handling the ping.
func (e *env) untilPing(r *client.Raw) []*packet.Publish {
	e.send(r, &packet.Pingreq{})
	var out []*packet.Publish
	for range 100 {
		switch p := e.next(r).(type) {
		case *packet.Pingresp:
			return out
		case *packet.Publish:
			e.ack(r, p)
			out = append(out, p)
		default:
			Expect(p).To(BeNil(), "expected PUBLISH or PINGRESP, got %s", p.Type())
		}
	}
	Expect(false).To(BeTrue(), "no PINGRESP among 100 packets")
	return nil
}

func payloads(ps []*packet.Publish) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, string(p.Payload))
	}
	return out
}

var _ = register(specDef{
	Area: "retain", Text: "stores a retained message with its QoS and sends it with RETAIN=1 to a new subscription",
	Statements: []string{"MQTT-3.3.1-5", "MQTT-3.3.1-6", "MQTT-3.3.1-8"}, Needs: []string{"retain", "qos1"},
	Body: func(e *env) {
		t := e.topic("r")
		pub := e.client("p")
		e.pubRetained(pub, t, "stored", 1)
		sub := e.client("s")
		e.subOK(sub, 1, t)
		got := e.recv(sub)
		Expect(string(got.Payload)).To(Equal("stored"))
		Expect(got.Retain).To(BeTrue(), "RETAIN flag of a message sent for a new subscription")
		Expect(got.QoS).To(Equal(byte(1)), "QoS of the retained message")
	},
})

var _ = register(specDef{
	Area: "retain", Text: "sends retained messages of every topic a new wildcard subscription matches",
	Statements: []string{"MQTT-3.3.1-6", "MQTT-3.3.1-8"}, Needs: []string{"retain", "wildcards"},
	Body: func(e *env) {
		pub := e.client("p")
		e.pubRetained(pub, e.topic("w/a"), "a", 0)
		e.pubRetained(pub, e.topic("w/b/c"), "c", 0)
		sub := e.client("s")
		e.subOK(sub, 0, e.topic("w/#"))
		got := e.untilPing(sub)
		Expect(payloads(got)).To(ConsistOf("a", "c"))
		for _, p := range got {
			Expect(p.Retain).To(BeTrue())
		}
	},
})

var _ = register(specDef{
	Area: "retain", Text: "forwards to established subscriptions with RETAIN=0",
	Statements: []string{"MQTT-3.3.1-9"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t := e.topic("r")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, t)
		e.pubRetained(pub, t, "live", 0)
		got := e.recv(sub)
		Expect(got.Retain).To(BeFalse(), "RETAIN flag forwarded to an established subscription")
	},
})

var _ = register(specDef{
	Area: "retain", Text: "replaces the retained message of a topic, also by a QoS 0 one",
	Statements: []string{"MQTT-3.3.1-7"}, Needs: []string{"retain", "qos1"},
	Body: func(e *env) {
		t := e.topic("r")
		pub := e.client("p")
		e.pubRetained(pub, t, "old", 1)
		e.pubRetained(pub, t, "new", 0)
		sub := e.client("s")
		e.subOK(sub, 1, t)
		got := e.untilPing(sub)
		Expect(payloads(got)).To(Equal([]string{"new"}))
		Expect(got[0].QoS).To(Equal(byte(0)))
	},
})

var _ = register(specDef{
	Area: "retain", Text: "delivers a retained empty payload and deletes the topic's retained message",
	Statements: []string{"MQTT-3.3.1-10", "MQTT-3.3.1-11"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t := e.topic("r")
		live, pub := e.client("l"), e.client("p")
		e.subOK(live, 0, t)
		e.pubRetained(pub, t, "x", 0)
		Expect(string(e.recv(live).Payload)).To(Equal("x"))
		e.pub(pub, t, "", 0, true)
		got := e.recv(live)
		Expect(got.Payload).To(BeEmpty(), "empty retained PUBLISH delivered to the established subscription")
		sub := e.client("s")
		e.subOK(sub, 0, t)
		Expect(payloads(e.untilPing(sub))).To(BeEmpty(), "retained message after it was deleted")
	},
})

var _ = register(specDef{
	Area: "retain", Text: "neither stores nor clears the retained message on a RETAIN=0 publish",
	Statements: []string{"MQTT-3.3.1-12"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t := e.topic("r")
		pub := e.client("p")
		e.pubRetained(pub, t, "keep", 0)
		e.pub(pub, t, "passing", 0, false)
		sub := e.client("s")
		e.subOK(sub, 0, t)
		Expect(payloads(e.untilPing(sub))).To(Equal([]string{"keep"}))
	},
})

var _ = register(specDef{
	Area: "retain", Text: "replaces an identical subscription, resending retained messages without doubling deliveries",
	Statements: []string{"MQTT-3.8.4-3"}, Needs: []string{"retain", "qos1"},
	Body: func(e *env) {
		t := e.topic("r")
		pub := e.client("p")
		e.pubRetained(pub, t, "ret", 0)
		sub := e.client("s")
		e.subOK(sub, 0, t)
		Expect(payloads(e.untilPing(sub))).To(Equal([]string{"ret"}))
		e.subOK(sub, 1, t)
		Expect(payloads(e.untilPing(sub))).To(Equal([]string{"ret"}), "retained messages after the subscription was replaced")
		e.pub(pub, t, "after", 1, false)
		got := e.recv(sub)
		Expect(string(got.Payload)).To(Equal("after"))
		Expect(got.QoS).To(Equal(byte(1)), "QoS of the replacing subscription")
		Expect(payloads(e.untilPing(sub))).To(BeEmpty(), "a second copy: the subscription was added, not replaced")
	},
})
