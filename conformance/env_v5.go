package conformance

import (
	"errors"
	"os"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Helpers of the 5.0 specs (specDef.V5): CONNECTs with properties,
// subscription options, acknowledgements with reason codes and the
// server's DISCONNECT.

func u32p(v uint32) *uint32 { return &v }
func u16p(v uint16) *uint16 { return &v }

// connect5 is a 5.0 CONNECT with Clean Start clean and the given properties.
func connect5(id string, clean bool, props *packet.Properties) *packet.Connect {
	return &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, CleanSession: clean, KeepAlive: 60, ClientID: id, Props: props}
}

// session5 connects id with Clean Start clean and Session Expiry Interval
// expiry, requiring reason code Success; it returns the CONNACK.
func (e *env) session5(id string, clean bool, expiry uint32) (*client.Raw, *packet.Connack) {
	return e.connectOK(connect5(id, clean, &packet.Properties{SessionExpiry: u32p(expiry)}))
}

// subscribe5 sends one SUBSCRIBE with subs and returns its SUBACK, whose
// packet identifier must echo the SUBSCRIBE's [MQTT-3.8.4-2].
func (e *env) subscribe5(r *client.Raw, subs ...packet.Subscription) *packet.Suback {
	s := &packet.Subscribe{PacketID: e.nextID(), Subscriptions: subs}
	e.send(r, s)
	ack := await[*packet.Suback](e, r, s.PacketID)
	return ack
}

// sub5 subscribes with options and requires the requested QoS granted.
func (e *env) sub5(r *client.Raw, s packet.Subscription) {
	ack := e.subscribe5(r, s)
	Expect(ack.ReturnCodes).To(Equal([]byte{s.QoS}), "SUBACK reason code for %s", s.Filter)
}

// publish5 sends p (its packet identifier set here for QoS > 0), completes
// the flow as the sender and returns the reason code of the PUBACK or PUBREC
// (0 for QoS 0).
func (e *env) publish5(r *client.Raw, p *packet.Publish) byte {
	if p.QoS > 0 {
		p.PacketID = e.nextID()
	}
	e.send(r, p)
	switch p.QoS {
	case 1:
		return await[*packet.Puback](e, r, p.PacketID).ReasonCode
	case 2:
		rec := await[*packet.Pubrec](e, r, p.PacketID)
		if rec.ReasonCode >= 0x80 {
			return rec.ReasonCode
		}
		e.send(r, &packet.Pubrel{PacketID: p.PacketID})
		comp := await[*packet.Pubcomp](e, r, p.PacketID)
		Expect(comp.ReasonCode).To(Equal(byte(0)), "PUBCOMP reason code after a PUBREL of a known packet identifier [MQTT-3.7.2-1]")
		return rec.ReasonCode
	}
	e.handled(r)
	return 0
}

// disconnectCodes are the reason codes of DISCONNECT (5.0 section
// 3.14.2.1) a server may send [MQTT-3.14.2-1].
var disconnectCodes = set(0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
	0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2)

func set(codes ...byte) map[byte]bool {
	m := map[byte]bool{}
	for _, c := range codes {
		m[c] = true
	}
	return m
}

// serverDisconnect requires the next packet to be the server's DISCONNECT
// with reason code want, carrying no Session Expiry Interval
// [MQTT-3.14.2-2], and the connection then closed with nothing after it
// [MQTT-3.14.4-1] [MQTT-3.14.4-2].
func (e *env) serverDisconnect(r *client.Raw, want byte) {
	d := expect[*packet.Disconnect](e, r)
	e.checkDisconnect(r, d)
	Expect(d.ReasonCode).To(Equal(want), "DISCONNECT reason code")
}

func (e *env) checkDisconnect(r *client.Raw, d *packet.Disconnect) {
	Expect(disconnectCodes[d.ReasonCode]).To(BeTrue(), "DISCONNECT reason code 0x%02X is not a defined one [MQTT-3.14.2-1]", d.ReasonCode)
	if d.Props != nil {
		Expect(d.Props.SessionExpiry).To(BeNil(), "a server DISCONNECT carries no Session Expiry Interval [MQTT-3.14.2-2]")
	}
	e.closed(r)
}

// closedOnError requires the broker to close the connection after a
// Malformed Packet or Protocol Error [MQTT-4.13.1-1]. It may send a
// DISCONNECT first (5.0 section 4.13.1); if it does, the reason code must
// be one of codes (0x80 or above) and nothing may follow it.
func (e *env) closedOnError(r *client.Raw, codes ...byte) {
	Expect(e.pending[r]).To(BeEmpty(), "expected the connection closed, got packets")
	p, err := r.ReadPacket(wait)
	if err != nil {
		Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "the broker must close the connection")
		var perr *packet.Error
		Expect(errors.As(err, &perr)).To(BeFalse(), "the broker sent an undecodable packet: %v", err)
		return
	}
	d, ok := p.(*packet.Disconnect)
	Expect(ok).To(BeTrue(), "expected DISCONNECT or the connection closed, got %s %+v", p.Type(), p)
	Expect(codes).To(ContainElement(d.ReasonCode), "DISCONNECT reason code 0x%02X", d.ReasonCode)
	e.checkDisconnect(r, d)
}

// takenOver requires r closed because another connection took its session
// over: a DISCONNECT 0x8E may come first.
func (e *env) takenOver(r *client.Raw) {
	p, err := r.ReadPacket(wait)
	if err != nil {
		Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "the taken-over connection must be closed")
		return
	}
	d, ok := p.(*packet.Disconnect)
	Expect(ok).To(BeTrue(), "expected DISCONNECT or the connection closed, got %s %+v", p.Type(), p)
	Expect(d.ReasonCode).To(Equal(byte(0x8E)), "DISCONNECT reason code on takeover")
	e.checkDisconnect(r, d)
}

// rawConnect5 is a well-formed 5.0 CONNECT without properties and with the
// given connect flags.
func rawConnect5(flags byte, clientID string) []byte {
	return packet.Frame(0x10, str("MQTT"), []byte{5, flags}, u16(60), []byte{0}, str(clientID))
}

// refusedFilter requires the answer to a SUBSCRIBE of one invalid filter: a
// SUBACK with a failure reason code (0x8F Topic Filter invalid, say), after
// which the connection stays usable, or the connection closed as after a
// Malformed Packet, with a failure DISCONNECT first if any.
func refusedFilter(e *env, r *client.Raw, filter string) {
	p, err := r.ReadPacket(wait)
	if err != nil {
		Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeFalse(), "no answer to SUBSCRIBE %q", filter)
		return
	}
	switch v := p.(type) {
	case *packet.Suback:
		Expect(v.ReturnCodes).To(HaveLen(1))
		Expect(v.ReturnCodes[0]).To(BeNumerically(">=", 0x80), "SUBACK reason code for %q", filter)
		e.ping(r)
	case *packet.Disconnect:
		Expect(v.ReasonCode).To(BeNumerically(">=", 0x80), "DISCONNECT reason code for %q", filter)
		e.checkDisconnect(r, v)
	default:
		Expect(p).To(BeNil(), "expected SUBACK, DISCONNECT or a close after SUBSCRIBE %q", filter)
	}
}
