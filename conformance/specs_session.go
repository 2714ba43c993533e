package conformance

import (
	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/packet"
)

// dropSession ends a CleanSession=0 session by connecting clean, so specs
// leave no sessions behind in a shared broker.
func (e *env) dropSession(id string) {
	r, _ := e.connectOK(connectPacket(id))
	e.send(r, &packet.Disconnect{})
}

var _ = register(specDef{
	Area: "session", Text: "answers CleanSession=0 without stored state with session present 0",
	Statements: []string{"MQTT-3.2.2-3", "MQTT-3.1.2-4"}, Needs: []string{"persistent-sessions"},
	Body: func(e *env) {
		id := e.id("s")
		r, present := e.session(id)
		Expect(present).To(BeFalse())
		e.send(r, &packet.Disconnect{})
		e.dropSession(id)
	},
})

var _ = register(specDef{
	Area: "session", Text: "resumes a CleanSession=0 session: session present 1 and its subscriptions kept",
	Statements: []string{"MQTT-3.2.2-2", "MQTT-3.1.2-4", "MQTT-3.1.4-3", "MQTT-4.1.0-1", "MQTT-4.1.0-2"},
	Needs:      []string{"persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("resume")
		r, _ := e.session(id)
		e.subOK(r, 1, t)
		e.send(r, &packet.Disconnect{})
		r.Close()
		r, present := e.session(id)
		Expect(present).To(BeTrue(), "session present after resuming")
		pub := e.client("p")
		e.pub(pub, t, "kept", 1, false)
		Expect(string(e.recvOn(r, t).Payload)).To(Equal("kept"))
		e.dropSession(id)
	},
})

var _ = register(specDef{
	Area: "session", Text: "queues QoS 1 and 2 messages for a disconnected CleanSession=0 session, after CONNACK",
	Statements: []string{"MQTT-3.1.2-5", "MQTT-4.5.0-1", "MQTT-3.2.0-1"}, Needs: []string{"persistent-sessions", "qos2"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("queue")
		r, _ := e.session(id)
		e.subOK(r, 2, t)
		e.send(r, &packet.Disconnect{})
		r.Close()
		pub := e.client("p")
		e.pub(pub, t, "one", 1, false)
		e.pub(pub, t, "two", 2, false)
		// The first packet of the new connection must be CONNACK, though
		// messages are waiting [MQTT-3.2.0-1]: connectOK reads it first.
		r, present := e.session(id)
		Expect(present).To(BeTrue())
		a := e.recv(r)
		b := e.recv(r)
		Expect([]string{string(a.Payload), string(b.Payload)}).To(Equal([]string{"one", "two"}))
		Expect([]byte{a.QoS, b.QoS}).To(Equal([]byte{1, 2}))
		e.dropSession(id)
	},
})

var _ = register(specDef{
	Area: "session", Text: "discards the previous session on CleanSession=1 and never reuses its state",
	Statements: []string{"MQTT-3.1.2-6", "MQTT-3.1.4-3"}, Needs: []string{"persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("clean")
		r, _ := e.session(id)
		e.subOK(r, 1, t)
		e.send(r, &packet.Disconnect{})
		r.Close()
		r, ack := e.connectOK(connectPacket(id))
		Expect(ack.SessionPresent).To(BeFalse(), "session present with CleanSession=1")
		pub := e.client("p")
		e.pub(pub, t, "gone", 1, false)
		e.nothing(r)
		e.send(r, &packet.Disconnect{})
		r.Close()
		r, present := e.session(id)
		Expect(present).To(BeFalse(), "state of the discarded session came back")
		e.nothing(r)
		e.send(r, &packet.Disconnect{})
		e.dropSession(id)
	},
})

