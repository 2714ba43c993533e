package mqttload

import (
	"fmt"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Target is a broker address and the protocol level the generator speaks to
// it. Level 0 means packet.V311; packet.V5 makes every connection of a
// scenario speak MQTT 5.0: CONNECT level 5 with (empty) properties, SUBSCRIBE
// with a subscription options byte, PUBLISH with a property length, PUBACK
// with a reason code and property length, and a QoS 1 window no larger than
// the server's Receive Maximum.
//
// Messages, when above 0, makes a scenario exact instead of timed, for
// tests: each publisher sends that many messages and each subscriber stops
// reading once it has all it can expect, or at the deadline. Sent and
// Received then match unless the broker lost something.
type Target struct {
	Addr     string
	Level    byte
	Messages int
	// Persistent connects with sessions the broker keeps (3.1.1: clean
	// session 0; 5.0: Session Expiry Interval 0xFFFFFFFF) instead of clean
	// ones, so a broker with persistence stores what it queues for them.
	Persistent bool
}

func (t Target) level() byte {
	if t.Level == 0 {
		return packet.V311
	}
	return t.Level
}

// setupMaxPacket bounds the CONNACK and SUBACK a 5.0 connection decodes
// while it is set up: both are small, whatever properties the server adds.
const setupMaxPacket = 64 << 10

// readConnack5 reads a 5.0 CONNACK through the codec (its length depends on
// the properties the server sends) and keeps its Receive Maximum.
func (c *Conn) readConnack5() error {
	p, err := packet.ReadPacket(c.NC, packet.Options{Version: packet.V5, MaxPacketSize: setupMaxPacket})
	if err != nil {
		return err
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		return fmt.Errorf("got %T", p)
	}
	if ack.ReturnCode != 0 {
		return fmt.Errorf("reason code %#x", ack.ReturnCode)
	}
	if ack.Props != nil && ack.Props.ReceiveMaximum != nil {
		c.ReceiveMax = *ack.Props.ReceiveMaximum
	}
	return nil
}

// readSuback5 reads a 5.0 SUBACK for one subscription and checks it grants
// it (reason codes 0-2 are the granted QoS).
func (c *Conn) readSuback5() error {
	p, err := packet.ReadPacket(c.NC, packet.Options{Version: packet.V5, MaxPacketSize: setupMaxPacket})
	if err != nil {
		return fmt.Errorf("suback: %w", err)
	}
	ack, ok := p.(*packet.Suback)
	if !ok {
		return fmt.Errorf("suback: got %T", p)
	}
	if len(ack.ReturnCodes) != 1 || ack.ReturnCodes[0] > 2 {
		return fmt.Errorf("suback: reason codes % x", ack.ReturnCodes)
	}
	return nil
}

// appendPuback appends the PUBACK for packet identifier (hi, lo) at level:
// 3.1.1's two bytes of identifier, or in 5.0 the identifier, reason code
// 0x00 (success) and an empty property list, the form a 5.0 client that
// sends properties writes.
func appendPuback(dst []byte, level, hi, lo byte) []byte {
	if level == packet.V5 {
		return append(dst, 0x40, 4, hi, lo, 0, 0)
	}
	return append(dst, 0x40, 2, hi, lo)
}
