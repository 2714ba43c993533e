package conformance

import "github.com/mqttfleet/mqttfleet/packet"

// Raw packet building for malformed-input specs: the codec refuses to encode
// what these specs must send, so they assemble the bytes themselves.

// str encodes s as an MQTT string: two-byte big-endian length, then the bytes as given.
func str(s string) []byte {
	return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...)
}

// u16 encodes a two-byte integer (packet identifiers).
func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// rawConnect is a well-formed 3.1.1 CONNECT with the given connect flags.
func rawConnect(flags byte, keepAlive uint16, clientID string, payload ...[]byte) []byte {
	parts := append([][]byte{str("MQTT"), {4, flags}, u16(keepAlive), str(clientID)}, payload...)
	return packet.Frame(0x10, parts...)
}

// rawPublish is a PUBLISH with the given first byte (type and flags), topic as
// raw bytes, and packet identifier when pid is non-zero or qos > 0.
func rawPublish(first byte, topic string, pid uint16, payload string) []byte {
	parts := [][]byte{str(topic)}
	if first&0x06 != 0 {
		parts = append(parts, u16(pid))
	}
	return packet.Frame(first, append(parts, []byte(payload))...)
}

// rawSubscribe is a SUBSCRIBE with the given first byte, packet identifier,
// one filter and its options byte.
func rawSubscribe(first byte, pid uint16, filter string, options byte) []byte {
	return packet.Frame(first, u16(pid), str(filter), []byte{options})
}
