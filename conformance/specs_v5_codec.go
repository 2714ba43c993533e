package conformance

import (
	"bytes"
	"fmt"
	"strings"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 specs: how the broker encodes what it sends (read from the raw
// bytes, wire_v5.go) and how it treats topic names as data.

var _ = register(specDef{
	V5: true, Area: "codec", Text: "encodes every packet it sends with shortest Variable Byte Integers, a Property Length wherever the packet has properties, and well-formed User Properties",
	Statements: []string{"MQTT-1.5.5-1", "MQTT-2.2.2-1", "MQTT-1.5.7-1", "MQTT-3.2.2-1", "MQTT-3.3.2-1"},
	Needs:      []string{"qos2"},
	Body: func(e *env) {
		t := e.topic("wire")
		sid, pid := e.id("s"), e.id("p")
		s, _, sw := e.connectTap(connect5(sid, true, nil))
		e.sub5(s, packet.Subscription{Filter: t, QoS: 2})
		p, _, pw := e.connectTap(connect5(pid, true, nil))
		// Payloads putting the Remaining Length of the QoS 1 PUBLISH the
		// subscriber gets on either side of the one-, two- and three-byte
		// boundaries of a Variable Byte Integer.
		overhead := 2 + len(t) + 2 + 1 // topic, packet identifier, Property Length 0
		sizes := []int{0}
		for _, rl := range []int{127, 128, 16383, 16384} {
			sizes = append(sizes, rl-overhead)
		}
		for i, n := range sizes {
			for qos := byte(0); qos <= 2; qos++ {
				payload := bytes.Repeat([]byte{byte('a' + i)}, n)
				e.publish5(p, &packet.Publish{Topic: t, QoS: qos, Payload: payload})
				m := e.recv(s)
				Expect(m.Topic).To(Equal(t), "Topic Name")
				Expect(m.Payload).To(Equal(payload), "payload of %d bytes at QoS %d", n, qos)
			}
		}
		// User Properties of non-ASCII text, together longer than 127
		// bytes (a two-byte Property Length), forwarded pair by pair.
		user := []packet.UserProperty{{Key: "ключ", Value: strings.Repeat("ü", 80)}, {Key: "名前", Value: "\uFEFF値"}, {Key: "", Value: "x"}}
		e.publish5(p, &packet.Publish{Topic: t, QoS: 1, Payload: []byte("props"), Props: &packet.Properties{User: user}})
		m := e.recv(s)
		Expect(m.Props).NotTo(BeNil(), "forwarded properties")
		Expect(m.Props.User).To(Equal(user), "User Properties, in order and unchanged")
		// Acknowledgements with a reason code other than Success, which a
		// broker may send with a Reason String.
		e.send(p, &packet.Pubrel{PacketID: 4242})
		Expect([]byte{0x00, 0x92}).To(ContainElement(await[*packet.Pubcomp](e, p, 4242).ReasonCode))
		u := &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{t, e.topic("none")}}
		e.send(s, u)
		await[*packet.Unsuback](e, s, u.PacketID)
		e.ping(s)
		e.ping(p)
		// A DISCONNECT, where the broker sends one on takeover.
		e.connectOK(connect5(sid, true, nil))
		e.takenOver(s)

		seen := map[packet.Type]bool{}
		for _, f := range append(checkWire(sw), checkWire(pw)...) {
			seen[f.kind()] = true
		}
		for _, want := range []packet.Type{packet.CONNACK, packet.SUBACK, packet.PUBLISH, packet.PUBACK, packet.PUBREC,
			packet.PUBREL, packet.PUBCOMP, packet.UNSUBACK, packet.PINGRESP} {
			Expect(seen[want]).To(BeTrue(), "no %s among the packets checked", want)
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "codec", Text: "keeps a U+FEFF in a topic name as it is: neither stripped nor matched by the topic without it",
	Statements: []string{"MQTT-1.5.4-3"}, Needs: []string{"qos1", "wildcards"},
	Body: func(e *env) {
		bom, plain := e.topic("\uFEFFbom"), e.topic("bom")
		sb, sp, all := e.client("sb"), e.client("sp"), e.client("all")
		e.sub5(sb, packet.Subscription{Filter: bom, QoS: 1})
		e.sub5(sp, packet.Subscription{Filter: plain, QoS: 1})
		e.sub5(all, packet.Subscription{Filter: e.prefix() + "/+", QoS: 1})
		p := e.client("p")
		e.publish5(p, &packet.Publish{Topic: bom, QoS: 1, Payload: []byte("with")})
		e.publish5(p, &packet.Publish{Topic: plain, QoS: 1, Payload: []byte("without")})
		m := e.recv(sb)
		Expect([]byte(m.Topic)).To(Equal([]byte(bom)), "topic bytes delivered, EF BB BF included")
		Expect(string(m.Payload)).To(Equal("with"))
		Expect(string(e.recv(sp).Payload)).To(Equal("without"))
		// Two topics, so no order between them is promised.
		Expect([]string{e.recv(all).Topic, e.recv(all).Topic}).To(ConsistOf(bom, plain), "topics delivered to the wildcard subscription")
		for _, r := range []*client.Raw{sb, sp, all} {
			e.ping(r) // one message each
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "topics", Text: "matches topics byte for byte: no Unicode normalization, case folding or character substitution",
	Statements: []string{"MQTT-4.7.3-4"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		// Each pair is one text in two encodings or spellings a
		// normalizing broker would take as the same.
		pairs := [][2]string{
			{"caf\u00e9", "cafe\u0301"}, // NFC and NFD
			{"Case", "case"},
			{"A", "\uFF21"},      // ASCII and fullwidth
			{"x", "x "},          // trailing space
			{"\u212B", "\u00C5"}, // angstrom sign and A with ring
		}
		p := e.client("p")
		for i, pair := range pairs {
			want, other := e.topic(fmt.Sprintf("%d/%s", i, pair[0])), e.topic(fmt.Sprintf("%d/%s", i, pair[1]))
			s := e.client(fmt.Sprintf("s%d", i))
			e.sub5(s, packet.Subscription{Filter: want, QoS: 1})
			e.publish5(p, &packet.Publish{Topic: other, QoS: 1, Payload: []byte("other")})
			e.publish5(p, &packet.Publish{Topic: want, QoS: 1, Payload: []byte("same")})
			m := e.recv(s)
			Expect(string(m.Payload)).To(Equal("same"), "%q delivered to a subscription to %q", other, want)
			Expect([]byte(m.Topic)).To(Equal([]byte(want)))
			e.ping(s)
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "topics", Text: "refuses an empty topic name and an empty topic filter",
	Statements: []string{"MQTT-4.7.3-1"},
	Body: func(e *env) {
		// A PUBLISH with an empty topic and no Topic Alias is a Protocol
		// Error (5.0 section 3.3.2.1); 0x90 is Topic Name invalid.
		r := e.client("pub")
		e.sendBytes(r, packet.Frame(0x30, str(""), []byte{0}, []byte("x")))
		e.closedOnError(r, 0x81, 0x82, 0x90)
		// An empty filter: a SUBACK failure code, or the close.
		r = e.client("sub")
		e.sendBytes(r, packet.Frame(0x82, u16(1), []byte{0}, str(""), []byte{0}))
		refusedFilter(e, r, "")
	},
})

var _ = register(specDef{
	V5: true, Area: "topics", Text: "accepts and delivers unchanged a topic of 65,535 bytes, the longest an encoding can carry",
	Statements: []string{"MQTT-4.7.3-3"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		prefix := e.topic("")
		long := prefix + strings.Repeat("L", 65535-len(prefix))
		s := e.client("s")
		e.sub5(s, packet.Subscription{Filter: long, QoS: 1})
		p := e.client("p")
		Expect(e.publish5(p, &packet.Publish{Topic: long, QoS: 1, Payload: []byte("x")})).To(Equal(byte(0)), "PUBACK reason code")
		m := e.recv(s)
		Expect(len(m.Topic)).To(Equal(65535), "topic length delivered")
		Expect(m.Topic == long).To(BeTrue(), "the topic delivered differs from the one published")
	},
})
