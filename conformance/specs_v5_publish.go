package conformance

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 specs: PUBLISH flows with reason codes, properties, expiry,
// flow control, wills.

var _ = register(specDef{
	V5: true, Area: "publish", Text: "acknowledges QoS 1 and 2 PUBLISHes with defined reason codes and their packet identifiers",
	Statements: []string{"MQTT-3.4.2-1", "MQTT-3.5.2-1", "MQTT-3.7.2-1", "MQTT-2.2.1-5", "MQTT-4.3.2-4", "MQTT-4.3.3-8", "MQTT-4.3.3-11"},
	Needs:      []string{"qos2"},
	Body: func(e *env) {
		r := e.client("p")
		t := e.topic("a")
		e.sub5(r, packet.Subscription{Filter: e.topic("sub"), QoS: 0})
		// Success, or 0x10 No matching subscribers for a topic nobody has.
		Expect([]byte{0x00, 0x10}).To(ContainElement(e.publish5(r, &packet.Publish{Topic: t, QoS: 1})), "PUBACK reason code")
		Expect([]byte{0x00, 0x10}).To(ContainElement(e.publish5(r, &packet.Publish{Topic: t, QoS: 2})), "PUBREC reason code")
		Expect(e.publish5(r, &packet.Publish{Topic: e.topic("sub"), QoS: 1})).To(Equal(byte(0x00)), "PUBACK reason code with a subscriber")
		Expect(e.publish5(r, &packet.Publish{Topic: e.topic("sub"), QoS: 2})).To(Equal(byte(0x00)), "PUBREC reason code with a subscriber")
		// A PUBREL for an identifier the broker does not hold: 0x92
		// Packet Identifier not found, or Success.
		e.send(r, &packet.Pubrel{PacketID: 4242})
		Expect([]byte{0x00, 0x92}).To(ContainElement(await[*packet.Pubcomp](e, r, 4242).ReasonCode), "PUBCOMP reason code for an unknown packet identifier")
	},
})

var _ = register(specDef{
	V5: true, Area: "publish", Text: "forwards PUBLISH properties unchanged: user properties in order, content type, payload format, response topic, correlation data",
	Statements: []string{"MQTT-3.3.2-4", "MQTT-3.3.2-15", "MQTT-3.3.2-16", "MQTT-3.3.2-17", "MQTT-3.3.2-18", "MQTT-3.3.2-20", "MQTT-3.3.2-3"},
	Needs:      []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("props")
		s := e.client("s")
		e.sub5(s, packet.Subscription{Filter: t, QoS: 1})
		one := byte(1)
		props := &packet.Properties{
			PayloadFormat: &one, ContentType: "text/plain; charset=utf-8", HasContentType: true,
			ResponseTopic: e.topic("reply"), HasResponseTopic: true, CorrelationData: []byte{0, 1, 2, 0xFF},
			User: []packet.UserProperty{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "b", Value: "3"}, {Key: "", Value: ""}},
		}
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("hello"), Props: props})
		m := e.recv(s)
		Expect(m.Topic).To(Equal(t))
		Expect(m.Props).NotTo(BeNil(), "forwarded properties")
		Expect(m.Props.PayloadFormat).To(Equal(&one), "Payload Format Indicator")
		Expect(m.Props.HasContentType).To(BeTrue(), "Content Type")
		Expect(m.Props.ContentType).To(Equal(props.ContentType), "Content Type")
		Expect(m.Props.HasResponseTopic).To(BeTrue(), "Response Topic")
		Expect(m.Props.ResponseTopic).To(Equal(props.ResponseTopic), "Response Topic")
		Expect(m.Props.CorrelationData).To(Equal(props.CorrelationData), "Correlation Data")
		Expect(m.Props.User).To(Equal(props.User), "User Properties, in order")
	},
})

var _ = register(specDef{
	V5: true, Area: "publish", Text: "forwards messages with QoS 0 and DUP 0 to a QoS 0 subscription, the lower QoS to others",
	Statements: []string{"MQTT-3.8.4-8", "MQTT-3.3.1-2", "MQTT-4.3.1-1", "MQTT-4.3.2-2", "MQTT-2.2.1-2"},
	Needs:      []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("q")
		s0, s1 := e.client("s0"), e.client("s1")
		e.sub5(s0, packet.Subscription{Filter: t, QoS: 0})
		e.sub5(s1, packet.Subscription{Filter: t, QoS: 1})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 2, Payload: []byte("x")})
		m0 := e.recv(s0)
		Expect(m0.QoS).To(Equal(byte(0)), "QoS delivered to a QoS 0 subscription")
		Expect(m0.Dup).To(BeFalse(), "DUP of a QoS 0 message")
		Expect(m0.PacketID).To(BeZero(), "packet identifier of a QoS 0 message")
		m1 := e.recv(s1)
		Expect(m1.QoS).To(Equal(byte(1)), "QoS delivered to a QoS 1 subscription")
		Expect(m1.Dup).To(BeFalse(), "DUP of a first delivery")
		Expect(m1.PacketID).NotTo(BeZero())
	},
})

