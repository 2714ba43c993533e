package conformance

import (
	"fmt"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/targets"
)

var _ = register(specDef{
	Area: "publish", Text: "delivers QoS 0 with QoS 0, DUP 0 and no packet identifier, and answers the sender nothing",
	Statements: []string{"MQTT-4.3.1-1", "MQTT-3.3.1-2", "MQTT-2.3.1-5", "MQTT-3.3.2-1", "MQTT-3.3.4-1", "MQTT-4.5.0-1"},
	Body: func(e *env) {
		t := e.topic("q0")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, t)
		e.pub(pub, t, "zero", 0, false)
		e.ping(pub) // no PUBACK/PUBREC before the PINGRESP
		got := e.recv(sub)
		Expect(got.Topic).To(Equal(t))
		Expect(string(got.Payload)).To(Equal("zero"))
		Expect(got.QoS).To(Equal(byte(0)))
		Expect(got.Dup).To(BeFalse())
		Expect(got.PacketID).To(BeZero())
	},
})

var _ = register(specDef{
	Area: "publish", Text: "acknowledges QoS 1 with a PUBACK echoing the identifier and delivers with a non-zero identifier and DUP 0",
	Statements: []string{"MQTT-4.3.2-1", "MQTT-4.3.2-2", "MQTT-2.3.1-6", "MQTT-3.3.4-1", "MQTT-2.3.1-1"},
	Needs:      []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("q1")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 1, t)
		e.pub(pub, t, "one", 1, false)
		got := expect[*packet.Publish](e, sub)
		Expect(got.QoS).To(Equal(byte(1)))
		Expect(got.Dup).To(BeFalse())
		Expect(got.PacketID).NotTo(BeZero())
		e.ack(sub, got)
		e.ping(sub)
	},
})

var _ = register(specDef{
	Area: "publish", Text: "treats a QoS 1 packet identifier reused after its PUBACK as a new message",
	Statements: []string{"MQTT-4.3.2-2"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("reuse1")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 1, t)
		for _, payload := range []string{"first", "second"} {
			e.send(pub, &packet.Publish{Topic: t, QoS: 1, PacketID: 7, Payload: []byte(payload)})
			Expect(expect[*packet.Puback](e, pub).PacketID).To(Equal(uint16(7)))
		}
		Expect(string(e.recv(sub).Payload)).To(Equal("first"))
		Expect(string(e.recv(sub).Payload)).To(Equal("second"))
	},
})

var _ = register(specDef{
	Area: "publish", Text: "runs the QoS 2 flows as receiver (PUBREC, PUBCOMP) and as sender (PUBLISH, PUBREL) with echoed identifiers",
	Statements: []string{"MQTT-4.3.3-1", "MQTT-4.3.3-2", "MQTT-2.3.1-6", "MQTT-3.3.4-1"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("q2")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 2, t)
		e.pub(pub, t, "two", 2, false)
		got := expect[*packet.Publish](e, sub)
		Expect(got.QoS).To(Equal(byte(2)))
		Expect(got.PacketID).NotTo(BeZero())
		e.ack(sub, got)
		e.ping(sub) // nothing more: no second PUBLISH, no second PUBREL
	},
})

var _ = register(specDef{
	Area: "publish", Text: "does not deliver a QoS 2 message twice when its PUBLISH is resent before PUBREL",
	Statements: []string{"MQTT-4.3.3-2", "MQTT-3.3.1-1"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("dup2")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 2, t)
		p := &packet.Publish{Topic: t, QoS: 2, PacketID: 9, Payload: []byte("exactly once")}
		e.send(pub, p)
		Expect(expect[*packet.Pubrec](e, pub).PacketID).To(Equal(uint16(9)))
		dup := *p
		dup.Dup = true
		e.send(pub, &dup)
		Expect(expect[*packet.Pubrec](e, pub).PacketID).To(Equal(uint16(9)))
		e.send(pub, &packet.Pubrel{PacketID: 9})
		Expect(expect[*packet.Pubcomp](e, pub).PacketID).To(Equal(uint16(9)))
		// After PUBCOMP the identifier is fresh: the same id is a new message.
		e.pub(pub, t, "marker", 1, false)
		Expect(string(e.recv(sub).Payload)).To(Equal("exactly once"))
		Expect(string(e.recv(sub).Payload)).To(Equal("marker"), "the QoS 2 message was delivered twice")
	},
})

