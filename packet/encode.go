package packet

import (
	"errors"
	"fmt"
)

// appendPacket encodes p for the protocol level version (V5 adds
// properties and reason codes to packets other than CONNECT; CONNECT follows
// its own ProtocolLevel when set). It checks only what the wire format cannot
// carry (overlong strings, remaining length); deliberately odd values such as
// QoS 3 are encoded as given, so a test client can send them.
func appendPacket(dst []byte, p Packet, version byte) ([]byte, error) {
	v5 := version == V5
	switch p := p.(type) {
	case *Publish:
		return appendPublish(dst, p, v5)
	case *Connect:
		return appendConnect(dst, p, version)
	case *Connack:
		return appendConnack(dst, p, v5)
	case *Puback:
		return appendAck(dst, PUBACK, 0, p.PacketID, p.ReasonCode, p.Props, v5)
	case *Pubrec:
		return appendAck(dst, PUBREC, 0, p.PacketID, p.ReasonCode, p.Props, v5)
	case *Pubrel:
		return appendAck(dst, PUBREL, 2, p.PacketID, p.ReasonCode, p.Props, v5)
	case *Pubcomp:
		return appendAck(dst, PUBCOMP, 0, p.PacketID, p.ReasonCode, p.Props, v5)
	case *Subscribe:
		return appendSubscribe(dst, p, v5)
	case *Suback:
		return appendCodes(dst, SUBACK, p.PacketID, p.Props, p.ReturnCodes, v5)
	case *Unsubscribe:
		return appendUnsubscribe(dst, p, v5)
	case *Unsuback:
		codes := p.ReasonCodes
		if !v5 {
			codes = nil
		}
		return appendCodes(dst, UNSUBACK, p.PacketID, p.Props, codes, v5)
	case *Pingreq:
		return append(dst, byte(PINGREQ)<<4, 0), nil
	case *Pingresp:
		return append(dst, byte(PINGRESP)<<4, 0), nil
	case *Disconnect:
		if !v5 {
			return append(dst, byte(DISCONNECT)<<4, 0), nil
		}
		return appendReasonOnly(dst, DISCONNECT, p.ReasonCode, p.Props, true)
	case *Auth:
		if !v5 {
			return dst, errors.New("encode AUTH: AUTH exists only in MQTT 5")
		}
		return appendReasonOnly(dst, AUTH, p.ReasonCode, p.Props, false)
	case nil:
		return dst, errors.New("encode: nil packet")
	}
	return dst, fmt.Errorf("encode: unknown packet type %T", p)
}

// header appends the fixed header after checking the remaining length.
func appendHeader(dst []byte, t Type, flags byte, remain int) ([]byte, error) {
	if remain > MaxRemainingLength {
		return dst, fmt.Errorf("encode %s: remaining length %d exceeds %d", t, remain, MaxRemainingLength)
	}
	return appendVarint(append(dst, byte(t)<<4|flags), remain), nil
}

func appendPublish(dst []byte, p *Publish, v5 bool) ([]byte, error) {
	if len(p.Topic) > 65535 {
		return dst, errTooLong(PUBLISH, "topic", len(p.Topic))
	}
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	pl := 0
	if v5 {
		var err error
		if pl, err = propsSize(PUBLISH, p.Props); err != nil {
			return dst, err
		}
		n += varintLen(pl) + pl
	}
	flags := p.QoS & 3 << 1
	if p.Dup {
		flags |= 8
	}
	if p.Retain {
		flags |= 1
	}
	dst, err := appendHeader(dst, PUBLISH, flags, n)
	if err != nil {
		return dst, err
	}
	dst = appendStr(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendU16(dst, p.PacketID)
	}
	if v5 {
		dst = appendProps(dst, p.Props, pl)
	}
	return append(dst, p.Payload...), nil
}

