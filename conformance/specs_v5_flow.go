package conformance

import (
	"fmt"
	"time"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/targets"
)

// MQTT 5.0 specs: the QoS 1 and QoS 2 flows with the broker as sender
// (to a subscriber, across a reconnect) and as receiver.

// endSession closes r with a DISCONNECT that sets the Session Expiry
// Interval to 0, so a spec leaves no session behind on a shared broker.
func (e *env) endSession(r *client.Raw) {
	e.send(r, &packet.Disconnect{Props: &packet.Properties{SessionExpiry: u32p(0)}})
	e.closed(r)
}

// deliveries reads n PUBLISHes (not acknowledged) and requires distinct
// non-zero packet identifiers, QoS qos and DUP 0 on each.
func deliveries(e *env, r *client.Raw, n int, qos byte) []*packet.Publish {
	var out []*packet.Publish
	ids := map[uint16]bool{}
	for range n {
		m := expect[*packet.Publish](e, r)
		Expect(m.QoS).To(Equal(qos), "QoS of the delivery %q", m.Payload)
		Expect(m.Dup).To(BeFalse(), "DUP of the first delivery of %q", m.Payload)
		Expect(m.PacketID).NotTo(BeZero())
		Expect(ids).NotTo(HaveKey(m.PacketID), "packet identifier %d given to two unacknowledged messages", m.PacketID)
		ids[m.PacketID] = true
		out = append(out, m)
	}
	return out
}

var _ = register(specDef{
	V5: true, Area: "flow", Text: "answers a QoS 0 PUBLISH with nothing, QoS 1 with PUBACK and QoS 2 with PUBREC",
	Statements: []string{"MQTT-3.3.4-1"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		r := e.client("p")
		t := e.topic("x")
		e.send(r, &packet.Publish{Topic: t, Payload: []byte("0")})
		e.ping(r) // no acknowledgement before the PINGRESP
		for qos := byte(1); qos <= 2; qos++ {
			p := &packet.Publish{Topic: t, QoS: qos, PacketID: e.nextID(), Payload: []byte{qos}}
			e.send(r, p)
			switch ack := e.next(r).(type) {
			case *packet.Puback:
				Expect(qos).To(Equal(byte(1)), "PUBACK answering a QoS 2 PUBLISH")
				Expect(ack.PacketID).To(Equal(p.PacketID))
			case *packet.Pubrec:
				Expect(qos).To(Equal(byte(2)), "PUBREC answering a QoS 1 PUBLISH")
				Expect(ack.PacketID).To(Equal(p.PacketID))
				e.send(r, &packet.Pubrel{PacketID: p.PacketID})
				await[*packet.Pubcomp](e, r, p.PacketID)
			default:
				Expect(ack).To(BeNil(), "the answer to a QoS %d PUBLISH", qos)
			}
		}
		e.ping(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "sends QoS 1 messages with unused packet identifiers and holds each until its PUBACK, across a reconnect",
	Statements: []string{"MQTT-4.3.2-1", "MQTT-4.3.2-3"}, Needs: []string{"qos1", "persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("q1")
		r, _ := e.session5(id, true, 300)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		p := e.client("p")
		for i := range 3 {
			e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte(fmt.Sprint(i))})
		}
		got := deliveries(e, r, 3, 1)
		e.send(r, &packet.Puback{PacketID: got[1].PacketID})
		e.ping(r)
		Expect(r.Close()).To(Succeed())
		// The unacknowledged two come again, the acknowledged one not.
		r, ack := e.session5(id, false, 300)
		Expect(ack.SessionPresent).To(BeTrue())
		for _, want := range []*packet.Publish{got[0], got[2]} {
			m := expect[*packet.Publish](e, r)
			Expect(string(m.Payload)).To(Equal(string(want.Payload)), "resent message")
			Expect(m.PacketID).To(Equal(want.PacketID), "packet identifier of the resent message")
			Expect(m.Dup).To(BeTrue())
			e.ack(r, m)
		}
		e.ping(r)
		e.endSession(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "takes a QoS 1 PUBLISH reusing an identifier it acknowledged for a new message, whatever its DUP",
	Statements: []string{"MQTT-4.3.2-5"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("reuse")
		s := e.client("s")
		e.sub5(s, packet.Subscription{Filter: t, QoS: 1})
		p := e.client("p")
		for i, dup := range []bool{false, true} {
			e.send(p, &packet.Publish{Topic: t, QoS: 1, PacketID: 7, Dup: dup, Payload: []byte(fmt.Sprint(i))})
			await[*packet.Puback](e, p, 7)
		}
		Expect(string(e.recv(s).Payload)).To(Equal("0"))
		Expect(string(e.recv(s).Payload)).To(Equal("1"), "the second PUBLISH with identifier 7 (DUP 1) was taken for a resend")
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "runs the QoS 2 sender flow: PUBLISH held until PUBREC, then PUBREL held until PUBCOMP and never the PUBLISH again",
	Statements: []string{"MQTT-4.3.3-1", "MQTT-4.3.3-2", "MQTT-4.3.3-3", "MQTT-4.3.3-4", "MQTT-4.3.3-5", "MQTT-4.3.3-6", "MQTT-3.6.2-1"},
	Needs:      []string{"qos2", "persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("q2")
		r, _ := e.session5(id, true, 300)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 2})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("a")})
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("b")})
		got := deliveries(e, r, 2, 2)
		a, b := got[0], got[1]
		e.send(r, &packet.Pubrec{PacketID: a.PacketID})
		rel := await[*packet.Pubrel](e, r, a.PacketID)
		Expect(rel.ReasonCode).To(Equal(byte(0)), "PUBREL reason code for a message the broker holds")
		Expect(r.Close()).To(Succeed()) // no PUBCOMP for a, no PUBREC for b
		// Back: PUBREL for a (not its PUBLISH), the PUBLISH of b with DUP 1.
		r, ack := e.session5(id, false, 300)
		Expect(ack.SessionPresent).To(BeTrue())
		var relAgain, pubAgain bool
		for range 2 {
			switch v := e.next(r).(type) {
			case *packet.Pubrel:
				Expect(v.PacketID).To(Equal(a.PacketID), "packet identifier of the resent PUBREL")
				Expect([]byte{0x00, 0x92}).To(ContainElement(v.ReasonCode), "PUBREL reason code")
				relAgain = true
			case *packet.Publish:
				Expect(string(v.Payload)).To(Equal("b"), "a PUBLISH resent after its PUBREL")
				Expect(v.PacketID).To(Equal(b.PacketID))
				Expect(v.Dup).To(BeTrue())
				pubAgain = true
			default:
				Expect(v).To(BeNil(), "expected the resent PUBREL and PUBLISH")
			}
		}
		Expect([]bool{relAgain, pubAgain}).To(Equal([]bool{true, true}), "resent PUBREL, resent PUBLISH")
		e.send(r, &packet.Pubcomp{PacketID: a.PacketID})
		e.send(r, &packet.Pubrec{PacketID: b.PacketID})
		await[*packet.Pubrel](e, r, b.PacketID)
		e.send(r, &packet.Pubcomp{PacketID: b.PacketID})
		e.ping(r) // and nothing resent again
		e.endSession(r)
	},
})

