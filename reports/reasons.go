package reports

import (
	"fmt"
	"strings"

	"github.com/mqttfleet/mqttfleet/events"
)

// Reason-code counters count the CONNACK, PUBACK (PUBREC for QoS 2),
// SUBACK and DISCONNECT codes the fleet received, one counter per code seen:
// "connack_rc_0x00", "puback_rc_0x10", "suback_rc_0x87",
// "disconnect_rc_0x8e" (two lowercase hex digits). MQTT 3.1.1 codes use the
// same names: CONNACK 0-5, SUBACK 0x00-0x02 and 0x80, and a 3.1.1 PUBACK
// counts as 0x00. Only the fleet's view is counted (clients, simulator,
// scenario), never the broker's events.

// RCPackets are the packets reason-code counters are kept for, in the order
// reports show them.
var RCPackets = []string{"connack", "puback", "pubrec", "pubcomp", "suback", "disconnect"}

// RCCounter returns the counter name of a reason code carried by a packet
// ("connack", "puback", ...).
func RCCounter(pkt string, code byte) string {
	return fmt.Sprintf("%s_rc_0x%02x", pkt, code)
}

// IsRCCounter says whether name is a reason-code counter name, seen or not:
// "<packet>_rc_0x" and two lowercase hex digits.
func IsRCCounter(name string) bool {
	pkt, code, ok := ParseRCCounter(name)
	return ok && RCCounter(pkt, code) == name
}

// ParseRCCounter splits a reason-code counter name into packet and code.
func ParseRCCounter(name string) (pkt string, code byte, ok bool) {
	i := strings.Index(name, "_rc_0x")
	if i < 0 || len(name) != i+8 {
		return "", 0, false
	}
	pkt = name[:i]
	known := false
	for _, p := range RCPackets {
		known = known || p == pkt
	}
	if !known {
		return "", 0, false
	}
	var v uint8
	if _, err := fmt.Sscanf(name[i+6:], "%02x", &v); err != nil {
		return "", 0, false
	}
	return pkt, v, true
}

// rcCounterOf names the reason-code counter an event counts under, or "".
func rcCounterOf(e events.Event) string {
	if e.Code < 0 || e.Code > 0xff {
		return "" // no packet at all (a failed dial)
	}
	code := byte(e.Code)
	switch e.Kind {
	case events.ConnAck:
		return RCCounter("connack", code)
	case events.PublishAcked:
		switch e.QoS {
		case 1:
			return RCCounter("puback", code)
		case 2:
			return RCCounter("pubrec", code)
		}
	case events.PublishFailed:
		switch {
		case e.Detail == "PUBCOMP":
			return RCCounter("pubcomp", code)
		case e.Detail == "PUBREC" || e.QoS == 2:
			return RCCounter("pubrec", code)
		default:
			return RCCounter("puback", code)
		}
	case events.Subscribed:
		return RCCounter("suback", e.QoS)
	case events.Disconnect:
		// A server DISCONNECT; a refused connect carries its CONNACK code,
		// counted already, and a takeover the DISCONNECT's (0x8e).
		if e.Cause == events.CauseServerDisconnect || (e.Code != 0 && e.Cause != events.CauseRefused) {
			return RCCounter("disconnect", code)
		}
	}
	return ""
}

// ReasonCodes returns r's reason-code counters, in RCPackets order and then
// by code, for the reports' "Reason codes" tables.
func (r *Results) ReasonCodes() []ReasonCount {
	var out []ReasonCount
	for _, pkt := range RCPackets {
		for code := 0; code <= 0xff; code++ {
			if n, ok := r.Counters[RCCounter(pkt, byte(code))]; ok {
				out = append(out, ReasonCount{Packet: strings.ToUpper(pkt), Code: byte(code), Counter: RCCounter(pkt, byte(code)), Count: n})
			}
		}
	}
	return out
}

// ReasonCount is one reason-code counter.
type ReasonCount struct {
	Packet  string // CONNACK, PUBACK, ...
	Code    byte
	Counter string
	Count   int64
}

// ReasonName is the MQTT 5 name of a reason code as packet carries it
// (3.1.1 CONNACK return codes by their 3.1.1 names), or "".
func ReasonName(packet string, code byte) string {
	if packet == "CONNACK" && code > 0 && code < 6 {
		return [...]string{"", "unacceptable protocol version", "identifier rejected", "server unavailable",
			"bad user name or password", "not authorized"}[code]
	}
	if packet == "SUBACK" && code <= 2 {
		return fmt.Sprintf("granted QoS %d", code)
	}
	if packet == "DISCONNECT" && code == 0 {
		return "normal disconnection"
	}
	return reasonNames[code]
}

var reasonNames = map[byte]string{
	0x00: "success", 0x04: "disconnect with will message", 0x10: "no matching subscribers",
	0x11: "no subscription existed", 0x18: "continue authentication", 0x19: "re-authenticate",
	0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
	0x83: "implementation specific error", 0x84: "unsupported protocol version",
	0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorized",
	0x88: "server unavailable", 0x89: "server busy", 0x8a: "banned", 0x8b: "server shutting down",
	0x8c: "bad authentication method", 0x8d: "keep alive timeout", 0x8e: "session taken over",
	0x8f: "topic filter invalid", 0x90: "topic name invalid", 0x91: "packet identifier in use",
	0x92: "packet identifier not found", 0x93: "receive maximum exceeded", 0x94: "topic alias invalid",
	0x95: "packet too large", 0x96: "message rate too high", 0x97: "quota exceeded",
	0x98: "administrative action", 0x99: "payload format invalid", 0x9a: "retain not supported",
	0x9b: "QoS not supported", 0x9c: "use another server", 0x9d: "server moved",
	0x9e: "shared subscriptions not supported", 0x9f: "connection rate exceeded",
	0xa0: "maximum connect time", 0xa1: "subscription identifiers not supported",
	0xa2: "wildcard subscriptions not supported",
}
