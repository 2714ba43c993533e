package packet

import (
	"errors"
	"fmt"
)

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
	// Validators (CheckTopicName, ...) leave Packet 0: they are not decoding.
	s := "mqtt"
	if e.Packet != 0 {
		s = "decode " + e.Packet.String()
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

// MQTT 5 reason codes the codec puts in Error.Code.
const (
	CodeMalformed          byte = 0x81 // Malformed Packet
	CodeProtocolError      byte = 0x82 // Protocol Error
	CodeUnsupportedVersion byte = 0x84 // Unsupported Protocol Version
	CodeTopicFilterInvalid byte = 0x8F // Topic Filter invalid
	CodeTopicNameInvalid   byte = 0x90 // Topic Name invalid
	CodeTopicAliasInvalid  byte = 0x94 // Topic Alias invalid
	CodePacketTooLarge     byte = 0x95 // Packet too large
)

// Sentinels that errors.Is matches against an *Error by its Code, so callers
// can branch on the two failures a server must answer differently.
var (
	// ErrUnsupportedProtocolLevel matches the *Error returned for a CONNECT
	// whose protocol name is valid but whose level is not 3, 4 or 5. Decode and
	// ReadPacket then also return the partially decoded *Connect (ProtocolName
	// and ProtocolLevel set, nothing else), so a server can answer CONNACK 0x01
	// (3.1.1) or 0x84 (5.0) before closing [MQTT-3.1.2-2].
	ErrUnsupportedProtocolLevel = errors.New("unsupported protocol level")
	// ErrPacketTooLarge matches the *Error returned when the fixed header
	// declares a packet larger than Options.MaxPacketSize; the body has not
	// been read or allocated.
	ErrPacketTooLarge = errors.New("packet too large")
)

// Is reports whether target is the sentinel that corresponds to e.Code, so
// errors.Is(err, ErrUnsupportedProtocolLevel) and errors.Is(err,
// ErrPacketTooLarge) work without unwrapping by hand.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnsupportedProtocolLevel:
		return e.Code == CodeUnsupportedVersion
	case ErrPacketTooLarge:
		return e.Code == CodePacketTooLarge
	}
	return false
}

// errf builds an *Error; stmt may be "".
func errf(t Type, stmt string, code byte, format string, args ...any) *Error {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Packet: t, Statement: stmt, Code: code, Msg: msg}
}