// expiryPassed waits until a Message Expiry Interval of 1 s has run out on
// any broker. The condition is time itself: a broker counting whole seconds
// (Mosquitto) takes the message for expired only once the clock second after
// the one it expires in has begun, up to 2 s after it was received; half a
// second more is for the clocks of a loaded machine.
func expiryPassed() { time.Sleep(2500 * time.Millisecond) }

var _ = register(specDef{
	V5: true, Area: "flow", Text: "applies no Message Expiry to a QoS 2 PUBLISH it has sent: resends it after a reconnect past the interval",
	Statements: []string{"MQTT-4.3.3-7"}, Needs: []string{"qos2", "persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("exp")
		r, _ := e.session5(id, true, 300)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 2})
		e.publish5(e.client("p"), &packet.Publish{Topic: t, QoS: 2, Payload: []byte("sent"), Props: &packet.Properties{MessageExpiry: u32p(1)}})
		first := expect[*packet.Publish](e, r)
		Expect(r.Close()).To(Succeed()) // before PUBREC
		expiryPassed()
		r, ack := e.session5(id, false, 300)
		Expect(ack.SessionPresent).To(BeTrue())
		again := expect[*packet.Publish](e, r)
		Expect(again.PacketID).To(Equal(first.PacketID), "the PUBLISH sent before expiry, resent")
		Expect(string(again.Payload)).To(Equal("sent"))
		e.ack(r, again)
		e.endSession(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "completes the QoS 2 flow of an incoming message whose Message Expiry Interval ran out before PUBREL",
	Statements: []string{"MQTT-4.3.3-13"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		in := e.client("in")
		m := &packet.Publish{Topic: e.topic("nobody"), QoS: 2, PacketID: e.nextID(), Payload: []byte("held"),
			Props: &packet.Properties{MessageExpiry: u32p(1)}}
		e.send(in, m)
		Expect(await[*packet.Pubrec](e, in, m.PacketID).ReasonCode).To(BeNumerically("<", 0x80))
		expiryPassed()
		e.send(in, &packet.Pubrel{PacketID: m.PacketID})
		Expect(await[*packet.Pubcomp](e, in, m.PacketID).ReasonCode).To(Equal(byte(0)), "PUBCOMP reason code for an expired message")
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "takes a QoS 2 PUBLISH reusing an identifier after PUBCOMP for a new message",
	Statements: []string{"MQTT-4.3.3-12"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("reuse2")
		s := e.client("s")
		e.sub5(s, packet.Subscription{Filter: t, QoS: 2})
		p := e.client("p")
		for i := range 2 {
			e.send(p, &packet.Publish{Topic: t, QoS: 2, PacketID: 11, Dup: i == 1, Payload: []byte(fmt.Sprint(i))})
			await[*packet.Pubrec](e, p, 11)
			e.send(p, &packet.Pubrel{PacketID: 11})
			await[*packet.Pubcomp](e, p, 11)
		}
		Expect(string(e.recv(s).Payload)).To(Equal("0"))
		Expect(string(e.recv(s).Payload)).To(Equal("1"), "the second PUBLISH with identifier 11 was taken for a resend")
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "takes a QoS 2 PUBLISH reusing an identifier it refused with PUBREC 0x80 or more for a new message",
	Statements: []string{"MQTT-4.3.3-9"}, Needs: []string{"qos2", "acl"},
	Body: func(e *env) {
		t := e.topic("ok")
		s := e.client("s")
		e.sub5(s, packet.Subscription{Filter: t, QoS: 2})
		cp := connect5(e.id("acl"), true, nil)
		cp.UsernameFlag, cp.Username = true, targets.ACLUser
		p, _ := e.connectOK(cp)
		e.send(p, &packet.Publish{Topic: "acl/deny/" + e.prefix(), QoS: 2, PacketID: 5, Payload: []byte("denied")})
		Expect(await[*packet.Pubrec](e, p, 5).ReasonCode).To(BeNumerically(">=", 0x80), "PUBREC reason code for an unauthorised PUBLISH")
		// No PUBREL: the flow ended. Identifier 5 is free again.
		e.send(p, &packet.Publish{Topic: t, QoS: 2, PacketID: 5, Payload: []byte("new")})
		Expect(await[*packet.Pubrec](e, p, 5).ReasonCode).To(Equal(byte(0)), "PUBREC reason code for the new message")
		e.send(p, &packet.Pubrel{PacketID: 5})
		Expect(await[*packet.Pubcomp](e, p, 5).ReasonCode).To(Equal(byte(0)))
		Expect(string(e.recv(s).Payload)).To(Equal("new"))
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "never resends a PUBLISH its subscriber answered with PUBACK or PUBREC 0x80 or more",
	Statements: []string{"MQTT-4.4.0-2"}, Needs: []string{"qos2", "persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("refused")
		r, _ := e.session5(id, true, 300)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 2})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("1")})
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("2")})
		one := deliveries(e, r, 1, 1)[0]
		two := deliveries(e, r, 1, 2)[0]
		e.send(r, &packet.Puback{PacketID: one.PacketID, ReasonCode: 0x80})
		e.send(r, &packet.Pubrec{PacketID: two.PacketID, ReasonCode: 0x80})
		e.ping(r) // no PUBREL for the refused QoS 2 message
		Expect(r.Close()).To(Succeed())
		r, ack := e.session5(id, false, 300)
		Expect(ack.SessionPresent).To(BeTrue())
		e.ping(r) // and neither message resent
		e.endSession(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "starts with a send quota of at least one and at most the client's Receive Maximum",
	Statements: []string{"MQTT-4.9.0-1"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("quota")
		r, _ := e.connectOK(connect5(e.id("s"), true, &packet.Properties{ReceiveMaximum: u16p(1)}))
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		p := e.client("p")
		for i := range 3 {
			e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte(fmt.Sprint(i))})
		}
		Expect(string(expect[*packet.Publish](e, r).Payload)).To(Equal("0"), "the first message, sent with a quota of one")
		e.ping(r) // and no second one before its PUBACK
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "completes QoS 1 and QoS 2 deliveries already started when their subscription is removed",
	Statements: []string{"MQTT-3.10.4-3"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		t1, t2 := e.topic("one"), e.topic("two")
		r := e.client("s")
		e.sub5(r, packet.Subscription{Filter: t1, QoS: 1})
		e.sub5(r, packet.Subscription{Filter: t2, QoS: 2})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t1, QoS: 1, Payload: []byte("1")})
		e.publish5(p, &packet.Publish{Topic: t2, QoS: 2, Payload: []byte("2")})
		one := deliveries(e, r, 1, 1)[0]
		two := deliveries(e, r, 1, 2)[0]
		u := &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{t1, t2}}
		e.send(r, u)
		Expect(await[*packet.Unsuback](e, r, u.PacketID).ReasonCodes).To(Equal([]byte{0, 0}))
		e.send(r, &packet.Puback{PacketID: one.PacketID})
		e.send(r, &packet.Pubrec{PacketID: two.PacketID})
		Expect(await[*packet.Pubrel](e, r, two.PacketID).ReasonCode).To(Equal(byte(0)), "PUBREL reason code after the UNSUBSCRIBE")
		e.send(r, &packet.Pubcomp{PacketID: two.PacketID})
		e.ping(r)
	},
})
