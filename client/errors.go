package client

import (
	"errors"
	"fmt"
)

// Sentinel errors; Err and the errors of failed operations wrap them.
var (
	// ErrPingTimeout: no PINGRESP arrived within PingTimeout of a PINGREQ.
	ErrPingTimeout = errors.New("mqtt client: no PINGRESP in time")
	// ErrClosed: the link was dropped by Close.
	ErrClosed = errors.New("mqtt client: closed")
	// ErrDisconnected: the link was ended by Disconnect.
	ErrDisconnected = errors.New("mqtt client: disconnected")
	// ErrNoPacketID: all 65535 packet identifiers are in flight.
	ErrNoPacketID = errors.New("mqtt client: no free packet identifier")
	// ErrProtocol: the broker sent something the protocol does not allow here.
	ErrProtocol = errors.New("mqtt client: protocol violation by the broker")
	// ErrSessionLost: a Session's held message will not be resent, because
	// the broker answered Session Present 0 or the session was cleared.
	ErrSessionLost = errors.New("mqtt client: session lost, message not resent")
	// ErrSessionInUse: the Session already serves another connection.
	ErrSessionInUse = errors.New("mqtt client: session in use by another connection")
)

// ConnackError is returned by Connect when the broker refuses the connection.
type ConnackError struct {
	Code byte // CONNACK return code (3.1.1) or reason code (5.0)
}

// Error names the refusal.
func (e *ConnackError) Error() string {
	return fmt.Sprintf("mqtt client: connection refused: %s (0x%02x)", connackText(e.Code), e.Code)
}

func connackText(code byte) string {
	switch code {
	case 0x01:
		return "unacceptable protocol version"
	case 0x02:
		return "identifier rejected"
	case 0x03:
		return "server unavailable"
	case 0x04:
		return "bad user name or password"
	case 0x05:
		return "not authorized"
	}
	return "refused"
}

// ProtocolError is a broker's violation the client answers, in MQTT 5, with
// DISCONNECT and a reason code before closing; it wraps ErrProtocol.
type ProtocolError struct {
	Code   byte // reason code of the client's DISCONNECT, e.g. 0x82 or 0x94
	Detail string
}

// Error names the violation and the code.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("mqtt client: protocol violation by the broker: %s (DISCONNECT 0x%02x)", e.Detail, e.Code)
}

// Unwrap makes errors.Is(err, ErrProtocol) hold.
func (e *ProtocolError) Unwrap() error { return ErrProtocol }

// ReasonError is an acknowledgement that carried a failure reason code
// (MQTT 5 PUBACK/PUBREC with a code of 0x80 or more, or a server DISCONNECT).
type ReasonError struct {
	Packet string // the packet that carried the code, e.g. "PUBACK"
	Code   byte
}

// Error names the packet and the code.
func (e *ReasonError) Error() string {
	return fmt.Sprintf("mqtt client: %s reason code 0x%02x", e.Packet, e.Code)
}