var _ = register(specDef{
	Area: "publish", Text: "treats a QoS 2 packet identifier reused after PUBCOMP as a new message",
	Statements: []string{"MQTT-4.3.3-2"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("reuse2")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 2, t)
		for _, payload := range []string{"first", "second"} {
			e.send(pub, &packet.Publish{Topic: t, QoS: 2, PacketID: 11, Payload: []byte(payload)})
			Expect(expect[*packet.Pubrec](e, pub).PacketID).To(Equal(uint16(11)))
			e.send(pub, &packet.Pubrel{PacketID: 11})
			Expect(expect[*packet.Pubcomp](e, pub).PacketID).To(Equal(uint16(11)))
		}
		Expect(string(e.recv(sub).Payload)).To(Equal("first"))
		Expect(string(e.recv(sub).Payload)).To(Equal("second"))
	},
})

var _ = register(specDef{
	Area: "publish", Text: "sets DUP on outgoing PUBLISH only for its own retransmissions, whatever the incoming DUP",
	Statements: []string{"MQTT-3.3.1-3"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("dupin")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 1, t)
		e.send(pub, &packet.Publish{Topic: t, QoS: 1, PacketID: 3, Dup: true, Payload: []byte("resent by publisher")})
		expect[*packet.Puback](e, pub)
		got := e.recv(sub)
		Expect(got.Dup).To(BeFalse(), "first delivery to the subscriber carried DUP=1")
	},
})

var _ = register(specDef{
	Area: "publish", Text: "delivers at the lower of the published QoS and the granted QoS",
	Statements: []string{"MQTT-3.8.4-6"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		cases := []struct{ granted, published, want byte }{
			{0, 2, 0}, {1, 2, 1}, {2, 1, 1}, {2, 0, 0}, {1, 1, 1},
		}
		pub := e.client("p")
		for i, c := range cases {
			t := e.topic(fmt.Sprintf("min%d", i))
			sub := e.client(fmt.Sprintf("s%d", i))
			e.subOK(sub, c.granted, t)
			e.pub(pub, t, "m", c.published, false)
			got := e.recv(sub)
			Expect(got.QoS).To(Equal(c.want), "granted %d, published %d", c.granted, c.published)
		}
	},
})

var _ = register(specDef{
	Area: "publish", Text: "delivers at the highest QoS of overlapping subscriptions",
	Statements: []string{"MQTT-3.3.5-1"}, Needs: []string{"qos2", "wildcards"},
	Body: func(e *env) {
		t, marker := e.topic("over/x"), e.topic("over/zz")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, e.topic("over/#"))
		e.subOK(sub, 2, t)
		e.pub(pub, t, "m", 2, false)
		e.pub(pub, marker, "end", 0, false)
		var qos []byte
		for range 10 {
			p := e.recv(sub)
			if p.Topic == marker {
				break
			}
			qos = append(qos, p.QoS)
		}
		Expect(qos).NotTo(BeEmpty())
		Expect(qos).To(ContainElement(byte(2)), "deliveries of a message matching QoS 0 and QoS 2 subscriptions")
	},
})

var _ = register(specDef{
	Area: "publish", Text: "gives concurrently unacknowledged QoS 1 deliveries distinct non-zero packet identifiers",
	Statements: []string{"MQTT-2.3.1-4", "MQTT-2.3.1-1"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("inflight")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 1, t)
		for i := range 5 {
			e.pub(pub, t, fmt.Sprint(i), 1, false)
		}
		seen := map[uint16]bool{}
		var got []*packet.Publish
		for range 5 {
			p := expect[*packet.Publish](e, sub)
			Expect(p.PacketID).NotTo(BeZero())
			Expect(seen).NotTo(HaveKey(p.PacketID), "packet identifier %d reused while unacknowledged", p.PacketID)
			seen[p.PacketID] = true
			got = append(got, p)
		}
		for _, p := range got {
			e.ack(sub, p)
		}
		e.ping(sub)
	},
})