var _ = register(specDef{
	V5: true, Area: "publish", Text: "forwards one client's messages on a topic in the order it published them",
	Statements: []string{"MQTT-4.6.0-5", "MQTT-4.6.0-6"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("o")
		s := e.client("s")
		e.sub5(s, packet.Subscription{Filter: t, QoS: 1})
		p := e.client("p")
		for i := range 10 {
			e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte(fmt.Sprint(i))})
		}
		for i := range 10 {
			Expect(string(e.recv(s).Payload)).To(Equal(fmt.Sprint(i)))
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "publish", Text: "answers a QoS 2 PUBLISH resent before PUBREL with PUBREC and delivers it once",
	Statements: []string{"MQTT-4.3.3-10"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("q2")
		s := e.client("s")
		e.sub5(s, packet.Subscription{Filter: t, QoS: 2})
		p := e.client("p")
		m := &packet.Publish{Topic: t, QoS: 2, PacketID: e.nextID(), Payload: []byte("once")}
		e.send(p, m)
		await[*packet.Pubrec](e, p, m.PacketID)
		m.Dup = true
		e.send(p, m)
		await[*packet.Pubrec](e, p, m.PacketID)
		e.send(p, &packet.Pubrel{PacketID: m.PacketID})
		await[*packet.Pubcomp](e, p, m.PacketID)
		Expect(string(e.recv(s).Payload)).To(Equal("once"))
		e.nothing(s)
	},
})

var _ = register(specDef{
	V5: true, Area: "publish", Text: "discards a queued message whose Message Expiry Interval passed and forwards the rest with the time left",
	Statements: []string{"MQTT-3.3.2-5", "MQTT-3.3.2-6"}, Needs: []string{"qos1", "persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("exp")
		r, _ := e.session5(id, true, 300)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		e.send(r, &packet.Disconnect{})
		e.closed(r)
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("short"), Props: &packet.Properties{MessageExpiry: u32p(1)}})
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("long"), Props: &packet.Properties{MessageExpiry: u32p(60)}})
		// The condition is time itself: the short interval must have run
		// out (by half a second, for the clocks of a loaded machine).
		time.Sleep(1500 * time.Millisecond)
		r, ack := e.session5(id, false, 0)
		Expect(ack.SessionPresent).To(BeTrue())
		m := e.recv(r)
		Expect(string(m.Payload)).To(Equal("long"), "the expired message was delivered")
		Expect(m.Props).NotTo(BeNil())
		Expect(m.Props.MessageExpiry).NotTo(BeNil(), "forwarded Message Expiry Interval")
		Expect(*m.Props.MessageExpiry).To(BeNumerically("<", 60), "Message Expiry Interval less the time waited")
		e.nothing(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "answers PINGREQ while the client's Receive Maximum is reached, with distinct packet identifiers in flight",
	Statements: []string{"MQTT-3.3.4-10", "MQTT-4.9.0-3", "MQTT-2.2.1-4"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		r, _, _ := fillReceiveMaximum(e, 3)
		// The quota is zero; the PINGRESP must still come (whatever the
		// broker does about the quota, which the next spec checks).
		e.send(r, &packet.Pingreq{})
		setAside[*packet.Pingresp](e, r, "PINGRESP with the Receive Maximum reached")
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "keeps unacknowledged QoS 1 deliveries within the client's Receive Maximum",
	Statements: []string{"MQTT-3.3.4-9", "MQTT-4.9.0-2"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		r, a, b := fillReceiveMaximum(e, 4)
		e.ping(r) // the quota is zero: nothing but the PINGRESP
		e.send(r, &packet.Puback{PacketID: a.PacketID})
		c := expect[*packet.Publish](e, r)
		Expect(string(c.Payload)).To(Equal("2"))
		Expect(c.PacketID).NotTo(Equal(b.PacketID), "packet identifier still in use")
		e.nothing(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "flow", Text: "does not send a packet over the client's Maximum Packet Size and carries on as if it had",
	Statements: []string{"MQTT-3.1.2-24", "MQTT-3.1.2-25"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("mps")
		r, _ := e.connectOK(connect5(e.id("s"), true, &packet.Properties{MaximumPacketSize: u32p(128)}))
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: make([]byte, 200)})
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("small")})
		m := e.recv(r)
		Expect(string(m.Payload)).To(Equal("small"), "the first PUBLISH to arrive")
		e.nothing(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "will", Text: "publishes the will, with its properties in order, when the connection closes without DISCONNECT",
	Statements: []string{"MQTT-3.1.2-7", "MQTT-3.1.2-8", "MQTT-3.1.2-14", "MQTT-3.1.3-10"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("will")
		watch := e.client("watch")
		e.sub5(watch, packet.Subscription{Filter: t, QoS: 1})
		user := []packet.UserProperty{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "z", Value: "3"}}
		cp := connect5(e.id("w"), true, nil)
		cp.Will = &packet.Will{Topic: t, Payload: []byte("gone"), QoS: 1, Props: &packet.Properties{User: user, ContentType: "text/plain", HasContentType: true}}
		w, _ := e.connectOK(cp)
		Expect(w.Close()).To(Succeed())
		m := e.recv(watch)
		Expect(string(m.Payload)).To(Equal("gone"))
		Expect(m.Retain).To(BeFalse(), "RETAIN of a will with Will Retain 0")
		Expect(m.Props).NotTo(BeNil())
		Expect(m.Props.User).To(Equal(user), "will User Properties, in order")
		Expect(m.Props.ContentType).To(Equal("text/plain"))
		e.nothing(watch)
	},
})

