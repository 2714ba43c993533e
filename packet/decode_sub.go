package packet

// A SUBSCRIBE or UNSUBSCRIBE whose only fault is a topic filter that breaks
// the filter rules (CheckTopicFilter) is returned whole together with that
// filter's *Error, so a server may answer the bad filter with a failure code
// instead of closing. Any other fault returns no packet.

func decodeSubscribe(d *dec) (*Subscribe, error) {
	p := &Subscribe{}
	var err error
	if p.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	if d.v5 {
		if p.Props, err = d.props(allowSubscribe, "SUBSCRIBE"); err != nil {
			return nil, err
		}
	}
	var filterErr error
	for d.left() > 0 {
		var s Subscription
		if s.Filter, err = d.str("topic filter"); err != nil {
			return nil, err
		}
		if err := CheckTopicFilter(s.Filter, ver(d.v5)); err != nil && filterErr == nil {
			filterErr = withPacket(err, SUBSCRIBE)
		}
		o, err := d.u8("subscription options")
		if err != nil {
			return nil, err
		}
		s.QoS = o & 3
		if !d.v5 {
			if o&^3 != 0 || s.QoS == 3 {
				return nil, d.malformed("MQTT-3.8.3-4", "requested QoS byte %08b: reserved bits set or QoS 3", o)
			}
		} else {
			if o&0xC0 != 0 {
				return nil, d.malformed("MQTT-3.8.3-5", "subscription options %08b: reserved bits 7-6 set", o)
			}
			if s.QoS == 3 {
				return nil, d.protocol("", "subscription options: maximum QoS 3 (section 3.8.3.1)")
			}
			s.NoLocal = o&4 != 0
			s.RetainAsPublished = o&8 != 0
			s.RetainHandling = o >> 4 & 3
			if s.RetainHandling == 3 {
				return nil, d.protocol("", "subscription options: Retain Handling 3 (section 3.8.3.1)")
			}
			if s.NoLocal && len(s.Filter) > 7 && s.Filter[:7] == "$share/" {
				return nil, d.protocol("MQTT-3.8.3-4", "No Local set on shared subscription %q", s.Filter)
			}
		}
		p.Subscriptions = append(p.Subscriptions, s)
	}
	if len(p.Subscriptions) == 0 {
		return nil, d.protocol(d.id("MQTT-3.8.3-3", "MQTT-3.8.3-2"), "SUBSCRIBE carries no topic filter")
	}
	return p, filterErr
}

func decodeSuback(d *dec) (*Suback, error) {
	p := &Suback{}
	var err error
	if p.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	if d.v5 {
		if p.Props, err = d.props(allowAck, "SUBACK"); err != nil {
			return nil, err
		}
	}
	p.ReturnCodes = make([]byte, d.left())
	copy(p.ReturnCodes, d.b[d.i:])
	d.i = len(d.b)
	for _, c := range p.ReturnCodes {
		if d.v5 && !subackCodes[c] || !d.v5 && c > 2 && c != SubackFailure {
			return nil, d.malformed("MQTT-3.9.3-2", "return code 0x%02X is not a SUBACK code", c)
		}
	}
	return p, nil
}

func decodeUnsubscribe(d *dec) (*Unsubscribe, error) {
	p := &Unsubscribe{}
	var err error
	if p.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	if d.v5 {
		if p.Props, err = d.props(allowUnsubscribe, "UNSUBSCRIBE"); err != nil {
			return nil, err
		}
	}
	var filterErr error
	for d.left() > 0 {
		f, err := d.str("topic filter")
		if err != nil {
			return nil, err
		}
		if err := CheckTopicFilter(f, ver(d.v5)); err != nil && filterErr == nil {
			filterErr = withPacket(err, UNSUBSCRIBE)
		}
		p.Filters = append(p.Filters, f)
	}
	if len(p.Filters) == 0 {
		return nil, d.protocol("MQTT-3.10.3-2", "UNSUBSCRIBE carries no topic filter")
	}
	return p, filterErr
}

func decodeUnsuback(d *dec) (*Unsuback, error) {
	p := &Unsuback{}
	var err error
	if p.PacketID, err = d.packetID(); err != nil {
		return nil, err
	}
	if d.v5 {
		if p.Props, err = d.props(allowAck, "UNSUBACK"); err != nil {
			return nil, err
		}
		p.ReasonCodes = make([]byte, d.left())
		copy(p.ReasonCodes, d.b[d.i:])
		d.i = len(d.b)
		for _, c := range p.ReasonCodes {
			if !unsubackCodes[c] {
				return nil, d.malformed("MQTT-3.11.3-2", "reason code 0x%02X is not an UNSUBACK code", c)
			}
		}
	}
	return p, d.done("")
}
