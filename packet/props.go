package packet

// MQTT 5 property identifiers (section 2.2.2.2).
const (
	propPayloadFormat        = 0x01
	propMessageExpiry        = 0x02
	propContentType          = 0x03
	propResponseTopic        = 0x08
	propCorrelationData      = 0x09
	propSubscriptionID       = 0x0B
	propSessionExpiry        = 0x11
	propAssignedClientID     = 0x12
	propServerKeepAlive      = 0x13
	propAuthMethod           = 0x15
	propAuthData             = 0x16
	propRequestProblemInfo   = 0x17
	propWillDelay            = 0x18
	propRequestResponseInfo  = 0x19
	propResponseInfo         = 0x1A
	propServerReference      = 0x1C
	propReasonString         = 0x1F
	propReceiveMaximum       = 0x21
	propTopicAliasMaximum    = 0x22
	propTopicAlias           = 0x23
	propMaximumQoS           = 0x24
	propRetainAvailable      = 0x25
	propUser                 = 0x26
	propMaximumPacketSize    = 0x27
	propWildcardSubAvailable = 0x28
	propSubIDAvailable       = 0x29
	propSharedSubAvailable   = 0x2A
)

func bits(ids ...int) uint64 {
	var m uint64
	for _, id := range ids {
		m |= 1 << id
	}
	return m
}

// Which properties each packet may carry (the table in section 2.2.2.2). An
// identifier outside its packet's set is a Malformed Packet.
var (
	allowConnect = bits(propSessionExpiry, propAuthMethod, propAuthData, propRequestProblemInfo,
		propRequestResponseInfo, propReceiveMaximum, propTopicAliasMaximum, propUser, propMaximumPacketSize)
	allowConnack = bits(propSessionExpiry, propAssignedClientID, propServerKeepAlive, propAuthMethod,
		propAuthData, propResponseInfo, propServerReference, propReasonString, propReceiveMaximum,
		propTopicAliasMaximum, propMaximumQoS, propRetainAvailable, propUser, propMaximumPacketSize,
		propWildcardSubAvailable, propSubIDAvailable, propSharedSubAvailable)
	allowPublish = bits(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propSubscriptionID, propTopicAlias, propUser)
	allowWill = bits(propPayloadFormat, propMessageExpiry, propContentType, propResponseTopic,
		propCorrelationData, propWillDelay, propUser)
	allowAck         = bits(propReasonString, propUser) // PUBACK..PUBCOMP, SUBACK, UNSUBACK
	allowSubscribe   = bits(propSubscriptionID, propUser)
	allowUnsubscribe = bits(propUser)
	allowDisconnect  = bits(propSessionExpiry, propServerReference, propReasonString, propUser)
	allowAuth        = bits(propAuthMethod, propAuthData, propReasonString, propUser)
)

// props reads a property length and the properties after it. where names
// the property block in messages ("CONNECT", "will"). An empty block yields
// nil. Duplicates of a non-repeatable property are a Protocol Error; only
// User Property repeats, and Subscription Identifier in PUBLISH.
func (d *dec) props(allowed uint64, where string) (*Properties, error) {
	n, err := d.varint("property length")
	if err != nil {
		return nil, err
	}
	if int(n) > d.left() {
		return nil, d.malformed("", "%s property length %d exceeds the %d bytes left", where, n, d.left())
	}
	if n == 0 {
		return nil, nil
	}
	pd := dec{b: d.b[d.i : d.i+int(n)], t: d.t, v5: true}
	d.i += int(n)
	p := &Properties{}
	var seen uint64
	for pd.left() > 0 {
		id, err := pd.varint("property identifier")
		if err != nil {
			return nil, err
		}
		if id >= 64 || allowed&(1<<id) == 0 {
			return nil, pd.malformed("", "property 0x%02X is not allowed in %s (section 2.2.2.2)", id, where)
		}
		repeatable := id == propUser || (id == propSubscriptionID && d.t == PUBLISH && where != "will")
		if seen&(1<<id) != 0 && !repeatable {
			return nil, pd.protocol("", "property 0x%02X appears more than once in %s", id, where)
		}
		seen |= 1 << id
		if err := pd.prop(p, byte(id)); err != nil {
			return nil, err
		}
	}
	if p.AuthData != nil && !p.HasAuthMethod {
		return nil, d.protocol("", "Authentication Data without Authentication Method in %s", where)
	}
	return p, nil
}

// flag reads a byte property that may only be 0 or 1.
func (d *dec) flag(name string) (*byte, error) {
	v, err := d.u8(name)
	if err != nil {
		return nil, err
	}
	if v > 1 {
		return nil, d.protocol("", "%s is %d; only 0 and 1 are allowed", name, v)
	}
	return &v, nil
}