var _ = register(specDef{
	V5: true, Area: "will", Text: "publishes a will with Will Retain 1 as a retained message",
	Statements: []string{"MQTT-3.1.2-15"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t := e.topic("will")
		cp := connect5(e.id("w"), true, nil)
		cp.Will = &packet.Will{Topic: t, Payload: []byte("gone"), Retain: true}
		e.retained = append(e.retained, t)
		watch := e.client("watch")
		e.sub5(watch, packet.Subscription{Filter: t, QoS: 0})
		w, _ := e.connectOK(cp)
		Expect(w.Close()).To(Succeed())
		e.recv(watch)
		late := e.client("late")
		e.sub5(late, packet.Subscription{Filter: t, QoS: 0})
		m := e.recv(late)
		Expect(string(m.Payload)).To(Equal("gone"))
		Expect(m.Retain).To(BeTrue(), "RETAIN of a retained will sent on subscription")
	},
})

var _ = register(specDef{
	V5: true, Area: "will", Text: "discards the will on DISCONNECT 0x00 and publishes it on DISCONNECT 0x04",
	Statements: []string{"MQTT-3.14.4-3", "MQTT-3.1.2-10", "MQTT-3.1.2-8"},
	Body: func(e *env) {
		t := e.topic("will")
		watch := e.client("watch")
		e.sub5(watch, packet.Subscription{Filter: t, QoS: 0})
		for _, code := range []byte{0x00, 0x04} {
			cp := connect5(e.id(fmt.Sprintf("w%d", code)), true, nil)
			cp.Will = &packet.Will{Topic: t, Payload: []byte{code}}
			w, _ := e.connectOK(cp)
			e.send(w, &packet.Disconnect{ReasonCode: code})
			e.closed(w)
		}
		m := e.recv(watch)
		Expect(m.Payload).To(Equal([]byte{0x04}), "the will published (only the one of DISCONNECT 0x04)")
		e.nothing(watch)
	},
})

