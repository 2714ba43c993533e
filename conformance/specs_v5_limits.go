package conformance

import (
	"errors"
	"os"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/targets"
)

// MQTT 5.0 specs: a small Maximum Packet Size in CONNECT. A server may add a
// Reason String and User Properties to its acknowledgements, above all to
// failing ones, but must leave them out where the packet would then exceed
// the client's maximum; the packet itself must still come.

// smallPacketSize is the Maximum Packet Size these specs ask for: room for
// every packet they provoke with nothing optional in it (the largest, the
// CONNACK with the broker's capabilities, is about 20 bytes; a PUBLISH on
// the spec's short topics about 25), but not for a Reason String of any
// length besides.
const smallPacketSize = 40

// fitsSmall requires every packet t received to be within smallPacketSize.
func fitsSmall(t *tap) []wireFrame {
	frames := checkWire(t)
	for i, f := range frames {
		Expect(f.size()).To(BeNumerically("<=", smallPacketSize), "%s (packet %d) of %d bytes, over the Maximum Packet Size %d", f.kind(), i+1, f.size(), smallPacketSize)
	}
	return frames
}

var _ = register(specDef{
	V5: true, Area: "limits", Text: "keeps every acknowledgement, failing ones included, within the client's Maximum Packet Size, and still sends it",
	Statements: []string{"MQTT-3.2.2-19", "MQTT-3.2.2-20", "MQTT-3.4.2-2", "MQTT-3.4.2-3", "MQTT-3.5.2-2", "MQTT-3.5.2-3",
		"MQTT-3.6.2-2", "MQTT-3.6.2-3", "MQTT-3.7.2-2", "MQTT-3.7.2-3", "MQTT-3.9.2-1", "MQTT-3.9.2-2", "MQTT-3.11.2-1", "MQTT-3.11.2-2"},
	Needs: []string{"qos2", "acl"},
	Body: func(e *env) {
		t, nobody, denied := e.topic("m"), e.topic("n"), "acl/deny/"+e.prefix()
		// The user the targets' ACL confines to mqf/: its requests
		// elsewhere are refused, with failure reason codes.
		cp := connect5(e.id("s"), true, &packet.Properties{MaximumPacketSize: u32p(smallPacketSize)})
		cp.UsernameFlag, cp.Username = true, targets.ACLUser
		r, _, rt := e.connectTap(cp)
		e.sub5(r, packet.Subscription{Filter: t, QoS: 2})
		// Refused (0x87) where the ACL is checked at SUBSCRIBE; a broker
		// checking it at delivery instead (Mosquitto) grants it.
		Expect(e.subscribe5(r, packet.Subscription{Filter: denied, QoS: 1}).ReturnCodes).To(HaveLen(1))
		// PUBACK and PUBREC: success or no subscribers, and not authorised.
		Expect(e.publish5(r, &packet.Publish{Topic: nobody, QoS: 1, Payload: []byte("1")})).To(BeNumerically("<", 0x80))
		Expect(e.publish5(r, &packet.Publish{Topic: denied, QoS: 1, Payload: []byte("1")})).To(BeNumerically(">=", 0x80))
		Expect(e.publish5(r, &packet.Publish{Topic: nobody, QoS: 2, Payload: []byte("2")})).To(BeNumerically("<", 0x80))
		Expect(e.publish5(r, &packet.Publish{Topic: denied, QoS: 2, Payload: []byte("2")})).To(BeNumerically(">=", 0x80))
		// PUBCOMP for a packet identifier the broker does not hold.
		e.send(r, &packet.Pubrel{PacketID: 4242})
		await[*packet.Pubcomp](e, r, 4242)
		// PUBREL: the broker delivering at QoS 2.
		e.publish5(e.client("p"), &packet.Publish{Topic: t, QoS: 2, Payload: []byte("d")})
		Expect(string(e.recv(r).Payload)).To(Equal("d"))
		// UNSUBACK: success and no subscription existed.
		u := &packet.Unsubscribe{PacketID: e.nextID(), Filters: []string{t, nobody}}
		e.send(r, u)
		Expect(await[*packet.Unsuback](e, r, u.PacketID).ReasonCodes).To(HaveLen(2))
		e.ping(r)
		fitsSmall(rt)
	},
})

var _ = register(specDef{
	V5: true, Area: "limits", Text: "keeps its DISCONNECT within the client's Maximum Packet Size",
	Statements: []string{"MQTT-3.14.2-3", "MQTT-3.14.2-4"},
	Body: func(e *env) {
		small := func(id string) *packet.Connect {
			return connect5(id, true, &packet.Properties{MaximumPacketSize: u32p(smallPacketSize)})
		}
		// Two occasions for a DISCONNECT (which a server may leave out):
		// a Malformed Packet, and a takeover.
		seen := 0
		check := func(r *client.Raw, t *tap) {
			p, err := r.ReadPacket(wait)
			if err != nil {
				Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "the broker must close the connection")
			} else {
				d, ok := p.(*packet.Disconnect)
				Expect(ok).To(BeTrue(), "expected DISCONNECT or the close, got %s", p.Type())
				e.checkDisconnect(r, d)
				seen++
			}
			fitsSmall(t)
		}
		r, _, t := e.connectTap(small(e.id("bad")))
		e.sendBytes(r, packet.Frame(0x36, str(e.topic("q3")), u16(1), []byte{0}, []byte("x"))) // QoS 3
		check(r, t)
		id := e.id("old")
		r, _, t = e.connectTap(small(id))
		e.connectOK(connect5(id, true, nil))
		check(r, t)
		if seen == 0 {
			Skip("the broker closed both connections without a DISCONNECT to check")
		}
	},
})
