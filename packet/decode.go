package packet

import (
	"fmt"
	"io"
)

// header is a parsed fixed header.
type header struct {
	t      Type
	flags  byte
	remain int // remaining length
	size   int // fixed header bytes
}

// v5 reports whether non-CONNECT packets carry MQTT 5 fields under opt.
func (opt Options) v5() bool { return opt.Version == V5 }

// checkFlags enforces the fixed-header flag rules of each packet type
// [MQTT-2.2.2-1] (3.1.1) / [MQTT-2.1.3-1] (5.0) and the PUBLISH QoS/DUP rules.
func checkFlags(t Type, flags byte, v5 bool) error {
	reserved := "MQTT-2.2.2-1"
	if v5 {
		reserved = "MQTT-2.1.3-1"
	}
	switch t {
	case 0:
		return errf(0, "", CodeMalformed, "packet type 0 is reserved")
	case AUTH:
		if !v5 {
			return errf(0, "", CodeMalformed, "packet type 15 is reserved before MQTT 5")
		}
		if flags != 0 {
			return errf(t, "MQTT-3.15.1-1", CodeMalformed, "fixed-header flags are %04b, must be 0000", flags)
		}
	case PUBLISH:
		qos := flags >> 1 & 3
		if qos == 3 {
			return errf(t, "MQTT-3.3.1-4", CodeMalformed, "QoS 3 is not allowed")
		}
		if qos == 0 && flags&8 != 0 {
			return errf(t, "MQTT-3.3.1-2", CodeMalformed, "DUP is set on a QoS 0 message")
		}
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		if flags != 2 {
			stmt := map[Type]string{PUBREL: "MQTT-3.6.1-1", SUBSCRIBE: "MQTT-3.8.1-1", UNSUBSCRIBE: "MQTT-3.10.1-1"}[t]
			return errf(t, stmt, CodeMalformed, "fixed-header flags are %04b, must be 0010", flags)
		}
	case DISCONNECT:
		if flags != 0 {
			return errf(t, "MQTT-3.14.1-1", CodeMalformed, "fixed-header flags are %04b, must be 0000", flags)
		}
	default:
		if flags != 0 {
			return errf(t, reserved, CodeMalformed, "fixed-header flags are %04b, must be 0000", flags)
		}
	}
	return nil
}

// parseHeader reads the fixed header from the start of b. It returns
// io.ErrUnexpectedEOF when b ends inside the header.
func parseHeader(b []byte, opt Options) (header, error) {
	if len(b) == 0 {
		return header{}, io.ErrUnexpectedEOF
	}
	h := header{t: Type(b[0] >> 4), flags: b[0] & 0x0f}
	if err := checkFlags(h.t, h.flags, opt.v5()); err != nil {
		return h, err
	}
	v, n, err := parseVarint(b[1:])
	switch err {
	case nil:
	case errVarintShort:
		return h, io.ErrUnexpectedEOF
	default:
		return h, remainingLengthError(h.t, err, opt.v5())
	}
	h.remain, h.size = int(v), 1+n
	return h, checkSize(h, opt)
}

func remainingLengthError(t Type, err error, v5 bool) error {
	if err == errVarintNonMinimal {
		stmt := ""
		if v5 {
			stmt = "MQTT-1.5.5-1"
		}
		return errf(t, stmt, CodeMalformed, "remaining length not in its shortest form")
	}
	return errf(t, "", CodeMalformed, "remaining length longer than 4 bytes")
}

// checkSize refuses a packet over opt.MaxPacketSize using only its header.
func checkSize(h header, opt Options) error {
	if opt.MaxPacketSize > 0 && h.size+h.remain > opt.MaxPacketSize {
		return errf(h.t, "", CodePacketTooLarge,
			"packet of %d bytes exceeds the maximum packet size of %d", h.size+h.remain, opt.MaxPacketSize)
	}
	return nil
}

