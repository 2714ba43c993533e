// Package packet is the MQTT control packet codec for protocol levels 3
// (MQTT 3.1), 4 (3.1.1) and 5 (5.0): types, encoding, decoding and strict
// validation. A decoding error that breaks a normative statement is an *Error
// naming that statement, so brokers can log it and conformance reports can
// show it.
package packet

// Type is the control packet type, the high nibble of the first byte.
type Type byte

// Control packet types [MQTT-2.2.1].
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15 // MQTT 5 only
)

// Protocol levels carried in CONNECT.
const (
	V31  byte = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 byte = 4 // MQTT 3.1.1, protocol name "MQTT"
	V5   byte = 5 // MQTT 5.0, protocol name "MQTT"
)

// MaxRemainingLength is the largest remaining length four bytes can encode.
const MaxRemainingLength = 268_435_455

// Packet is any MQTT control packet.
type Packet interface {
	Type() Type
}

// CONNACK return codes of 3.1.1 [MQTT-3.2.2.3].
const (
	Accepted                   byte = 0x00
	RefusedProtocolVersion     byte = 0x01
	RefusedIdentifierRejected  byte = 0x02
	RefusedServerUnavailable   byte = 0x03
	RefusedBadUsernamePassword byte = 0x04
	RefusedNotAuthorized       byte = 0x05
	SubackFailure              byte = 0x80 // SUBACK return code for a refused subscription
)

// Will is the will message carried by CONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   *Properties // MQTT 5 will properties; nil otherwise
}

// Connect is the CONNECT packet.
type Connect struct {
	ProtocolName  string // "MQTT", or "MQIsdp" for level 3
	ProtocolLevel byte   // V31, V311 or V5
	CleanSession  bool   // Clean Start in MQTT 5
	KeepAlive     uint16 // seconds; 0 disables keepalive
	ClientID      string
	Will          *Will // nil when the will flag is clear
	UsernameFlag  bool
	Username      string
	PasswordFlag  bool
	Password      []byte
	Props         *Properties // MQTT 5 only
	// Bridge is the top bit of the protocol level byte that bridges set
	// (Mosquitto's try_private): 0x83 or 0x84 on the wire, ProtocolLevel
	// still 3 or 4. Not in the standard; a server that knows it does not
	// send a bridge its own messages back. Only with levels 3 and 4.
	Bridge bool
}

// Connack is the CONNACK packet. ReturnCode is the 3.1.1 return code or the
// MQTT 5 reason code.
type Connack struct {
	SessionPresent bool
	ReturnCode     byte
	Props          *Properties
}

// Publish is the PUBLISH packet. After decoding, Payload aliases the buffer
// the packet was read into; it is not copied again.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    string
	PacketID uint16 // only for QoS 1 and 2
	Props    *Properties
	Payload  []byte
}

// Puback is the PUBACK packet (QoS 1 acknowledgement).
type Puback struct {
	PacketID   uint16
	ReasonCode byte // MQTT 5; 0 (success) for 3.1.1
	Props      *Properties
}

// Pubrec is the PUBREC packet (QoS 2, part 1).
type Pubrec struct {
	PacketID   uint16
	ReasonCode byte
	Props      *Properties
}

// Pubrel is the PUBREL packet (QoS 2, part 2).
type Pubrel struct {
	PacketID   uint16
	ReasonCode byte
	Props      *Properties
}

// Pubcomp is the PUBCOMP packet (QoS 2, part 3).
type Pubcomp struct {
	PacketID   uint16
	ReasonCode byte
	Props      *Properties
}

// Subscription is one topic filter of a SUBSCRIBE packet. The fields after
// QoS are the MQTT 5 subscription options.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
}

// Subscribe is the SUBSCRIBE packet.
type Subscribe struct {
	PacketID      uint16
	Subscriptions []Subscription
	Props         *Properties
}

// Suback is the SUBACK packet: one return (reason) code per subscription.
type Suback struct {
	PacketID    uint16
	ReturnCodes []byte
	Props       *Properties
}

// Unsubscribe is the UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID uint16
	Filters  []string
	Props    *Properties
}

// Unsuback is the UNSUBACK packet. ReasonCodes is MQTT 5 only (one per filter).
type Unsuback struct {
	PacketID    uint16
	ReasonCodes []byte
	Props       *Properties
}

// Pingreq is the PINGREQ packet.
type Pingreq struct{}

// Pingresp is the PINGRESP packet.
type Pingresp struct{}

// Disconnect is the DISCONNECT packet. ReasonCode and Props are MQTT 5 only.
type Disconnect struct {
	ReasonCode byte
	Props      *Properties
}

// Auth is the MQTT 5 AUTH packet.
type Auth struct {
	ReasonCode byte
	Props      *Properties
}

func (*Connect) Type() Type     { return CONNECT }
func (*Connack) Type() Type     { return CONNACK }
func (*Publish) Type() Type     { return PUBLISH }
func (*Puback) Type() Type      { return PUBACK }
func (*Pubrec) Type() Type      { return PUBREC }
func (*Pubrel) Type() Type      { return PUBREL }
func (*Pubcomp) Type() Type     { return PUBCOMP }
func (*Subscribe) Type() Type   { return SUBSCRIBE }
func (*Suback) Type() Type      { return SUBACK }
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }
func (*Unsuback) Type() Type    { return UNSUBACK }
func (*Pingreq) Type() Type     { return PINGREQ }
func (*Pingresp) Type() Type    { return PINGRESP }
func (*Disconnect) Type() Type  { return DISCONNECT }
func (*Auth) Type() Type        { return AUTH }