func appendConnect(dst []byte, c *Connect, version byte) ([]byte, error) {
	level := c.ProtocolLevel
	if level == 0 {
		level = version
		if level == 0 {
			level = V311
		}
	}
	wire := level
	if c.Bridge && (level == V31 || level == V311) {
		wire |= 0x80
	}
	name := c.ProtocolName
	if name == "" {
		name = "MQTT"
		if level == V31 {
			name = "MQIsdp"
		}
	}
	v5 := level == V5
	for _, f := range []struct {
		what string
		n    int
	}{{"protocol name", len(name)}, {"client identifier", len(c.ClientID)}, {"user name", len(c.Username)}, {"password", len(c.Password)}} {
		if f.n > 65535 {
			return dst, errTooLong(CONNECT, f.what, f.n)
		}
	}
	n := 2 + len(name) + 1 + 1 + 2 + 2 + len(c.ClientID)
	var flags byte
	if c.CleanSession {
		flags |= 0x02
	}
	pl, wpl := 0, 0
	var err error
	if v5 {
		if pl, err = propsSize(CONNECT, c.Props); err != nil {
			return dst, err
		}
		n += varintLen(pl) + pl
	}
	if w := c.Will; w != nil {
		if len(w.Topic) > 65535 || len(w.Payload) > 65535 {
			return dst, errTooLong(CONNECT, "will topic or message", max(len(w.Topic), len(w.Payload)))
		}
		flags |= 0x04 | w.QoS&3<<3
		if w.Retain {
			flags |= 0x20
		}
		n += 4 + len(w.Topic) + len(w.Payload)
		if v5 {
			if wpl, err = propsSize(CONNECT, w.Props); err != nil {
				return dst, err
			}
			n += varintLen(wpl) + wpl
		}
	}
	if c.UsernameFlag {
		flags |= 0x80
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		flags |= 0x40
		n += 2 + len(c.Password)
	}
	if dst, err = appendHeader(dst, CONNECT, 0, n); err != nil {
		return dst, err
	}
	dst = append(appendStr(dst, name), wire, flags)
	dst = appendU16(dst, c.KeepAlive)
	if v5 {
		dst = appendProps(dst, c.Props, pl)
	}
	dst = appendStr(dst, c.ClientID)
	if w := c.Will; w != nil {
		if v5 {
			dst = appendProps(dst, w.Props, wpl)
		}
		dst = appendBin(appendStr(dst, w.Topic), w.Payload)
	}
	if c.UsernameFlag {
		dst = appendStr(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBin(dst, c.Password)
	}
	return dst, nil
}

func appendConnack(dst []byte, c *Connack, v5 bool) ([]byte, error) {
	n, pl := 2, 0
	if v5 {
		var err error
		if pl, err = propsSize(CONNACK, c.Props); err != nil {
			return dst, err
		}
		n += varintLen(pl) + pl
	}
	dst, err := appendHeader(dst, CONNACK, 0, n)
	if err != nil {
		return dst, err
	}
	var flags byte
	if c.SessionPresent {
		flags = 1
	}
	dst = append(dst, flags, c.ReturnCode)
	if v5 {
		dst = appendProps(dst, c.Props, pl)
	}
	return dst, nil
}

// appendAck encodes PUBACK/PUBREC/PUBREL/PUBCOMP in the shortest form MQTT 5
// allows: no reason code for success without properties, no property length
// when there are no properties.
func appendAck(dst []byte, t Type, flags byte, id uint16, code byte, props *Properties, v5 bool) ([]byte, error) {
	if !v5 {
		return append(dst, byte(t)<<4|flags, 2, byte(id>>8), byte(id)), nil
	}
	pl, err := propsSize(t, props)
	if err != nil {
		return dst, err
	}
	n := 2
	switch {
	case pl > 0:
		n += 1 + varintLen(pl) + pl
	case code != 0:
		n++
	}
	if dst, err = appendHeader(dst, t, flags, n); err != nil {
		return dst, err
	}
	dst = appendU16(dst, id)
	if n > 2 {
		dst = append(dst, code)
	}
	if pl > 0 {
		dst = appendProps(dst, props, pl)
	}
	return dst, nil
}

// appendReasonOnly encodes DISCONNECT and AUTH (MQTT 5): empty for success
// without properties. DISCONNECT may also drop the property length alone;
// AUTH keeps it whenever the reason code is present.
func appendReasonOnly(dst []byte, t Type, code byte, props *Properties, dropPropLen bool) ([]byte, error) {
	pl, err := propsSize(t, props)
	if err != nil {
		return dst, err
	}
	n := 0
	switch {
	case pl > 0 || (code != 0 && !dropPropLen):
		n = 1 + varintLen(pl) + pl
	case code != 0:
		n = 1
	}
	if dst, err = appendHeader(dst, t, 0, n); err != nil {
		return dst, err
	}
	if n > 0 {
		dst = append(dst, code)
	}
	if n > 1 {
		dst = appendProps(dst, props, pl)
	}
	return dst, nil
}

func appendSubscribe(dst []byte, p *Subscribe, v5 bool) ([]byte, error) {
	n, pl := 2, 0
	var err error
	if v5 {
		if pl, err = propsSize(SUBSCRIBE, p.Props); err != nil {
			return dst, err
		}
		n += varintLen(pl) + pl
	}
	for _, s := range p.Subscriptions {
		if len(s.Filter) > 65535 {
			return dst, errTooLong(SUBSCRIBE, "topic filter", len(s.Filter))
		}
		n += 3 + len(s.Filter)
	}
	if dst, err = appendHeader(dst, SUBSCRIBE, 2, n); err != nil {
		return dst, err
	}
	dst = appendU16(dst, p.PacketID)
	if v5 {
		dst = appendProps(dst, p.Props, pl)
	}
	for _, s := range p.Subscriptions {
		o := s.QoS & 3
		if v5 {
			if s.NoLocal {
				o |= 4
			}
			if s.RetainAsPublished {
				o |= 8
			}
			o |= s.RetainHandling & 3 << 4
		}
		dst = append(appendStr(dst, s.Filter), o)
	}
	return dst, nil
}

func appendUnsubscribe(dst []byte, p *Unsubscribe, v5 bool) ([]byte, error) {
	n, pl := 2, 0
	var err error
	if v5 {
		if pl, err = propsSize(UNSUBSCRIBE, p.Props); err != nil {
			return dst, err
		}
		n += varintLen(pl) + pl
	}
	for _, f := range p.Filters {
		if len(f) > 65535 {
			return dst, errTooLong(UNSUBSCRIBE, "topic filter", len(f))
		}
		n += 2 + len(f)
	}
	if dst, err = appendHeader(dst, UNSUBSCRIBE, 2, n); err != nil {
		return dst, err
	}
	dst = appendU16(dst, p.PacketID)
	if v5 {
		dst = appendProps(dst, p.Props, pl)
	}
	for _, f := range p.Filters {
		dst = appendStr(dst, f)
	}
	return dst, nil
}

// appendCodes encodes SUBACK and UNSUBACK: packet id, MQTT 5 properties, codes.
func appendCodes(dst []byte, t Type, id uint16, props *Properties, codes []byte, v5 bool) ([]byte, error) {
	n, pl := 2+len(codes), 0
	var err error
	if v5 {
		if pl, err = propsSize(t, props); err != nil {
			return dst, err
		}
		n += varintLen(pl) + pl
	}
	if dst, err = appendHeader(dst, t, 0, n); err != nil {
		return dst, err
	}
	dst = appendU16(dst, id)
	if v5 {
		dst = appendProps(dst, props, pl)
	}
	return append(dst, codes...), nil
}