var _ = register(specDef{
	Area: "session", Text: "keys sessions by ClientId: another ClientId does not get the session",
	Statements: []string{"MQTT-3.1.3-2"}, Needs: []string{"persistent-sessions"},
	Body: func(e *env) {
		a, b := e.id("a"), e.id("b")
		r, _ := e.session(a)
		e.subOK(r, 1, e.topic("key"))
		e.send(r, &packet.Disconnect{})
		r2, present := e.session(b)
		Expect(present).To(BeFalse(), "ClientId %s was given the session of %s", b, a)
		e.send(r2, &packet.Disconnect{})
		r3, present := e.session(a)
		Expect(present).To(BeTrue(), "ClientId %s lost its own session", a)
		e.send(r3, &packet.Disconnect{})
		e.dropSession(a)
		e.dropSession(b)
	},
})

var _ = register(specDef{
	Area: "session", Text: "disconnects the existing client when a new one connects with the same ClientId",
	Statements: []string{"MQTT-3.1.4-2"},
	Body: func(e *env) {
		id := e.id("take")
		first, _ := e.connectOK(connectPacket(id))
		second, _ := e.connectOK(connectPacket(id))
		e.closed(first)
		e.ping(second)
	},
})

var _ = register(specDef{
	Area: "session", Text: "keeps retained messages after the session that published them ends",
	Statements: []string{"MQTT-3.1.2-7"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t := e.topic("ret")
		pub := e.client("p")
		e.pubRetained(pub, t, "stays", 1)
		e.send(pub, &packet.Disconnect{})
		pub.Close()
		sub := e.client("s")
		e.subOK(sub, 1, t)
		got := e.recv(sub)
		Expect(string(got.Payload)).To(Equal("stays"))
		Expect(got.Retain).To(BeTrue())
	},
})

var _ = register(specDef{
	Area: "session", Text: "resends an unacknowledged QoS 1 PUBLISH on reconnect with DUP=1 and the same packet identifier",
	Statements: []string{"MQTT-4.4.0-1", "MQTT-3.3.1-1"}, Needs: []string{"persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("redeliver")
		r, _ := e.session(id)
		e.subOK(r, 1, t)
		pub := e.client("p")
		e.pub(pub, t, "again", 1, false)
		first := expect[*packet.Publish](e, r)
		Expect(first.Dup).To(BeFalse(), "DUP on the first delivery")
		r.Close() // no PUBACK
		r, present := e.session(id)
		Expect(present).To(BeTrue())
		again := expect[*packet.Publish](e, r)
		Expect(again.PacketID).To(Equal(first.PacketID), "packet identifier of the resent PUBLISH")
		Expect(again.Dup).To(BeTrue(), "DUP of the resent PUBLISH")
		Expect(string(again.Payload)).To(Equal("again"))
		e.send(r, &packet.Puback{PacketID: again.PacketID})
		e.ping(r)
		e.dropSession(id)
	},
})

var _ = register(specDef{
	Area: "session", Text: "resends PUBREL, not PUBLISH, on reconnect for a QoS 2 message already acknowledged by PUBREC",
	Statements: []string{"MQTT-4.4.0-1", "MQTT-4.3.3-1"}, Needs: []string{"persistent-sessions", "qos2"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("pubrel")
		r, _ := e.session(id)
		e.subOK(r, 2, t)
		pub := e.client("p")
		e.pub(pub, t, "once", 2, false)
		p := expect[*packet.Publish](e, r)
		e.send(r, &packet.Pubrec{PacketID: p.PacketID})
		rel := expect[*packet.Pubrel](e, r)
		Expect(rel.PacketID).To(Equal(p.PacketID))
		r.Close() // no PUBCOMP
		r, present := e.session(id)
		Expect(present).To(BeTrue())
		again := e.next(r)
		rel2, ok := again.(*packet.Pubrel)
		Expect(ok).To(BeTrue(), "expected PUBREL after reconnect, got %s", again.Type())
		Expect(rel2.PacketID).To(Equal(p.PacketID))
		e.send(r, &packet.Pubcomp{PacketID: p.PacketID})
		e.ping(r)
		e.dropSession(id)
	},
})