func (d *dec) nonZero16(name string) (*uint16, error) {
	v, err := d.u16(name)
	if err != nil {
		return nil, err
	}
	if v == 0 {
		if name == "Topic Alias" {
			// 3.3.4: "A Topic Alias value of 0 or greater than the Maximum
			// Topic Alias is a Protocol Error, the receiver uses DISCONNECT
			// with Reason Code of 0x94 (Topic Alias invalid)".
			return nil, errf(d.t, "MQTT-3.3.2-8", CodeTopicAliasInvalid, "%s is 0", name)
		}
		return nil, d.protocol("", "%s is 0", name)
	}
	return &v, nil
}

func (d *dec) ptr32(name string) (*uint32, error) {
	v, err := d.u32(name)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (d *dec) ptr16(name string) (*uint16, error) {
	v, err := d.u16(name)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// prop decodes the value of property id into p.
func (d *dec) prop(p *Properties, id byte) (err error) {
	switch id {
	case propPayloadFormat:
		p.PayloadFormat, err = d.flag("Payload Format Indicator")
	case propMessageExpiry:
		p.MessageExpiry, err = d.ptr32("Message Expiry Interval")
	case propContentType:
		p.ContentType, err = d.str("Content Type")
		p.HasContentType = true
	case propResponseTopic:
		p.ResponseTopic, err = d.str("Response Topic")
		p.HasResponseTopic = true
		if err == nil {
			if terr := CheckTopicName(p.ResponseTopic, V5); terr != nil {
				e := terr.(*Error)
				e.Packet = d.t
				if e.Statement == "MQTT-3.3.2-2" {
					e.Statement = "MQTT-3.3.2-14"
				}
				e.Msg = "Response Topic: " + e.Msg
				err = e
			}
		}
	case propCorrelationData:
		p.CorrelationData, err = d.bin("Correlation Data")
	case propSubscriptionID:
		var v uint32
		v, err = d.varint("Subscription Identifier")
		if err == nil && v == 0 {
			err = d.protocol("", "Subscription Identifier is 0")
		}
		p.SubscriptionIDs = append(p.SubscriptionIDs, v)
	case propSessionExpiry:
		p.SessionExpiry, err = d.ptr32("Session Expiry Interval")
	case propAssignedClientID:
		p.AssignedClientID, err = d.str("Assigned Client Identifier")
		p.HasAssignedClientID = true
	case propServerKeepAlive:
		p.ServerKeepAlive, err = d.ptr16("Server Keep Alive")
	case propAuthMethod:
		p.AuthMethod, err = d.str("Authentication Method")
		p.HasAuthMethod = true
	case propAuthData:
		p.AuthData, err = d.bin("Authentication Data")
	case propRequestProblemInfo:
		p.RequestProblemInfo, err = d.flag("Request Problem Information")
	case propWillDelay:
		p.WillDelay, err = d.ptr32("Will Delay Interval")
	case propRequestResponseInfo:
		p.RequestResponseInfo, err = d.flag("Request Response Information")
	case propResponseInfo:
		p.ResponseInfo, err = d.str("Response Information")
		p.HasResponseInfo = true
	case propServerReference:
		p.ServerReference, err = d.str("Server Reference")
		p.HasServerReference = true
	case propReasonString:
		p.ReasonString, err = d.str("Reason String")
		p.HasReasonString = true
	case propReceiveMaximum:
		p.ReceiveMaximum, err = d.nonZero16("Receive Maximum")
	case propTopicAliasMaximum:
		p.TopicAliasMaximum, err = d.ptr16("Topic Alias Maximum")
	case propTopicAlias:
		p.TopicAlias, err = d.nonZero16("Topic Alias")
	case propMaximumQoS:
		p.MaximumQoS, err = d.flag("Maximum QoS")
	case propRetainAvailable:
		p.RetainAvailable, err = d.flag("Retain Available")
	case propUser:
		var k, v string
		if k, err = d.str("User Property name"); err == nil {
			v, err = d.str("User Property value")
		}
		p.User = append(p.User, UserProperty{Key: k, Value: v})
	case propMaximumPacketSize:
		p.MaximumPacketSize, err = d.ptr32("Maximum Packet Size")
		if err == nil && *p.MaximumPacketSize == 0 {
			err = d.protocol("", "Maximum Packet Size is 0")
		}
	case propWildcardSubAvailable:
		p.WildcardSubAvailable, err = d.flag("Wildcard Subscription Available")
	case propSubIDAvailable:
		p.SubIDAvailable, err = d.flag("Subscription Identifier Available")
	case propSharedSubAvailable:
		p.SharedSubAvailable, err = d.flag("Shared Subscription Available")
	}
	return err
}
