package conformance

import (
	"errors"
	"io"
	"strings"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/packet"
)

var _ = register(specDef{
	Area: "connect", Text: "answers a valid CONNECT with CONNACK 0 and session present 0, as its first packet",
	Statements: []string{"MQTT-3.1.4-4", "MQTT-3.2.0-1", "MQTT-3.2.2-1", "MQTT-7.1.1-1"},
	Body: func(e *env) {
		_, ack := e.connectOK(connectPacket(e.id("c")))
		Expect(ack.SessionPresent).To(BeFalse(), "session present with CleanSession=1")
	},
})

var _ = register(specDef{
	Area: "connect", Text: "accepts ClientIds of 1 to 23 ASCII letters and digits",
	Statements: []string{"MQTT-3.1.3-5"},
	Body: func(e *env) {
		base := e.id("")
		ids := []string{
			base[len(base)-1:], // one character
			strings.Repeat("Z", 23-len(base)) + base,
			"0123456789" + base,
			"abcXYZ" + base,
		}
		for _, id := range ids {
			Expect(len(id)).To(BeNumerically("<=", 23))
			r, _ := e.connectOK(connectPacket(id))
			e.send(r, &packet.Disconnect{})
		}
	},
})

var _ = register(specDef{
	Area: "connect", Text: "closes the connection on a second CONNECT",
	Statements: []string{"MQTT-3.1.0-2", "MQTT-4.8.0-1"},
	Body: func(e *env) {
		id := e.id("c")
		r, _ := e.connectOK(connectPacket(id))
		e.send(r, connectPacket(id))
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "connect", Text: "closes a connection whose first packet is not CONNECT",
	Statements: []string{"MQTT-4.8.0-1"},
	Body: func(e *env) {
		r := e.dial("noconnect")
		e.send(r, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: e.topic("x")}}})
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "connect", Text: "refuses an unsupported protocol level with CONNACK 0x01, session present 0, then closes",
	Statements: []string{"MQTT-3.1.2-2", "MQTT-3.2.2-4", "MQTT-3.2.2-5"},
	Body: func(e *env) {
		cp := connectPacket(e.id("lvl"))
		cp.ProtocolLevel = 9
		r, ack := e.connect(cp)
		Expect(ack.ReturnCode).To(Equal(packet.RefusedProtocolVersion))
		Expect(ack.SessionPresent).To(BeFalse(), "session present on a refused CONNECT")
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "connect", Text: "does not accept a CONNECT with a wrong protocol name under 3.1.1",
	Statements: []string{"MQTT-3.1.2-1"},
	Body: func(e *env) {
		r := e.dial("name")
		b := packet.Frame(0x10, str("MQTX"), []byte{4, 0x02}, u16(60), str(e.id("name")))
		e.sendBytes(r, b)
		p, err := r.ReadPacket(wait)
		if err != nil {
			Expect(isClose(err)).To(BeTrue(), "expected the broker to close, got %v", err)
			return
		}
		ack, ok := p.(*packet.Connack)
		Expect(ok).To(BeTrue(), "expected close or a refusing CONNACK, got %s", p.Type())
		Expect(ack.ReturnCode).NotTo(Equal(packet.Accepted), "CONNECT with protocol name MQTX accepted")
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "connect", Text: "closes without CONNACK on a CONNECT whose reserved flag is set",
	Statements: []string{"MQTT-3.1.2-3", "MQTT-3.1.4-1", "MQTT-3.2.2-6"},
	Body: func(e *env) {
		r := e.dial("resv")
		e.sendBytes(r, rawConnect(0x03, 60, e.id("resv")))
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "connect", Text: "closes without CONNACK on a CONNECT cut short by its remaining length",
	Statements: []string{"MQTT-3.1.4-1", "MQTT-3.2.2-6"},
	Body: func(e *env) {
		r := e.dial("short")
		b := rawConnect(0x02, 60, e.id("short"))
		b[1] -= 4 // the ClientId now runs past the end of the packet
		e.sendBytes(r, b)
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "connect", Text: "refuses an empty ClientId with CleanSession=0 with CONNACK 0x02, then closes",
	Statements: []string{"MQTT-3.1.3-8", "MQTT-3.1.3-9", "MQTT-3.2.2-4", "MQTT-3.2.2-5"},
	Body: func(e *env) {
		cp := connectPacket("")
		cp.CleanSession = false
		r, ack := e.connect(cp)
		Expect(ack.ReturnCode).To(Equal(packet.RefusedIdentifierRejected))
		Expect(ack.SessionPresent).To(BeFalse())
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "connect", Text: "assigns an identifier to an empty ClientId with CleanSession=1 and proceeds",
	Statements: []string{"MQTT-3.1.3-6"}, Needs: []string{"empty-client-id"},
	Body: func(e *env) {
		r, _ := e.connectOK(connectPacket(""))
		t := e.topic("self")
		e.subOK(r, 1, t)
		e.pub(r, t, "hello", 1, false)
		got := e.recvOn(r, t)
		Expect(string(got.Payload)).To(Equal("hello"))
	},
})

var _ = register(specDef{
	Area: "connect", Text: "ignores data sent after a CONNECT it refused",
	Statements: []string{"MQTT-3.1.4-5"},
	Body: func(e *env) {
		watch := e.client("watch")
		t := e.topic("after")
		e.subOK(watch, 0, t)
		r := e.dial("refused")
		b := packet.Frame(0x10, str("MQTT"), []byte{9, 0x02}, u16(60), str(e.id("refused")))
		b = append(b, rawPublish(0x30, t, 0, "must not be delivered")...)
		e.sendBytes(r, b)
		p, err := r.ReadPacket(wait)
		if err == nil {
			ack, ok := p.(*packet.Connack)
			Expect(ok).To(BeTrue(), "expected CONNACK or close, got %s", p.Type())
			Expect(ack.ReturnCode).NotTo(Equal(packet.Accepted))
			e.closed(r)
		} else {
			Expect(isClose(err)).To(BeTrue(), "read after refused CONNECT: %v", err)
		}
		e.nothing(watch)
	},
})

var _ = register(specDef{
	Area: "connect", Text: "sends every packet with the fixed-header flags its type requires",
	Statements: []string{"MQTT-2.2.2-1"},
	Body: func(e *env) {
		// Strict decoding of every packet below is the check: a flag bit
		// off its table value fails the read.
		// The highest QoS the broker grants: QoS 2 adds PUBREL's 0010 to
		// the flags checked; a QoS 1 broker (NATS) is checked on the rest.
		q := e.target.Capabilities().MaxQoS
		r := e.client("flags")
		t := e.topic("flags")
		e.subOK(r, q, t)
		e.pub(r, t, "flags", q, false)
		p := expect[*packet.Publish](e, r)
		Expect(p.QoS).To(Equal(q))
		e.ack(r, p) // at QoS 2 the PUBREL from the broker must carry flags 0010
		e.send(r, &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{t}})
		expect[*packet.Unsuback](e, r)
		e.ping(r)
	},
})

// isClose reports whether a read error means the peer closed the connection.
func isClose(err error) bool {
	s := err.Error()
	return errors.Is(err, io.EOF) || strings.Contains(s, "reset") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "closed")
}

// badConnects are CONNECTs a server must refuse by closing without CONNACK
// [MQTT-3.1.4-1]; flags is the connect flags byte, fields the payload after
// the ClientId.
var badConnects = []struct {
	text       string
	statements []string
	flags      byte
	fields     []string
}{
	{"Will QoS 1 without the Will Flag", []string{"MQTT-3.1.2-13", "MQTT-3.1.2-11"}, 0x0A, nil},
	{"Will Retain without the Will Flag", []string{"MQTT-3.1.2-15", "MQTT-3.1.2-11"}, 0x22, nil},
	{"Will QoS 3", []string{"MQTT-3.1.2-14"}, 0x1E, []string{"w", "m"}},
	{"the Password Flag without the User Name Flag", []string{"MQTT-3.1.2-22"}, 0x42, []string{"pw"}},
	{"a will topic holding a wildcard", []string{"MQTT-3.3.2-2"}, 0x06, []string{"w/+", "m"}},
}

func init() {
	for _, c := range badConnects {
		register(specDef{
			Area: "connect", Text: "closes without CONNACK on a CONNECT with " + c.text,
			Statements: append([]string{"MQTT-3.1.4-1"}, c.statements...),
			Body: func(e *env) {
				r := e.dial("badc")
				var fields [][]byte
				for _, f := range c.fields {
					fields = append(fields, str(f))
				}
				e.sendBytes(r, rawConnect(c.flags, 60, e.id("badc"), fields...))
				e.closed(r)
			},
		})
	}
}

var _ = register(specDef{
	Area: "connect", Text: "closes without CONNACK on U+0000 in the ClientId",
	Statements: []string{"MQTT-1.5.3-2", "MQTT-3.1.4-1"},
	Body: func(e *env) {
		r := e.dial("nul")
		e.sendBytes(r, rawConnect(0x02, 60, e.id("nul")+"\x00"))
		e.closed(r)
	},
})