var _ = register(specDef{
	Area: "publish", Text: "forwards each client's messages per topic and QoS in the order they arrived",
	Statements: []string{"MQTT-4.6.0-5", "MQTT-4.6.0-6"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		for _, qos := range []byte{0, 1, 2} {
			t := e.topic(fmt.Sprintf("order%d", qos))
			sub, pub := e.client(fmt.Sprintf("s%d", qos)), e.client(fmt.Sprintf("p%d", qos))
			e.subOK(sub, qos, t)
			const n = 20
			// Pipelined: all PUBLISHes go out before any acknowledgement is read.
			for i := range n {
				e.send(pub, &packet.Publish{Topic: t, QoS: qos, PacketID: uint16(qos) * uint16(i+1), Payload: []byte(fmt.Sprint(i))})
			}
			drainAcks(e, pub, qos, n)
			for i := range n {
				Expect(string(e.recv(sub).Payload)).To(Equal(fmt.Sprint(i)), "QoS %d message %d out of order", qos, i)
			}
		}
	},
})

// drainAcks completes the sender side of n pipelined publishes.
func drainAcks(e *env, r *client.Raw, qos byte, n int) {
	switch qos {
	case 1:
		for range n {
			expect[*packet.Puback](e, r)
		}
	case 2:
		// PUBCOMPs may arrive between later PUBRECs, so take them as they come.
		recs, comps := 0, 0
		for range 2 * n {
			switch p := e.next(r).(type) {
			case *packet.Pubrec:
				recs++
				e.send(r, &packet.Pubrel{PacketID: p.PacketID})
			case *packet.Pubcomp:
				comps++
			default:
				Expect(p).To(BeNil(), "expected PUBREC or PUBCOMP, got %s", p.Type())
			}
		}
		Expect([]int{recs, comps}).To(Equal([]int{n, n}), "PUBRECs and PUBCOMPs")
	}
}

var _ = register(specDef{
	Area: "publish", Text: "answers an unauthorised PUBLISH normally or closes the connection",
	Statements: []string{"MQTT-3.3.5-2"}, Needs: []string{"acl"},
	Body: func(e *env) {
		watch := e.client("w")
		e.subOK(watch, 0, "acl/deny/"+e.prefix())
		cp := connectPacket(e.id("acl"))
		cp.UsernameFlag, cp.Username = true, targets.ACLUser
		pub, _ := e.connectOK(cp)
		e.send(pub, &packet.Publish{Topic: "acl/deny/" + e.prefix(), QoS: 1, PacketID: 5, Payload: []byte("x")})
		defer e.nothing(watch) // acknowledged or not, it must not be delivered
		p, err := pub.ReadPacket(wait)
		if err != nil {
			Expect(isClose(err)).To(BeTrue(), "read after unauthorised PUBLISH: %v", err)
			return
		}
		ack, ok := p.(*packet.Puback)
		Expect(ok).To(BeTrue(), "expected PUBACK or close, got %s", p.Type())
		Expect(ack.PacketID).To(Equal(uint16(5)))
	},
})

// misfitAcks are acknowledgements that do not fit the delivery holding their
// packet identifier: the QoS flow is broken, and the server closes
// [MQTT-4.8.0-1].
var misfitAcks = []struct {
	text   string
	qos    byte
	pubrec bool // complete PUBREC/PUBREL first
	ack    byte // first byte of the acknowledgement
}{
	{"a PUBACK answering a QoS 2 delivery", 2, false, 0x40},
	{"a PUBCOMP answering a QoS 2 delivery before PUBREL", 2, false, 0x70},
	{"a PUBREC answering a QoS 1 delivery", 1, false, 0x50},
	{"a PUBCOMP answering a QoS 1 delivery", 1, false, 0x70},
}

func init() {
	for _, m := range misfitAcks {
		register(specDef{
			Area: "publish", Text: "closes the connection on " + m.text,
			Statements: []string{"MQTT-4.8.0-1"}, Needs: []string{"qos2"},
			Body: func(e *env) {
				topic := e.topic("misfit")
				r := e.client("misfit")
				e.subOK(r, 2, topic)
				e.pub(e.client("pub"), topic, "x", m.qos, false)
				p := expect[*packet.Publish](e, r)
				Expect(p.QoS).To(Equal(m.qos))
				e.sendBytes(r, packet.Frame(m.ack, u16(p.PacketID)))
				e.closed(r)
			},
		})
	}
}

var _ = register(specDef{
	Area: "publish", Text: "answers PUBREL for a packet identifier it holds no message for with PUBCOMP",
	Statements: []string{"MQTT-4.3.3-2"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		r := e.client("rel")
		e.send(r, &packet.Pubrel{PacketID: 4321})
		Expect(packetID(expect[*packet.Pubcomp](e, r))).To(Equal(uint16(4321)))
		e.ping(r)
	},
})
