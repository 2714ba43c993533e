package scenarios

import (
	"encoding/hex"
	"fmt"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5 misbehaviours do: violate can commit on purpose (violation:).
const (
	// ViolationAliasZero: a PUBLISH with Topic Alias 0 [MQTT-3.3.2-8].
	ViolationAliasZero = "topic_alias_zero"
	// ViolationAliasOverMax: a PUBLISH with a Topic Alias one above the
	// Topic Alias Maximum the server's CONNACK gave (1 when it gave none)
	// [MQTT-3.3.2-9].
	ViolationAliasOverMax = "topic_alias_over_max"
	// ViolationAliasUnset: a PUBLISH with an empty topic and Topic Alias 1,
	// which was never set on this connection: a mapping carried over from an
	// earlier connection [MQTT-3.3.2-7].
	ViolationAliasUnset = "topic_alias_unset"
	// ViolationReceiveMax: Receive Maximum + 1 QoS 2 PUBLISHes in one write,
	// none released, so more await PUBREL than the server allows
	// [MQTT-3.3.4-7].
	ViolationReceiveMax = "receive_maximum"
)

var violationKinds = []string{ViolationAliasZero, ViolationAliasOverMax, ViolationAliasUnset, ViolationReceiveMax}

// violationStatements are the statements each misbehaviour breaks (the
// client's side of the standard); the client's events name them.
var violationStatements = map[string]string{
	ViolationAliasZero:    "MQTT-3.3.2-8",
	ViolationAliasOverMax: "MQTT-3.3.2-9",
	ViolationAliasUnset:   "MQTT-3.3.2-7",
	ViolationReceiveMax:   "MQTT-3.3.4-7",
}

// maxReceiveFlood bounds receive_maximum: a server that advertises more (or
// none, which means 65535) is not flooded from a scenario step.
const maxReceiveFlood = 10_000

// violationTopic is the topic the misbehaving PUBLISHes carry.
const violationTopic = "mqttfleet/violation"

// violationBytes encodes the packets of a misbehaviour for a connection
// whose CONNACK was ack, and says what they are.
func violationBytes(kind string, ack *packet.Connack) ([]byte, string, error) {
	var props *packet.Properties
	if ack != nil {
		props = ack.Props
	}
	alias := func(topic string, a uint16) *packet.Publish {
		return &packet.Publish{Topic: topic, Payload: []byte("x"), Props: &packet.Properties{TopicAlias: &a}}
	}
	switch kind {
	case ViolationAliasZero:
		// The encoder would write alias 0 as it is, but build it by hand so
		// the bytes do not depend on it: PUBLISH QoS 0, topic "t",
		// properties (3 bytes) Topic Alias (0x23) 0, payload "x".
		return []byte{0x30, 0x08, 0x00, 0x01, 't', 0x03, 0x23, 0x00, 0x00, 'x'}, "PUBLISH with Topic Alias 0", nil
	case ViolationAliasOverMax:
		max := uint16(0)
		if props != nil && props.TopicAliasMaximum != nil {
			max = *props.TopicAliasMaximum
		}
		if max == 0xFFFF {
			return nil, "", fmt.Errorf("the server's Topic Alias Maximum is 65535: no alias is above it")
		}
		b, err := packet.Append(nil, alias(violationTopic, max+1), packet.V5)
		return b, fmt.Sprintf("PUBLISH with Topic Alias %d, over the server's Topic Alias Maximum %d", max+1, max), err
	case ViolationAliasUnset:
		b, err := packet.Append(nil, alias("", 1), packet.V5)
		return b, "PUBLISH with an empty topic and Topic Alias 1, never set on this connection", err
	case ViolationReceiveMax:
		rm := 65535
		if props != nil && props.ReceiveMaximum != nil {
			rm = int(*props.ReceiveMaximum)
		}
		if rm > maxReceiveFlood {
			return nil, "", fmt.Errorf("the server's Receive Maximum is %d: more than the %d PUBLISHes a step sends", rm, maxReceiveFlood)
		}
		var b []byte
		for i := 0; i <= rm; i++ {
			// Identifiers from the top down, away from the ones the client
			// itself hands out from 1 up. Their PUBRECs match no publish of
			// the client, which ignores them, so no PUBREL frees a slot.
			p := &packet.Publish{Topic: violationTopic, QoS: 2, PacketID: uint16(65535 - i), Payload: []byte("x")}
			var err error
			if b, err = packet.Append(b, p, packet.V5); err != nil {
				return nil, "", err
			}
		}
		return b, fmt.Sprintf("%d QoS 2 PUBLISHes in one write, none released, over the server's Receive Maximum %d", rm+1, rm), nil
	}
	return nil, "", fmt.Errorf("unknown violation %q", kind)
}

// violateV5 commits an MQTT 5 misbehaviour on the client's connection. The
// client's disconnect event that follows names the statement broken.
func (cr *clientRun) violateV5(kind string) error {
	_, conn, err := cr.current()
	if err != nil {
		return err
	}
	cr.mu.Lock()
	ack := cr.ack
	cr.mu.Unlock()
	b, what, err := violationBytes(kind, ack)
	if err != nil {
		return fmt.Errorf("client %s: violation %s: %w", cr.cfg.Name, kind, err)
	}
	stmt := violationStatements[kind]
	cr.mu.Lock()
	cr.violated = stmt
	cr.mu.Unlock()
	if _, err := conn.Write(b); err != nil {
		return fmt.Errorf("client %s: write violation: %w", cr.cfg.Name, err)
	}
	detail := fmt.Sprintf("sent %s (%d bytes", what, len(b))
	if len(b) <= 64 {
		detail += ": " + hex.EncodeToString(b)
	}
	cr.emit(events.Event{Kind: events.Log, ClientID: cr.cfg.ClientID, Statement: stmt, Detail: detail + ")"})
	return nil
}
