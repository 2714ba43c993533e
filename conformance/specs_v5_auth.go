package conformance

import (
	"errors"
	"os"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/targets"
)

// MQTT 5.0 specs: enhanced authentication (sections 3.15 and 4.12). Specs
// that run an exchange need the "enhanced_auth" capability: the target
// offers SCRAM-SHA-256 and knows targets.SCRAMUser. The refusal of a method
// nobody offers runs on every 5.0 target.

const scramMethod = "SCRAM-SHA-256"

// authProps are the properties of an AUTH or CONNECT carrying method data.
func authProps(data []byte) *packet.Properties {
	return &packet.Properties{AuthMethod: scramMethod, HasAuthMethod: true, AuthData: data}
}

// scramBegin connects with SCRAM-SHA-256 as targets.SCRAMUser with password
// pw: CONNECT with the client-first message, then the server's AUTH, which
// must be 0x18 Continue [MQTT-4.12.0-2] with the method [MQTT-4.12.0-5] and
// a defined reason code [MQTT-3.15.2-1]. It returns the client-final message
// to send next and the exchange, which checks the server's last message.
func (e *env) scramBegin(tag, pw string) (*client.Raw, client.AuthExchange, []byte) {
	x, err := client.SCRAM(targets.SCRAMUser, pw).Start()
	Expect(err).NotTo(HaveOccurred())
	first, err := x.Step(nil)
	Expect(err).NotTo(HaveOccurred())
	r := e.dial(e.id(tag))
	e.send(r, connect5(e.id(tag), true, authProps(first)))
	final := e.scramContinue(r, x)
	return r, x, final
}

// scramContinue reads the server's AUTH Continue and returns the client's answer.
func (e *env) scramContinue(r *client.Raw, x client.AuthExchange) []byte {
	a := expect[*packet.Auth](e, r)
	Expect(a.ReasonCode).To(Equal(byte(0x18)), "reason code of the server's AUTH requesting more data [MQTT-4.12.0-2]")
	Expect(a.Props).NotTo(BeNil(), "AUTH properties")
	Expect(a.Props.HasAuthMethod).To(BeTrue(), "Authentication Method in the server's AUTH [MQTT-4.12.0-5]")
	Expect(a.Props.AuthMethod).To(Equal(scramMethod), "Authentication Method in the server's AUTH [MQTT-4.12.0-5]")
	final, err := x.Step(a.Props.AuthData)
	Expect(err).NotTo(HaveOccurred(), "the server-first message")
	return final
}

// scramConnected completes scramBegin with the right password and
// requires CONNACK 0x00 naming the method with a valid server signature.
func (e *env) scramConnected(tag string) *client.Raw {
	r, x, final := e.scramBegin(tag, targets.SCRAMPassword)
	e.send(r, &packet.Auth{ReasonCode: 0x18, Props: authProps(final)})
	ack := expect[*packet.Connack](e, r)
	Expect(ack.ReturnCode).To(Equal(byte(0x00)), "CONNACK reason code after a valid SCRAM proof")
	Expect(ack.Props).NotTo(BeNil(), "CONNACK properties")
	Expect(ack.Props.AuthMethod).To(Equal(scramMethod), "Authentication Method in the successful CONNACK [MQTT-4.12.0-5]")
	Expect(x.Finish(ack.Props.AuthData)).To(Succeed(), "the server signature in the CONNACK")
	return r
}

// refusedAndClosed requires a CONNACK of 0x80 or above, or none, and the
// connection closed [MQTT-3.1.4-2].
func (e *env) refusedAndClosed(r *client.Raw, codes ...byte) {
	p, err := r.ReadPacket(wait)
	if err != nil {
		Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "the broker must refuse and close the connection")
		return
	}
	ack, ok := p.(*packet.Connack)
	Expect(ok).To(BeTrue(), "expected CONNACK or the connection closed, got %s %+v", p.Type(), p)
	if len(codes) > 0 {
		Expect(codes).To(ContainElement(ack.ReturnCode), "CONNACK reason code 0x%02X", ack.ReturnCode)
	}
	Expect(ack.ReturnCode >= 0x80).To(BeTrue(), "CONNACK reason code 0x%02X refuses nothing", ack.ReturnCode)
	e.closed(r)
}

// notRouted requires that the subscriber watch, subscribed to topic, gets a
// marker published now as its next message: a PUBLISH sent on a refused
// connection before it, had the broker acted on it, would come first.
func (e *env) notRouted(watch *client.Raw, topic string) {
	e.publish5(e.client("marker"), &packet.Publish{Topic: topic, Payload: []byte("marker")})
	Expect(string(e.recv(watch).Payload)).To(Equal("marker"), "the watcher got the PUBLISH of a connection never accepted")
}