var _ = register(specDef{
	V5: true, Area: "will", Text: "publishes a will with a Will Delay Interval only once the delay has passed",
	Statements: []string{"MQTT-3.1.2-8"}, Needs: []string{"persistent-sessions"},
	Body: func(e *env) {
		t := e.topic("will")
		watch := e.client("watch")
		e.sub5(watch, packet.Subscription{Filter: t, QoS: 0})
		// The session outlives the delay, so only the delay sets the time.
		cp := connect5(e.id("w"), true, &packet.Properties{SessionExpiry: u32p(60)})
		cp.Will = &packet.Will{Topic: t, Payload: []byte("late"), Props: &packet.Properties{WillDelay: u32p(2)}}
		w, _ := e.connectOK(cp)
		Expect(w.Close()).To(Succeed())
		e.nothing(watch) // well within the 2 s delay
		m := e.recv(watch)
		Expect(string(m.Payload)).To(Equal("late"))
		if m.Props != nil {
			Expect(m.Props.WillDelay).To(BeNil(), "a PUBLISH carries no Will Delay Interval")
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "will", Text: "does not publish a will whose client reconnects within the Will Delay Interval",
	Statements: []string{"MQTT-3.1.3-9", "MQTT-3.1.2-8"}, Needs: []string{"persistent-sessions"},
	Body: func(e *env) {
		t, id := e.topic("will"), e.id("w")
		watch := e.client("watch")
		e.sub5(watch, packet.Subscription{Filter: t, QoS: 0})
		cp := connect5(id, true, &packet.Properties{SessionExpiry: u32p(60)})
		cp.Will = &packet.Will{Topic: t, Payload: []byte("cancelled"), Props: &packet.Properties{WillDelay: u32p(1)}}
		w, _ := e.connectOK(cp)
		Expect(w.Close()).To(Succeed())
		// Back within the delay, whether or not the broker saw the close
		// yet (a takeover also cancels the will); this session ends with
		// the new connection.
		r, _ := e.session5(id, false, 0)
		// The condition is time itself: the delay must have run out (by
		// half a second, for the clocks of a loaded machine).
		time.Sleep(1500 * time.Millisecond)
		e.nothing(watch)
		e.send(r, &packet.Disconnect{})
		e.closed(r)
		e.nothing(watch)
	},
})

var _ = register(specDef{
	V5: true, Area: "publish", Text: "accepts every Topic Alias from 1 to the Topic Alias Maximum it advertised, for one connection only",
	Statements: []string{"MQTT-3.3.2-12", "MQTT-3.3.2-7"},
	Body: func(e *env) {
		t := e.topic("alias")
		watch := e.client("watch")
		e.sub5(watch, packet.Subscription{Filter: t + "/#", QoS: 0})
		id := e.id("p")
		p, ack := e.connectOK(connect5(id, true, nil))
		if ack.Props == nil || ack.Props.TopicAliasMaximum == nil || *ack.Props.TopicAliasMaximum == 0 {
			Skip("the broker advertises no Topic Alias Maximum: it accepts no aliases")
		}
		most := *ack.Props.TopicAliasMaximum
		alias := func(topic string, a uint16, payload string) *packet.Publish {
			return &packet.Publish{Topic: topic, Payload: []byte(payload), Props: &packet.Properties{TopicAlias: u16p(a)}}
		}
		for _, step := range []struct {
			p     *packet.Publish
			topic string
		}{
			{alias(t+"/one", 1, "a"), t + "/one"},
			{alias("", 1, "b"), t + "/one"},
			{alias(t+"/most", most, "c"), t + "/most"},
			{alias("", most, "d"), t + "/most"},
			{alias("", 1, "e"), t + "/one"},
		} {
			e.send(p, step.p)
			m := e.recv(watch)
			Expect(m.Topic).To(Equal(step.topic), "topic of the PUBLISH with payload %q", step.p.Payload)
			Expect(string(m.Payload)).To(Equal(string(step.p.Payload)))
		}
		e.ping(p)
		Expect(p.Close()).To(Succeed())
		// A new connection, for the same client ID, has no aliases: an
		// empty topic with alias 1 is an error.
		p, _ = e.connectOK(connect5(id, true, nil))
		e.send(p, alias("", 1, "x"))
		e.closedOnError(p, 0x82, 0x94)
		e.nothing(watch)
	},
})

// fillReceiveMaximum subscribes a 5.0 client with Receive Maximum 2 at QoS 1,
// publishes n messages to it ("0", "1", ...) and returns the client and the
// first two deliveries, which must carry distinct non-zero packet
// identifiers: the client's quota is then used up.
func fillReceiveMaximum(e *env, n int) (r *client.Raw, a, b *packet.Publish) {
	t := e.topic("rm")
	r, _ = e.connectOK(connect5(e.id("s"), true, &packet.Properties{ReceiveMaximum: u16p(2)}))
	e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
	p := e.client("p")
	for i := range n {
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	a = expect[*packet.Publish](e, r)
	b = expect[*packet.Publish](e, r)
	Expect(a.PacketID).NotTo(BeZero())
	Expect(b.PacketID).NotTo(BeZero())
	Expect(a.PacketID).NotTo(Equal(b.PacketID), "two unacknowledged PUBLISHes with one packet identifier")
	return r, a, b
}
