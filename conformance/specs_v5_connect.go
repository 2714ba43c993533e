package conformance

import (
	"errors"
	"fmt"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 specs: CONNECT and CONNACK, sessions, the server's DISCONNECT.

var _ = register(specDef{
	V5: true, Area: "connect", Text: "accepts a CONNECT with reason code Success and Session Present 0 under Clean Start 1",
	Statements: []string{"MQTT-3.1.3-5", "MQTT-3.1.4-5", "MQTT-3.2.0-1", "MQTT-3.2.2-2", "MQTT-3.2.2-8"},
	Body: func(e *env) {
		r, ack := e.connect(connect5(e.id("c"), true, nil))
		Expect(ack.ReturnCode).To(Equal(byte(0x00)), "CONNACK reason code")
		Expect(ack.SessionPresent).To(BeFalse(), "Session Present under Clean Start 1")
		e.ping(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "assigns a fresh client identifier to an empty one, returns it in CONNACK and uses it",
	Statements: []string{"MQTT-3.1.3-6", "MQTT-3.1.3-7", "MQTT-3.2.2-16"}, Needs: []string{"empty-client-id"},
	Body: func(e *env) {
		r1, a1 := e.connectOK(connect5("", true, nil))
		_, a2 := e.connectOK(connect5("", true, nil))
		for _, a := range []*packet.Connack{a1, a2} {
			Expect(a.Props).NotTo(BeNil(), "CONNACK properties")
			Expect(a.Props.HasAssignedClientID).To(BeTrue(), "Assigned Client Identifier")
			Expect(a.Props.AssignedClientID).NotTo(BeEmpty(), "Assigned Client Identifier")
		}
		Expect(a1.Props.AssignedClientID).NotTo(Equal(a2.Props.AssignedClientID), "two connections got the same identifier")
		// The first connection's session is keyed by the assigned
		// identifier: a CONNECT naming it takes that session over.
		e.connectOK(connect5(a1.Props.AssignedClientID, true, nil))
		e.takenOver(r1)
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "advertises in CONNACK no more than it serves: QoS, retain, wildcards, Receive Maximum",
	Statements: []string{"MQTT-3.2.2-9", "MQTT-3.2.2-10"}, Needs: []string{"qos2", "retain", "wildcards"},
	Body: func(e *env) {
		r, ack := e.connectOK(connect5(e.id("c"), true, nil))
		p := ack.Props
		if p == nil {
			p = &packet.Properties{}
		}
		// A QoS 2 subscription is granted QoS 2, so Maximum QoS must be
		// absent (2) or 2; a server advertising less must still accept it.
		codes := e.subscribe5(r, packet.Subscription{Filter: e.topic("q0"), QoS: 0},
			packet.Subscription{Filter: e.topic("q1"), QoS: 1}, packet.Subscription{Filter: e.topic("q2"), QoS: 2}).ReturnCodes
		Expect(codes).To(Equal([]byte{0, 1, 2}), "SUBACK for QoS 0, 1 and 2")
		if p.MaximumQoS != nil {
			Expect(*p.MaximumQoS).To(Equal(byte(2)), "Maximum QoS of a broker granting QoS 2")
		}
		if p.RetainAvailable != nil {
			Expect(*p.RetainAvailable).To(Equal(byte(1)), "Retain Available of a broker keeping retained messages")
		}
		if p.WildcardSubAvailable != nil {
			Expect(*p.WildcardSubAvailable).To(Equal(byte(1)), "Wildcard Subscription Available of a broker accepting wildcards")
		}
		if p.ReceiveMaximum != nil {
			Expect(*p.ReceiveMaximum).NotTo(BeZero(), "Receive Maximum 0 is a Protocol Error")
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "sends no Authentication Method, AUTH or Response Information nobody asked for",
	Statements: []string{"MQTT-4.12.0-6", "MQTT-3.1.2-28"},
	Body: func(e *env) {
		r, ack := e.connectOK(connect5(e.id("c"), true, &packet.Properties{RequestResponseInfo: new(byte)}))
		if ack.Props != nil {
			Expect(ack.Props.HasAuthMethod).To(BeFalse(), "Authentication Method in CONNACK")
			Expect(ack.Props.AuthData).To(BeNil(), "Authentication Data in CONNACK")
			Expect(ack.Props.HasResponseInfo).To(BeFalse(), "Response Information with Request Response Information 0")
		}
		e.ping(r) // and no AUTH before the PINGRESP
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "sends no Reason String or User Property on acks with Request Problem Information 0",
	Statements: []string{"MQTT-3.1.2-29"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		r, _ := e.connectOK(connect5(e.id("c"), true, &packet.Properties{RequestProblemInfo: new(byte)}))
		noProblem := func(what string, p *packet.Properties) {
			if p != nil {
				Expect(p.HasReasonString).To(BeFalse(), "Reason String on %s", what)
				Expect(p.User).To(BeEmpty(), "User Property on %s", what)
			}
		}
		ack := e.subscribe5(r, packet.Subscription{Filter: e.topic("ok"), QoS: 1})
		noProblem("SUBACK", ack.Props)
		p := &packet.Publish{Topic: e.topic("nobody"), QoS: 1, PacketID: e.nextID(), Payload: []byte("x")}
		e.send(r, p)
		noProblem("PUBACK", await[*packet.Puback](e, r, p.PacketID).Props)
		e.send(r, &packet.Pubrel{PacketID: 999})
		noProblem("PUBCOMP", await[*packet.Pubcomp](e, r, 999).Props)
		u := &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{e.topic("none")}}
		e.send(r, u)
		noProblem("UNSUBACK", await[*packet.Unsuback](e, r, u.PacketID).Props)
	},
})

var _ = register(specDef{
	V5: true, Area: "session", Text: "resumes a session within its Session Expiry Interval, with Session Present and queued messages",
	Statements: []string{"MQTT-3.1.2-5", "MQTT-3.1.2-6", "MQTT-3.1.2-23", "MQTT-3.2.2-3", "MQTT-4.5.0-1"}, Needs: []string{"qos1", "persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("s")
		r, ack := e.session5(id, false, 300)
		Expect(ack.SessionPresent).To(BeFalse(), "Session Present for a new session under Clean Start 0")
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		e.send(r, &packet.Disconnect{ReasonCode: 0})
		e.closed(r)
		pub := e.client("p")
		e.publish5(pub, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("queued")})
		r, ack = e.session5(id, false, 300)
		Expect(ack.SessionPresent).To(BeTrue(), "Session Present for a resumed session")
		m := e.recv(r)
		Expect(m.Topic).To(Equal(t))
		Expect(string(m.Payload)).To(Equal("queued"))
		e.send(r, &packet.Disconnect{Props: &packet.Properties{SessionExpiry: u32p(0)}})
	},
})

var _ = register(specDef{
	V5: true, Area: "session", Text: "ends a session with Session Expiry Interval 0 when its connection closes",
	Statements: []string{"MQTT-4.1.0-2", "MQTT-3.2.2-3"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("s")
		r, _ := e.session5(id, false, 0)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		e.send(r, &packet.Disconnect{})
		e.closed(r)
		r, ack := e.session5(id, false, 0)
		Expect(ack.SessionPresent).To(BeFalse(), "Session Present after a session with expiry 0 ended")
		pub := e.client("p")
		e.publish5(pub, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("x")})
		e.nothing(r) // the subscription went with the session
	},
})

var _ = register(specDef{
	V5: true, Area: "session", Text: "discards an existing session under Clean Start 1",
	Statements: []string{"MQTT-3.1.2-4", "MQTT-3.1.4-4", "MQTT-3.2.2-2"}, Needs: []string{"qos1", "persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("s")
		r, _ := e.session5(id, false, 300)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		e.send(r, &packet.Disconnect{})
		e.closed(r)
		r, ack := e.session5(id, true, 0)
		Expect(ack.SessionPresent).To(BeFalse(), "Session Present under Clean Start 1")
		pub := e.client("p")
		e.publish5(pub, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("x")})
		e.nothing(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "session", Text: "resends an unacknowledged PUBLISH of a resumed session with DUP 1 and its packet identifier",
	Statements: []string{"MQTT-4.4.0-1", "MQTT-3.3.1-1", "MQTT-3.3.1-3"}, Needs: []string{"qos1", "persistent-sessions"},
	Body: func(e *env) {
		id, t := e.id("s"), e.topic("s")
		r, _ := e.session5(id, true, 300)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		pub := e.client("p")
		e.publish5(pub, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("once")})
		first := expect[*packet.Publish](e, r)
		Expect(first.Dup).To(BeFalse(), "DUP of a first delivery")
		Expect(r.Close()).To(Succeed()) // without PUBACK
		r, ack := e.session5(id, false, 0)
		Expect(ack.SessionPresent).To(BeTrue())
		again := expect[*packet.Publish](e, r)
		Expect(again.PacketID).To(Equal(first.PacketID), "packet identifier of the resent PUBLISH")
		Expect(again.Dup).To(BeTrue(), "DUP of the resent PUBLISH")
		Expect(string(again.Payload)).To(Equal("once"))
		e.ack(r, again)
		e.ping(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "session", Text: "sends DISCONNECT 0x8E to a connection whose session another one takes over",
	Statements: []string{"MQTT-3.1.4-3"},
	Body: func(e *env) {
		id := e.id("t")
		old, _ := e.connectOK(connect5(id, true, nil))
		e.connectOK(connect5(id, true, nil))
		e.serverDisconnect(old, 0x8E)
	},
})

var _ = register(specDef{
	V5: true, Area: "disconnect", Text: "sends only well-formed DISCONNECTs: a defined reason code, no Session Expiry Interval, nothing after, then closes",
	Statements: []string{"MQTT-3.14.0-1", "MQTT-3.14.2-1", "MQTT-3.14.2-2", "MQTT-3.14.4-1", "MQTT-3.14.4-2"},
	Body: func(e *env) {
		// A server may close without DISCONNECT after an error (5.0
		// section 4.13): the spec checks every DISCONNECT these triggers
		// draw, and has nothing to verify if none does.
		seen := 0
		check := func(r *client.Raw) {
			p, err := r.ReadPacket(wait)
			if err != nil {
				Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "the broker must close the connection")
				return
			}
			d, ok := p.(*packet.Disconnect)
			Expect(ok).To(BeTrue(), "expected DISCONNECT or the connection closed, got %s %+v", p.Type(), p)
			seen++
			e.checkDisconnect(r, d) // after a successful CONNACK [MQTT-3.14.0-1]
		}
		r := e.client("q3")
		e.sendBytes(r, packet.Frame(0x36, str(e.topic("q3")), u16(1), []byte{0}, []byte("x")))
		check(r)
		r = e.client("sub")
		e.sendBytes(r, packet.Frame(0x82, u16(1), []byte{0}, str(e.topic("f")), []byte{0xC0}))
		check(r)
		id := e.id("t")
		old, _ := e.connectOK(connect5(id, true, nil))
		e.connectOK(connect5(id, true, nil))
		check(old)
		if seen == 0 {
			Skip("the broker closed every connection without a DISCONNECT to check")
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "keepalive", Text: "disconnects a client silent for 1.5 times its keepalive, with DISCONNECT 0x8D if any",
	Statements: []string{"MQTT-3.1.2-22", "MQTT-3.2.2-22"},
	Body: func(e *env) {
		// As the 3.1.1 keepalive spec: staggered probes, so a broker
		// checking keepalives on a coarse timer shows its worst case. No
		// Server Keep Alive is asked for: the client's applies.
		silentProbes(e, func(id string) *packet.Connect { return connect5(id, true, nil) }, func(r *client.Raw, within time.Duration) (time.Time, error) {
			// A DISCONNECT may come first, and must say 0x8D (Keep
			// Alive timeout); then the close, with nothing after it.
			pk, err := r.ReadPacket(within)
			at := time.Now()
			switch {
			case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
			case err != nil:
				err = nil // closed without DISCONNECT (5.0 section 4.13)
			default:
				if d, ok := pk.(*packet.Disconnect); !ok || d.ReasonCode != 0x8D {
					err = fmt.Errorf("expected DISCONNECT 0x8D or the close, got %s %+v", pk.Type(), pk)
				} else {
					err = r.ExpectClosed(wait)
				}
			}
			return at, err
		})
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "closes the connection on a second CONNECT, without a second CONNACK",
	Statements: []string{"MQTT-3.1.0-2", "MQTT-3.2.0-2", "MQTT-4.13.1-1"},
	Body: func(e *env) {
		cp := connect5(e.id("c"), true, nil)
		r, _ := e.connectOK(cp)
		e.send(r, cp)
		e.closedOnError(r, 0x82)
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "closes the connection on a CONNECT with the reserved flag set",
	Statements: []string{"MQTT-3.1.2-3", "MQTT-3.1.4-1"},
	Body: func(e *env) {
		r := e.dial("c")
		e.sendBytes(r, rawConnect5(0x03, e.id("c")))
		// A CONNACK 0x81 or 0x82 may come first (5.0 section 3.2.2.2).
		p, err := r.ReadPacket(wait)
		Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "the broker must close the connection")
		if err == nil {
			ack, ok := p.(*packet.Connack)
			Expect(ok).To(BeTrue(), "expected CONNACK or the connection closed, got %s", p.Type())
			Expect(ack.ReturnCode).To(BeNumerically(">=", 0x80), "CONNACK reason code for a malformed CONNECT")
			e.closed(r)
		}
	},
})
