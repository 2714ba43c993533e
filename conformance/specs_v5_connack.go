package conformance

import (
	"fmt"
	"time"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 specs: refused CONNECTs and the CONNACKs that refuse them, read
// from the raw bytes; session state while connected; the transport.

// closedAfter reads what the broker sends until it closes the connection,
// which it must within wait, and returns the frames it sent.
func (e *env) closedAfter(t *tap) []wireFrame {
	Expect(t.SetReadDeadline(time.Now().Add(wait))).To(Succeed())
	buf := make([]byte, 4096)
	for {
		if _, err := t.Read(buf); err != nil {
			Expect(isTimeout(err)).To(BeFalse(), "the broker must close the connection")
			break
		}
	}
	frames, err := splitWire(t.received())
	Expect(err).NotTo(HaveOccurred(), "what the broker sent before closing")
	return frames
}

// refusedConnect requires the answer to a refused CONNECT: the close, with
// at most one CONNACK before it, refusing — in the 5.0 form with a reason
// code of 0x80 or more, Session Present 0 and the reserved flag bits 0, or,
// where legacy is set, in the 3.1.1 form "unacceptable protocol version"
// (a broker that cannot tell which version the client speaks may answer in
// the older one). It returns the 5.0 reason code, or 0 if none came.
func refusedConnect(e *env, t *tap, legacy bool) byte {
	frames := e.closedAfter(t)
	if len(frames) == 0 {
		return 0
	}
	Expect(frames).To(HaveLen(1), "packets before the close: only a CONNACK may come")
	f := frames[0]
	Expect(f.kind()).To(Equal(packet.CONNACK), "the packet answering a refused CONNECT")
	if legacy && len(f.body) == 2 {
		Expect(f.body).To(Equal([]byte{0x00, packet.RefusedProtocolVersion}), "a 3.1.1-form CONNACK refusing the protocol version")
		return 0
	}
	Expect(checkServerFrame(f)).To(Succeed(), "5.0 CONNACK")
	Expect(f.body[0]).To(Equal(byte(0)), "Session Present (and reserved bits) of a refusing CONNACK")
	Expect(f.body[1]).To(BeNumerically(">=", 0x80), "reason code of a refusing CONNACK")
	return f.body[1]
}

var _ = register(specDef{
	V5: true, Area: "connect", Text: "refuses a CONNECT whose protocol name is not MQTT: at most a failure CONNACK, then the close",
	Statements: []string{"MQTT-3.1.2-1"},
	Body: func(e *env) {
		r, t := e.dialTap("c")
		e.sendBytes(r, packet.Frame(0x10, str("MQTX"), []byte{5, 0x02}, u16(60), []byte{0}, str(e.id("c"))))
		if code := refusedConnect(e, t, true); code != 0 {
			Expect(code).To(Equal(byte(0x84)), "CONNACK reason code for a protocol name other than MQTT")
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "refuses a CONNECT of protocol level 6: at most CONNACK 0x84 (or 3.1.1's return code 1), then the close",
	Statements: []string{"MQTT-3.1.2-2"},
	Body: func(e *env) {
		r, t := e.dialTap("c")
		e.sendBytes(r, packet.Frame(0x10, str("MQTT"), []byte{6, 0x02}, u16(60), []byte{0}, str(e.id("c"))))
		if code := refusedConnect(e, t, true); code != 0 {
			Expect(code).To(Equal(byte(0x84)), "CONNACK reason code for protocol level 6")
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "answers a refused CONNECT with Session Present 0, even for a stored session, and closes the connection",
	Statements: []string{"MQTT-3.2.2-6", "MQTT-3.2.2-7", "MQTT-4.13.2-1"}, Needs: []string{"persistent-sessions"},
	Body: func(e *env) {
		id := e.id("c")
		r, _ := e.session5(id, true, 300)
		e.send(r, &packet.Disconnect{})
		e.closed(r)
		// An Authentication Method the broker does not know is refused on
		// every broker without enhanced authentication, and stays so on
		// one with it; its CONNACK must not claim the stored session.
		cp := connect5(id, false, &packet.Properties{AuthMethod: "mqttfleet-no-such-method", HasAuthMethod: true})
		r, t := e.dialTap("c")
		e.send(r, cp)
		code := refusedConnect(e, t, false)
		Expect(code).NotTo(BeZero(), "no CONNACK refusing the unknown Authentication Method")
		// The session is still there, and ends here.
		r, ack := e.session5(id, false, 0)
		Expect(ack.SessionPresent).To(BeTrue(), "the refused CONNECT must not have touched the stored session")
		e.send(r, &packet.Disconnect{})
	},
})

var _ = register(specDef{
	V5: true, Area: "session", Text: "keys sessions by Client Identifier: another identifier does not get the session",
	Statements: []string{"MQTT-3.1.3-2"}, Needs: []string{"qos1", "persistent-sessions"},
	Body: func(e *env) {
		a, b, t := e.id("a"), e.id("b"), e.topic("key")
		r, _ := e.session5(a, true, 300)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 1})
		e.send(r, &packet.Disconnect{})
		e.closed(r)
		other, ack := e.session5(b, false, 0)
		Expect(ack.SessionPresent).To(BeFalse(), "Client Identifier %s was given the session of %s", b, a)
		e.publish5(e.client("p"), &packet.Publish{Topic: t, QoS: 1, Payload: []byte("for a")})
		r, ack = e.session5(a, false, 0)
		Expect(ack.SessionPresent).To(BeTrue(), "Client Identifier %s lost its own session", a)
		Expect(string(e.recv(r).Payload)).To(Equal("for a"))
		e.ping(other) // nothing for b before the PINGRESP
	},
})

var _ = register(specDef{
	V5: true, Area: "session", Text: "keeps the session state of a connection with Session Expiry Interval 0 while it stays open",
	Statements: []string{"MQTT-4.1.0-1"}, Needs: []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("state")
		r, _ := e.session5(e.id("s"), true, 0)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 2})
		// An incoming QoS 2 message held at PUBREC while other traffic
		// passes: its packet identifier is session state, so the PUBREL
		// must find it (PUBCOMP Success, not 0x92 Packet Identifier not
		// found).
		in := &packet.Publish{Topic: e.topic("in"), QoS: 2, PacketID: e.nextID(), Payload: []byte("held")}
		e.send(r, in)
		Expect(await[*packet.Pubrec](e, r, in.PacketID).ReasonCode).To(BeNumerically("<", 0x80), "PUBREC reason code")
		e.sub5(r, packet.Subscription{Filter: e.topic("other"), QoS: 0})
		e.ping(r)
		e.send(r, &packet.Pubrel{PacketID: in.PacketID})
		Expect(await[*packet.Pubcomp](e, r, in.PacketID).ReasonCode).To(Equal(byte(0)), "PUBCOMP reason code: the packet identifier was forgotten")
		// The subscription made at the start still delivers.
		e.publish5(e.client("p"), &packet.Publish{Topic: t, QoS: 2, Payload: []byte("later")})
		Expect(string(e.recv(r).Payload)).To(Equal("later"))
		e.ping(r)
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "serves MQTT over TCP as an ordered, lossless, two-way byte stream",
	Statements: []string{"MQTT-4.2.0-1"},
	Body: func(e *env) {
		t := e.topic("stream")
		s := e.client("s")
		e.sub5(s, packet.Subscription{Filter: t})
		p := e.client("p")
		// 200 PUBLISHes and a PINGREQ in one write: the broker must read
		// them whole and in order from the stream, and answer on it.
		var burst []byte
		const n = 200
		for i := range n {
			b, err := packet.Append(nil, &packet.Publish{Topic: t, Payload: []byte(fmt.Sprint(i))}, packet.V5)
			Expect(err).NotTo(HaveOccurred())
			burst = append(burst, b...)
		}
		e.sendBytes(p, append(burst, 0xC0, 0x00))
		expect[*packet.Pingresp](e, p)
		for i := range n {
			Expect(string(expect[*packet.Publish](e, s).Payload)).To(Equal(fmt.Sprint(i)), "message %d", i)
		}
		e.ping(s)
	},
})
