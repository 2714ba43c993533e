package packet

import "fmt"

// Error is a decoding or validation failure. Statement names the normative
// statement the input breaks (for example "MQTT-1.5.3-2"), when there is one.
// Code is the MQTT 5 reason code a server would send for it (0x81 Malformed
// Packet, 0x82 Protocol Error, 0x95 Packet Too Large, ...).
type Error struct {
	Packet    Type   // the packet being decoded; 0 when unknown
	Statement string // normative statement ID, or ""
	Code      byte   // MQTT 5 reason code
	Msg       string // what is wrong, in words
}

// Error formats the failure with its packet and statement.
func (e *Error) Error() string {
	s := "decode"
	if e.Packet != 0 {
		s += " " + e.Packet.String()
	}
	s += ": " + e.Msg
	if e.Statement != "" {
		s += " [" + e.Statement + "]"
	}
	return s
}

// String returns the packet type's name, such as "PUBLISH".
func (t Type) String() string {
	names := [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("TYPE(%d)", byte(t))
}
