package conformance

import "github.com/mqttfleet/mqttfleet/packet"

// malformed is one packet a broker must answer by closing the connection.
type malformed struct {
	text       string
	statements []string
	bytes      func(e *env) []byte
}

var malformedPackets = []malformed{
	{"a PINGREQ with a reserved flag bit set", []string{"MQTT-2.2.2-2", "MQTT-4.8.0-1"},
		func(*env) []byte { return []byte{0xC1, 0x00} }},
	{"a PUBACK with a reserved flag bit set", []string{"MQTT-2.2.2-2"},
		func(*env) []byte { return []byte{0x42, 0x02, 0x00, 0x01} }},
	{"a PUBREL with flags 0000 instead of 0010", []string{"MQTT-3.6.1-1", "MQTT-2.2.2-2"},
		func(*env) []byte { return []byte{0x60, 0x02, 0x00, 0x01} }},
	{"a SUBSCRIBE with flags 0000 instead of 0010", []string{"MQTT-3.8.1-1", "MQTT-2.2.2-2"},
		func(e *env) []byte { return rawSubscribe(0x80, 1, e.topic("f"), 0) }},
	{"an UNSUBSCRIBE with flags 0000 instead of 0010", []string{"MQTT-3.10.1-1", "MQTT-2.2.2-2"},
		func(e *env) []byte { return packet.Frame(0xA0, u16(1), str(e.topic("f"))) }},
	{"a DISCONNECT with a reserved flag bit set", []string{"MQTT-3.14.1-1", "MQTT-2.2.2-2"},
		func(*env) []byte { return []byte{0xE1, 0x00} }},
	{"a PUBLISH with QoS 3", []string{"MQTT-3.3.1-4"},
		func(e *env) []byte { return rawPublish(0x36, e.topic("q3"), 1, "x") }},
	{"a QoS 1 PUBLISH with packet identifier 0", []string{"MQTT-2.3.1-1"},
		func(e *env) []byte { return rawPublish(0x32, e.topic("id0"), 0, "x") }},
	{"a SUBSCRIBE with packet identifier 0", []string{"MQTT-2.3.1-1"},
		func(e *env) []byte { return rawSubscribe(0x82, 0, e.topic("id0"), 0) }},
	{"an UNSUBSCRIBE with packet identifier 0", []string{"MQTT-2.3.1-1"},
		func(e *env) []byte { return packet.Frame(0xA2, u16(0), str(e.topic("id0"))) }},
	{"a SUBSCRIBE requesting QoS 3", []string{"MQTT-3.8.3-4"},
		func(e *env) []byte { return rawSubscribe(0x82, 1, e.topic("q3"), 3) }},
	{"a SUBSCRIBE with reserved bits set in the options byte", []string{"MQTT-3.8.3-4"},
		func(e *env) []byte { return rawSubscribe(0x82, 1, e.topic("rsv"), 0x04) }},
	{"a PUBLISH with a remaining length longer than four bytes", []string{"MQTT-4.8.0-1"},
		func(*env) []byte { return []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01} }},
	{"a PUBLISH whose topic length runs past the remaining length", []string{"MQTT-4.8.0-1"},
		func(*env) []byte { return []byte{0x30, 0x03, 0x00, 0x10, 'a'} }},
	{"a packet of reserved type 0", []string{"MQTT-4.8.0-1"},
		func(*env) []byte { return []byte{0x00, 0x00} }},
	{"a QoS 0 PUBLISH with DUP set", []string{"MQTT-3.3.1-2", "MQTT-4.8.0-1"},
		func(e *env) []byte { return rawPublish(0x38, e.topic("dup0"), 0, "x") }},
	{"a QoS 2 PUBLISH with packet identifier 0", []string{"MQTT-2.3.1-1"},
		func(e *env) []byte { return rawPublish(0x34, e.topic("id0"), 0, "x") }},
	{"a SUBSCRIBE with no topic filter", []string{"MQTT-3.8.3-3", "MQTT-4.8.0-1"},
		func(*env) []byte { return packet.Frame(0x82, u16(1)) }},
	{"an UNSUBSCRIBE with no topic filter", []string{"MQTT-3.10.3-2", "MQTT-4.8.0-1"},
		func(*env) []byte { return packet.Frame(0xA2, u16(1)) }},
	{"a PINGREQ with bytes after its fixed header", []string{"MQTT-4.8.0-1"},
		func(*env) []byte { return []byte{0xC0, 0x01, 0x00} }},
	{"a CONNACK sent by a client", []string{"MQTT-4.8.0-1"},
		func(*env) []byte { return []byte{0x20, 0x02, 0x00, 0x00} }},
	{"a SUBACK sent by a client", []string{"MQTT-4.8.0-1"},
		func(*env) []byte { return packet.Frame(0x90, u16(1), []byte{0}) }},
}

func init() {
	for _, m := range malformedPackets {
		m := m
		register(specDef{
			Area: "malformed", Text: "closes the connection on " + m.text,
			Statements: m.statements,
			Body: func(e *env) {
				r := e.client("bad")
				e.sendBytes(r, m.bytes(e))
				e.closed(r)
			},
		})
	}
}