var _ = register(specDef{
	V5: true, Area: "auth", Text: "refuses an Authentication Method it does not support, and does not act on a PUBLISH sent behind the CONNECT",
	Statements: []string{"MQTT-4.12.0-1", "MQTT-3.1.4-2", "MQTT-3.1.4-6"},
	Body: func(e *env) {
		t := e.topic("a")
		watch := e.client("w")
		e.sub5(watch, packet.Subscription{Filter: t})
		r := e.dial(e.id("m"))
		e.send(r, connect5(e.id("m"), true, &packet.Properties{AuthMethod: "MQF-UNSUPPORTED", HasAuthMethod: true, AuthData: []byte("x")}))
		e.send(r, &packet.Publish{Topic: t, Payload: []byte("behind CONNECT")})
		e.refusedAndClosed(r, 0x87, 0x8C) // or closed without CONNACK
		e.notRouted(watch, t)
	},
})

var _ = register(specDef{
	V5: true, Area: "auth", Text: "runs a SCRAM-SHA-256 exchange: AUTH 0x18 Continue, then CONNACK 0x00, each naming the method",
	Statements: []string{"MQTT-4.12.0-2", "MQTT-4.12.0-5", "MQTT-3.15.2-1"}, Needs: []string{"enhanced_auth"},
	Body: func(e *env) {
		r := e.scramConnected("s")
		e.ping(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "auth", Text: "refuses a wrong SCRAM-SHA-256 proof with CONNACK 0x80 or above and closes the connection",
	Statements: []string{"MQTT-4.12.0-4", "MQTT-3.1.4-2"}, Needs: []string{"enhanced_auth"},
	Body: func(e *env) {
		r, _, final := e.scramBegin("bad", "not-"+targets.SCRAMPassword)
		e.send(r, &packet.Auth{ReasonCode: 0x18, Props: authProps(final)})
		e.refusedAndClosed(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "auth", Text: "does not act on a PUBLISH sent instead of AUTH during the exchange, and closes",
	Statements: []string{"MQTT-3.1.4-6"}, Needs: []string{"enhanced_auth"},
	Body: func(e *env) {
		t := e.topic("a")
		watch := e.client("w")
		e.sub5(watch, packet.Subscription{Filter: t})
		r, _, _ := e.scramBegin("mid", targets.SCRAMPassword)
		e.send(r, &packet.Publish{Topic: t, Payload: []byte("during AUTH")})
		e.refusedAndClosed(r)
		e.notRouted(watch, t)
	},
})

var _ = register(specDef{
	V5: true, Area: "auth", Text: "closes on an AUTH with fixed-header flags set or an undefined reason code, even with valid data",
	Statements: []string{"MQTT-3.15.1-1", "MQTT-3.15.2-1"}, Needs: []string{"enhanced_auth"},
	Body: func(e *env) {
		for _, bad := range []struct {
			tag         string
			first, code byte
		}{{"flags", 0xF1, 0x18}, {"reason", 0xF0, 0x05}} {
			r, _, final := e.scramBegin(bad.tag, targets.SCRAMPassword)
			// The right client-final message, in an AUTH that is malformed.
			body, err := packet.Append(nil, &packet.Auth{ReasonCode: 0x18, Props: authProps(final)}, packet.V5)
			Expect(err).NotTo(HaveOccurred())
			rc := 2 // the reason code follows the remaining length, a variable byte integer
			for body[rc-1]&0x80 != 0 {
				rc++
			}
			body[0], body[rc] = bad.first, bad.code
			e.sendBytes(r, body)
			e.refusedAndClosed(r)
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "auth", Text: "re-authenticates with AUTH 0x19: AUTH 0x18 Continue, then AUTH 0x00, each naming the method",
	Statements: []string{"MQTT-4.12.0-2", "MQTT-4.12.0-5", "MQTT-3.15.2-1"}, Needs: []string{"enhanced_auth"},
	Body: func(e *env) {
		r := e.scramConnected("re")
		e.scramReauth(r)
		e.ping(r) // the connection goes on
	},
})

// scramReauth re-authenticates r with the right password: AUTH 0x19, the
// server's AUTH 0x18, then AUTH 0x00 naming the method with a valid server
// signature.
func (e *env) scramReauth(r *client.Raw) {
	x, err := client.SCRAM(targets.SCRAMUser, targets.SCRAMPassword).Start()
	Expect(err).NotTo(HaveOccurred())
	first, err := x.Step(nil)
	Expect(err).NotTo(HaveOccurred())
	e.send(r, &packet.Auth{ReasonCode: 0x19, Props: authProps(first)})
	final := e.scramContinue(r, x)
	e.send(r, &packet.Auth{ReasonCode: 0x18, Props: authProps(final)})
	done := expect[*packet.Auth](e, r)
	Expect(done.ReasonCode).To(Equal(byte(0x00)), "reason code of the AUTH ending a successful re-authentication")
	Expect(done.Props).NotTo(BeNil(), "AUTH properties")
	Expect(done.Props.AuthMethod).To(Equal(scramMethod), "Authentication Method in the AUTH Success [MQTT-4.12.0-5]")
	Expect(x.Finish(done.Props.AuthData)).To(Succeed(), "the server signature in the AUTH Success")
}

// scramOnTap connects with SCRAM-SHA-256 on a connection that keeps what the
// broker sends, the CONNECT asking for Maximum Packet Size limit (0: none),
// re-authenticates once, and returns every packet the broker sent: two AUTH
// 0x18, the CONNACK, AUTH 0x00 and a PINGRESP.
func (e *env) scramOnTap(tag string, limit uint32) []wireFrame {
	x, err := client.SCRAM(targets.SCRAMUser, targets.SCRAMPassword).Start()
	Expect(err).NotTo(HaveOccurred())
	first, err := x.Step(nil)
	Expect(err).NotTo(HaveOccurred())
	id := e.id(tag)
	r, t := e.dialTap(id)
	props := authProps(first)
	if limit > 0 {
		props.MaximumPacketSize = u32p(limit)
	}
	e.send(r, connect5(id, true, props))
	final := e.scramContinue(r, x)
	e.send(r, &packet.Auth{ReasonCode: 0x18, Props: authProps(final)})
	ack := expect[*packet.Connack](e, r)
	Expect(ack.ReturnCode).To(Equal(byte(0x00)), "CONNACK reason code after a valid SCRAM proof")
	Expect(ack.Props).NotTo(BeNil(), "CONNACK properties")
	Expect(x.Finish(ack.Props.AuthData)).To(Succeed(), "the server signature in the CONNACK")
	e.scramReauth(r)
	e.ping(r) // everything the broker sent before PINGRESP is in t
	return checkWire(t)
}

var _ = register(specDef{
	V5: true, Area: "auth", Text: "keeps every AUTH within the client's Maximum Packet Size, and still sends it",
	Statements: []string{"MQTT-3.15.2-2", "MQTT-3.15.2-3"}, Needs: []string{"enhanced_auth"},
	Body: func(e *env) {
		// Without a limit: the largest packet the exchange makes the broker
		// send. SCRAM messages have a fixed length for one user, so a second
		// exchange sends packets of the same sizes.
		largest, auths := 0, 0
		for _, f := range e.scramOnTap("free", 0) {
			largest = max(largest, f.size())
			if f.kind() == packet.AUTH {
				auths++
			}
		}
		Expect(auths).To(Equal(3), "AUTH packets in a connect and a re-authentication")
		// A Reason String or a User Property adds at least 4 bytes (its
		// identifier, a two-byte length, one character): with room for the
		// largest packet and 3 bytes more, the broker must leave both out of
		// every AUTH, and still send each one.
		limit := largest + 3
		auths = 0
		for i, f := range e.scramOnTap("tight", uint32(limit)) {
			Expect(f.size()).To(BeNumerically("<=", limit), "%s (packet %d) of %d bytes, over the Maximum Packet Size %d", f.kind(), i+1, f.size(), limit)
			if f.kind() == packet.AUTH {
				auths++
			}
		}
		Expect(auths).To(Equal(3), "AUTH packets sent under a Maximum Packet Size")
	},
})

var _ = register(specDef{
	V5: true, Area: "auth", Text: "closes the connection when a re-authentication fails, with a DISCONNECT of 0x80 or above if any",
	Statements: []string{"MQTT-4.12.1-2"}, Needs: []string{"enhanced_auth"},
	Body: func(e *env) {
		r := e.scramConnected("rebad")
		x, err := client.SCRAM(targets.SCRAMUser, "not-"+targets.SCRAMPassword).Start()
		Expect(err).NotTo(HaveOccurred())
		first, err := x.Step(nil)
		Expect(err).NotTo(HaveOccurred())
		e.send(r, &packet.Auth{ReasonCode: 0x19, Props: authProps(first)})
		final := e.scramContinue(r, x)
		e.send(r, &packet.Auth{ReasonCode: 0x18, Props: authProps(final)})
		p, err := r.ReadPacket(wait)
		if err != nil {
			Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "the broker must close the connection")
			return
		}
		d, ok := p.(*packet.Disconnect)
		Expect(ok).To(BeTrue(), "expected DISCONNECT or the connection closed, got %s %+v", p.Type(), p)
		Expect(d.ReasonCode >= 0x80).To(BeTrue(), "DISCONNECT reason code 0x%02X after a failed re-authentication", d.ReasonCode)
		e.checkDisconnect(r, d)
	},
})