// decodeBody decodes a packet body; body is the whole remaining-length span
// and is aliased by the result.
func decodeBody(h header, body []byte, opt Options) (Packet, error) {
	d := &dec{b: body, t: h.t, v5: opt.v5()}
	var p Packet
	var err error
	switch h.t {
	case CONNECT:
		return decodeConnect(d)
	case CONNACK:
		p, err = decodeConnack(d)
	case PUBLISH:
		p, err = decodePublish(d, h.flags)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		p, err = decodeAck(d)
	case SUBSCRIBE:
		p, err = decodeSubscribe(d)
	case SUBACK:
		p, err = decodeSuback(d)
	case UNSUBSCRIBE:
		p, err = decodeUnsubscribe(d)
	case UNSUBACK:
		p, err = decodeUnsuback(d)
	case PINGREQ:
		p, err = &Pingreq{}, d.done("")
	case PINGRESP:
		p, err = &Pingresp{}, d.done("")
	case DISCONNECT:
		p, err = decodeDisconnect(d)
	case AUTH:
		p, err = decodeAuth(d)
	default:
		return nil, fmt.Errorf("decode: unexpected packet type %d", h.t)
	}
	if err != nil {
		// Keep the whole SUBSCRIBE/UNSUBSCRIBE next to a filter error
		// (decode_sub.go); a nil *Subscribe must not become a non-nil Packet.
		switch q := p.(type) {
		case *Subscribe:
			if q != nil {
				return q, err
			}
		case *Unsubscribe:
			if q != nil {
				return q, err
			}
		}
		return nil, err
	}
	return p, nil
}

// packetID reads a Packet Identifier that must not be 0.
func (d *dec) packetID() (uint16, error) {
	id, err := d.u16("packet identifier")
	if err != nil {
		return 0, err
	}
	if id == 0 {
		stmt := d.id("MQTT-2.3.1-1", "MQTT-2.2.1-3")
		switch d.t {
		case PUBACK, PUBREC, PUBREL, PUBCOMP:
			stmt = d.id("MQTT-2.3.1-1", "MQTT-2.2.1-5")
		case SUBACK, UNSUBACK:
			stmt = d.id("MQTT-2.3.1-1", "MQTT-2.2.1-6")
		}
		return 0, d.malformed(stmt, "packet identifier is 0")
	}
	return id, nil
}

func decodeConnack(d *dec) (*Connack, error) {
	flags, err := d.u8("acknowledge flags")
	if err != nil {
		return nil, err
	}
	if flags&^1 != 0 {
		return nil, d.malformed(d.id("", "MQTT-3.2.2-1"), "acknowledge flags %08b: bits 7-1 are reserved", flags)
	}
	c := &Connack{SessionPresent: flags&1 == 1}
	if c.ReturnCode, err = d.u8("return code"); err != nil {
		return nil, err
	}
	if d.v5 {
		if !connackCodes[c.ReturnCode] {
			return nil, d.malformed("MQTT-3.2.2-8", "reason code 0x%02X is not a CONNACK reason code", c.ReturnCode)
		}
		if c.Props, err = d.props(allowConnack, "CONNACK"); err != nil {
			return nil, err
		}
	} else if c.ReturnCode > RefusedNotAuthorized {
		return nil, d.malformed("", "return code %d is reserved", c.ReturnCode)
	}
	if c.SessionPresent && c.ReturnCode != 0 {
		return nil, d.protocol(d.id("MQTT-3.2.2-4", "MQTT-3.2.2-6"), "session present with non-zero return code 0x%02X", c.ReturnCode)
	}
	return c, d.done("")
}

func decodePublish(d *dec, flags byte) (*Publish, error) {
	p := &Publish{Dup: flags&8 != 0, QoS: flags >> 1 & 3, Retain: flags&1 != 0}
	var err error
	if p.Topic, err = d.str("topic name"); err != nil {
		return nil, err
	}
	if p.QoS > 0 {
		if p.PacketID, err = d.packetID(); err != nil {
			return nil, err
		}
	}
	if d.v5 {
		if p.Props, err = d.props(allowPublish, "PUBLISH"); err != nil {
			return nil, err
		}
	}
	// An empty topic is allowed in MQTT 5 only when a Topic Alias stands for it.
	if !(d.v5 && p.Topic == "" && p.Props != nil && p.Props.TopicAlias != nil) {
		// d.str has checked the UTF-8 rules; only the topic rules remain.
		if err := topicNameRules(p.Topic); err != nil {
			return nil, withPacket(err, PUBLISH)
		}
	}
	p.Payload = d.b[d.i:]
	return p, nil
}

