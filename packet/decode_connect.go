package packet

// decodeConnect decodes CONNECT by its own protocol level, whatever the
// Options say. For an unknown level with a valid protocol name it returns the
// *Connect with ProtocolName and ProtocolLevel set together with an *Error
// matching ErrUnsupportedProtocolLevel (Code 0x84, [MQTT-3.1.2-2]), so a
// server can still answer CONNACK 0x01 / 0x84.
func decodeConnect(d *dec) (Packet, error) {
	name, err := d.str("protocol name")
	if err != nil {
		return nil, err
	}
	level, err := d.u8("protocol level")
	if err != nil {
		return nil, err
	}
	c := &Connect{ProtocolName: name, ProtocolLevel: level}
	if level&0x80 != 0 && (level&0x7f == V31 || level&0x7f == V311) {
		// A bridge (try_private): the level with its top bit set.
		c.Bridge, level = true, level&0x7f
		c.ProtocolLevel = level
	}
	d.v5 = level == V5
	switch {
	case name != "MQTT" && name != "MQIsdp":
		return c, d.protocol("MQTT-3.1.2-1", "protocol name %q is neither \"MQTT\" nor \"MQIsdp\"", name)
	case level < V31 || level > V5:
		return c, errf(CONNECT, "MQTT-3.1.2-2", CodeUnsupportedVersion, "protocol level %d is not supported", level)
	case (level == V31) != (name == "MQIsdp"):
		return c, d.protocol("MQTT-3.1.2-1", "protocol name %q does not go with level %d", name, level)
	}
	flags, err := d.u8("connect flags")
	if err != nil {
		return nil, err
	}
	if flags&1 != 0 {
		return nil, d.malformed("MQTT-3.1.2-3", "connect flags %08b: reserved bit 0 is set", flags)
	}
	c.CleanSession = flags&0x02 != 0
	willFlag, willQoS, willRetain := flags&0x04 != 0, flags>>3&3, flags&0x20 != 0
	c.PasswordFlag, c.UsernameFlag = flags&0x40 != 0, flags&0x80 != 0
	switch {
	case !willFlag && willQoS != 0:
		return nil, d.malformed(d.id("MQTT-3.1.2-13", "MQTT-3.1.2-11"), "will QoS %d without the will flag", willQoS)
	case !willFlag && willRetain:
		return nil, d.malformed(d.id("MQTT-3.1.2-15", "MQTT-3.1.2-13"), "will retain without the will flag")
	case willQoS == 3:
		return nil, d.malformed(d.id("MQTT-3.1.2-14", "MQTT-3.1.2-12"), "will QoS 3")
	case !d.v5 && c.PasswordFlag && !c.UsernameFlag:
		return nil, d.malformed("MQTT-3.1.2-22", "password flag without user name flag")
	}
	if c.KeepAlive, err = d.u16("keep alive"); err != nil {
		return nil, err
	}
	if d.v5 {
		if c.Props, err = d.props(allowConnect, "CONNECT"); err != nil {
			return nil, err
		}
	}
	// Payload fields, in the order the flags promise them [MQTT-3.1.3-1].
	if d.left() == 0 {
		return nil, d.malformed("MQTT-3.1.3-3", "client identifier is missing")
	}
	if c.ClientID, err = d.str("client identifier"); err != nil {
		return nil, err
	}
	if willFlag {
		w := &Will{QoS: willQoS, Retain: willRetain}
		if d.left() == 0 {
			return nil, d.malformed("MQTT-3.1.2-9", "will flag set but will fields are missing")
		}
		if d.v5 {
			if w.Props, err = d.props(allowWill, "will"); err != nil {
				return nil, err
			}
		}
		if w.Topic, err = d.str("will topic"); err != nil {
			return nil, err
		}
		if err := CheckTopicName(w.Topic, ver(d.v5)); err != nil {
			return nil, withPacket(err, CONNECT)
		}
		if w.Payload, err = d.bin("will message"); err != nil {
			return nil, err
		}
		c.Will = w
	}
	if c.UsernameFlag {
		if d.left() == 0 {
			return nil, d.malformed(d.id("MQTT-3.1.2-19", "MQTT-3.1.2-17"), "user name flag set but user name is missing")
		}
		if c.Username, err = d.str("user name"); err != nil {
			return nil, err
		}
	}
	if c.PasswordFlag {
		if d.left() == 0 {
			return nil, d.malformed(d.id("MQTT-3.1.2-21", "MQTT-3.1.2-19"), "password flag set but password is missing")
		}
		if c.Password, err = d.bin("password"); err != nil {
			return nil, err
		}
	}
	// Bytes left over are a field the flags do not announce.
	stmt := ""
	switch {
	case !c.UsernameFlag:
		stmt = d.id("MQTT-3.1.2-18", "MQTT-3.1.2-16")
	case !c.PasswordFlag:
		stmt = d.id("MQTT-3.1.2-20", "MQTT-3.1.2-18")
	}
	if err := d.done(stmt); err != nil {
		return nil, err
	}
	return c, nil
}