func ver(v5 bool) byte {
	if v5 {
		return V5
	}
	return V311
}

// withPacket stamps the packet type on a validator's *Error.
func withPacket(err error, t Type) error {
	if e, ok := err.(*Error); ok {
		e.Packet = t
	}
	return err
}

// decodeAck decodes PUBACK, PUBREC, PUBREL and PUBCOMP, whose layouts are
// the same. MQTT 5 allows dropping the reason code (remaining length 2,
// meaning success) and the property length (remaining length 3).
func decodeAck(d *dec) (Packet, error) {
	id, err := d.packetID()
	if err != nil {
		return nil, err
	}
	var code byte
	var props *Properties
	if d.v5 && d.left() > 0 {
		code, _ = d.u8("reason code")
		ok, stmt := pubAckCodes[code], "MQTT-3.4.2-1"
		switch d.t {
		case PUBREC:
			stmt = "MQTT-3.5.2-1"
		case PUBREL:
			ok, stmt = code == 0 || code == 0x92, "MQTT-3.6.2-1"
		case PUBCOMP:
			ok, stmt = code == 0 || code == 0x92, "MQTT-3.7.2-1"
		}
		if !ok {
			return nil, d.malformed(stmt, "reason code 0x%02X is not a %s reason code", code, d.t)
		}
		if d.left() > 0 {
			if props, err = d.props(allowAck, d.t.String()); err != nil {
				return nil, err
			}
		}
	}
	if err := d.done(""); err != nil {
		return nil, err
	}
	switch d.t {
	case PUBACK:
		return &Puback{PacketID: id, ReasonCode: code, Props: props}, nil
	case PUBREC:
		return &Pubrec{PacketID: id, ReasonCode: code, Props: props}, nil
	case PUBREL:
		return &Pubrel{PacketID: id, ReasonCode: code, Props: props}, nil
	}
	return &Pubcomp{PacketID: id, ReasonCode: code, Props: props}, nil
}

func decodeDisconnect(d *dec) (*Disconnect, error) {
	p := &Disconnect{}
	if d.v5 && d.left() > 0 {
		p.ReasonCode, _ = d.u8("reason code")
		if !disconnectCodes[p.ReasonCode] {
			return nil, d.malformed("MQTT-3.14.2-1", "reason code 0x%02X is not a DISCONNECT reason code", p.ReasonCode)
		}
		if d.left() > 0 {
			var err error
			if p.Props, err = d.props(allowDisconnect, "DISCONNECT"); err != nil {
				return nil, err
			}
		}
	}
	return p, d.done("")
}

func decodeAuth(d *dec) (*Auth, error) {
	p := &Auth{}
	if d.left() > 0 {
		p.ReasonCode, _ = d.u8("reason code")
		if p.ReasonCode != 0 && p.ReasonCode != 0x18 && p.ReasonCode != 0x19 {
			return nil, d.malformed("MQTT-3.15.2-1", "reason code 0x%02X is not an AUTH reason code", p.ReasonCode)
		}
		// Unlike DISCONNECT, AUTH may drop the reason code and property
		// length only together (section 3.15.2).
		var err error
		if p.Props, err = d.props(allowAuth, "AUTH"); err != nil {
			return nil, err
		}
	}
	return p, d.done("")
}

func set(codes ...byte) [256]bool {
	var s [256]bool
	for _, c := range codes {
		s[c] = true
	}
	return s
}

// Reason codes each MQTT 5 packet may carry (sections 3.2.2.2 to 3.15.2.1).
var (
	connackCodes = set(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
		0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)
	pubAckCodes     = set(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99) // PUBACK, PUBREC
	subackCodes     = set(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
	unsubackCodes   = set(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)
	disconnectCodes = set(0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90,
		0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2)
)
