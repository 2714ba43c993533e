package packet

import (
	"encoding/hex"
	"strings"
)

// fixture is one raw packet, written out by hand from the byte layouts in the
// standards, with what decoding it must give. Every codec test and the fuzz
// seeds use this one table.
type fixture struct {
	name    string
	version byte   // Options.Version for decoding (CONNECT decodes by its own level)
	raw     string // hex; spaces and '|' between fields are ignored
	want    Packet // nil when the input is malformed
	// For malformed input: the statement and reason code the *Error carries.
	stmt string
	code byte
	// decodeOnly marks a valid but non-canonical form (MQTT 5 long forms):
	// it decodes to want but re-encodes to the shorter canonical bytes.
	decodeOnly bool
	max        int // Options.MaxPacketSize
}

func (f fixture) bytes() []byte {
	s := strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(f.raw)
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(f.name + ": " + err.Error())
	}
	return b
}

func (f fixture) opt() Options { return Options{Version: f.version, MaxPacketSize: f.max} }

// allFixtures is the shared table: valid packets of both versions, then
// malformed ones.
func allFixtures() []fixture {
	var all []fixture
	all = append(all, fixtures311()...)
	all = append(all, malformed311()...)
	all = append(all, fixtures5()...)
	all = append(all, malformed5()...)
	return all
}

func u8p(v byte) *byte      { return &v }
func u16p(v uint16) *uint16 { return &v }
func u32p(v uint32) *uint32 { return &v }

// fixtures311 are valid MQTT 3.1.1 (and 3.1) packets; layouts from sections
// 3.1 to 3.14 of MQTT 3.1.1.
func fixtures311() []fixture {
	return []fixture{
		{name: "CONNECT 3.1.1 minimal", version: V311,
			// type 1 | rl 14 | "MQTT" | level 4 | flags clean | keep alive 60 | client id "c1"
			raw:  "10 0E | 00 04 4D 51 54 54 | 04 | 02 | 00 3C | 00 02 63 31",
			want: &Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 60, ClientID: "c1"}},
		{name: "CONNECT 3.1.1 will user password", version: V311,
			// flags: user 80 | password 40 | will retain 20 | will QoS 1 08 | will 04 | clean 02 = EE
			raw: "10 1C | 00 04 4D 51 54 54 | 04 | EE | 00 0A | 00 02 63 31 | 00 01 77 | 00 03 62 79 65 | 00 01 75 | 00 01 70",
			want: &Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 10, ClientID: "c1",
				Will:         &Will{Topic: "w", Payload: []byte("bye"), QoS: 1, Retain: true},
				UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("p")}},
		{name: "CONNECT 3.1.1 empty client id, session kept", version: V311,
			raw:  "10 0C | 00 04 4D 51 54 54 | 04 | 00 | 00 00 | 00 00",
			want: &Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: ""}},
		{name: "CONNECT 3.1 MQIsdp", version: V311,
			raw:  "10 10 | 00 06 4D 51 49 73 64 70 | 03 | 02 | 00 3C | 00 02 63 31",
			want: &Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanSession: true, KeepAlive: 60, ClientID: "c1"}},
		{name: "CONNACK accepted", version: V311, raw: "20 02 00 00", want: &Connack{}},
		{name: "CONNACK session present", version: V311, raw: "20 02 01 00", want: &Connack{SessionPresent: true}},
		{name: "CONNACK not authorized", version: V311, raw: "20 02 00 05", want: &Connack{ReturnCode: RefusedNotAuthorized}},
		{name: "PUBLISH QoS 0", version: V311,
			raw:  "30 0A | 00 03 61 2F 62 | 68 65 6C 6C 6F",
			want: &Publish{Topic: "a/b", Payload: []byte("hello")}},
		{name: "PUBLISH QoS 1 dup retain", version: V311,
			raw:  "3B 09 | 00 03 61 2F 62 | 00 07 | 68 69",
			want: &Publish{Dup: true, QoS: 1, Retain: true, Topic: "a/b", PacketID: 7, Payload: []byte("hi")}},
		{name: "PUBLISH QoS 2 empty payload", version: V311,
			raw:  "34 07 | 00 03 61 2F 62 | 00 08",
			want: &Publish{QoS: 2, Topic: "a/b", PacketID: 8, Payload: []byte{}}},
		{name: "PUBLISH topic with BOM kept", version: V311,
			raw:  "30 07 | 00 04 EF BB BF 61 | 7A",
			want: &Publish{Topic: "\uFEFFa", Payload: []byte("z")}},
		{name: "PUBLISH 3.1.1 on a 3.1 connection", version: V31,
			raw:  "30 04 | 00 01 74 | 7A",
			want: &Publish{Topic: "t", Payload: []byte("z")}},
		{name: "PUBACK", version: V311, raw: "40 02 00 07", want: &Puback{PacketID: 7}},
		{name: "PUBREC", version: V311, raw: "50 02 00 07", want: &Pubrec{PacketID: 7}},
		{name: "PUBREL", version: V311, raw: "62 02 00 07", want: &Pubrel{PacketID: 7}},
		{name: "PUBCOMP", version: V311, raw: "70 02 FF FF", want: &Pubcomp{PacketID: 65535}},
		{name: "SUBSCRIBE two filters", version: V311,
			raw:  "82 0C | 00 01 | 00 03 61 2F 2B | 01 | 00 01 23 | 02",
			want: &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/+", QoS: 1}, {Filter: "#", QoS: 2}}}},
		{name: "SUBSCRIBE wildcard forms", version: V311,
			raw:  "82 0B | 00 02 | 00 06 2B 2F 2B 2F 23 2F | 00",
			want: nil, stmt: "MQTT-4.7.1-2", code: CodeTopicFilterInvalid},
		{name: "SUBSCRIBE +/+/#", version: V311,
			raw:  "82 0A | 00 02 | 00 05 2B 2F 2B 2F 23 | 00",
			want: &Subscribe{PacketID: 2, Subscriptions: []Subscription{{Filter: "+/+/#"}}}},
		{name: "SUBACK", version: V311, raw: "90 06 00 01 | 00 01 02 80",
			want: &Suback{PacketID: 1, ReturnCodes: []byte{0, 1, 2, 0x80}}},
		{name: "UNSUBSCRIBE", version: V311,
			raw:  "A2 0A | 00 02 | 00 03 61 2F 2B | 00 01 23",
			want: &Unsubscribe{PacketID: 2, Filters: []string{"a/+", "#"}}},
		{name: "UNSUBACK", version: V311, raw: "B0 02 00 02", want: &Unsuback{PacketID: 2}},
		{name: "PINGREQ", version: V311, raw: "C0 00", want: &Pingreq{}},
		{name: "PINGRESP", version: V311, raw: "D0 00", want: &Pingresp{}},
		{name: "DISCONNECT", version: V311, raw: "E0 00", want: &Disconnect{}},
		{name: "PUBLISH two-byte remaining length", version: V311,
			// rl 130 = 0x82 0x01; topic "t" (3 bytes) + 127 payload bytes
			raw:  "30 82 01 | 00 01 74 |" + strings.Repeat("41", 127),
			want: &Publish{Topic: "t", Payload: []byte(strings.Repeat("A", 127))}},
	}
}

// malformed311 breaks one rule each; stmt is the 3.1.1 statement.
func malformed311() []fixture {
	const cid = "00 04 4D 51 54 54 | 04 |" // "MQTT", level 4
	return []fixture{
		{name: "remaining length of 5 bytes", version: V311, raw: "30 FF FF FF FF 7F", code: CodeMalformed},
		{name: "remaining length not minimal", version: V311, raw: "C0 80 00", code: CodeMalformed},
		{name: "packet type 0", version: V311, raw: "00 00", code: CodeMalformed},
		{name: "AUTH before MQTT 5", version: V311, raw: "F0 00", code: CodeMalformed},
		{name: "topic ill-formed UTF-8", version: V311, raw: "30 05 00 03 61 C3 28", stmt: "MQTT-1.5.3-1", code: CodeMalformed},
		{name: "topic with surrogate", version: V311, raw: "30 05 00 03 ED A0 80", stmt: "MQTT-1.5.3-1", code: CodeMalformed},
		{name: "topic with U+0000", version: V311, raw: "30 05 00 03 61 00 62", stmt: "MQTT-1.5.3-2", code: CodeMalformed},
		{name: "client id with U+0000", version: V311, raw: "10 0E |" + cid + "02 | 00 3C | 00 02 00 31", stmt: "MQTT-1.5.3-2"},
		{name: "CONNACK reserved flags", version: V311, raw: "21 02 00 00", stmt: "MQTT-2.2.2-1", code: CodeMalformed},
		{name: "PINGREQ reserved flags", version: V311, raw: "C8 00", stmt: "MQTT-2.2.2-1"},
		{name: "PUBACK reserved flags", version: V311, raw: "42 02 00 01", stmt: "MQTT-2.2.2-1"},
		{name: "PUBREL flags 0000", version: V311, raw: "60 02 00 07", stmt: "MQTT-3.6.1-1"},
		{name: "SUBSCRIBE flags 0000", version: V311, raw: "80 06 00 01 00 01 23 00", stmt: "MQTT-3.8.1-1"},
		{name: "UNSUBSCRIBE flags 0011", version: V311, raw: "A3 05 00 01 00 01 23", stmt: "MQTT-3.10.1-1"},
		{name: "DISCONNECT reserved flags", version: V311, raw: "E1 00", stmt: "MQTT-3.14.1-1"},
		{name: "PUBLISH QoS 3", version: V311, raw: "36 07 00 03 61 2F 62 00 01", stmt: "MQTT-3.3.1-4", code: CodeMalformed},
		{name: "PUBLISH DUP with QoS 0", version: V311, raw: "38 05 00 03 61 2F 62", stmt: "MQTT-3.3.1-2"},
		{name: "PUBLISH packet id 0", version: V311, raw: "32 07 00 03 61 2F 62 00 00", stmt: "MQTT-2.3.1-1"},
		{name: "SUBSCRIBE packet id 0", version: V311, raw: "82 06 00 00 00 01 23 00", stmt: "MQTT-2.3.1-1"},
		{name: "UNSUBSCRIBE packet id 0", version: V311, raw: "A2 05 00 00 00 01 23", stmt: "MQTT-2.3.1-1"},
		{name: "PUBACK packet id 0", version: V311, raw: "40 02 00 00", stmt: "MQTT-2.3.1-1"},
		{name: "PUBLISH topic with +", version: V311, raw: "30 05 00 03 61 2F 2B", stmt: "MQTT-3.3.2-2", code: CodeTopicNameInvalid},
		{name: "PUBLISH topic with #", version: V311, raw: "30 03 00 01 23", stmt: "MQTT-3.3.2-2"},
		{name: "PUBLISH empty topic", version: V311, raw: "30 03 00 00 7A", stmt: "MQTT-4.7.3-1"},
		{name: "SUBSCRIBE # not last", version: V311, raw: "82 0A 00 01 | 00 05 61 2F 23 2F 62 | 00", stmt: "MQTT-4.7.1-2", code: CodeTopicFilterInvalid},
		{name: "SUBSCRIBE # inside a level", version: V311, raw: "82 07 00 01 | 00 02 61 23 | 00", stmt: "MQTT-4.7.1-2"},
		{name: "SUBSCRIBE + inside a level", version: V311, raw: "82 09 00 01 | 00 04 61 2B 2F 62 | 00", stmt: "MQTT-4.7.1-3"},
		{name: "UNSUBSCRIBE + inside a level", version: V311, raw: "A2 06 00 01 | 00 02 2B 61", stmt: "MQTT-4.7.1-3"},
		{name: "SUBSCRIBE empty filter", version: V311, raw: "82 05 00 01 | 00 00 | 00", stmt: "MQTT-4.7.3-1"},
		{name: "SUBSCRIBE no filters", version: V311, raw: "82 02 00 01", stmt: "MQTT-3.8.3-3"},
		{name: "UNSUBSCRIBE no filters", version: V311, raw: "A2 02 00 01", stmt: "MQTT-3.10.3-2"},
		{name: "SUBSCRIBE reserved QoS bits", version: V311, raw: "82 06 00 01 | 00 01 23 | 04", stmt: "MQTT-3.8.3-4"},
		{name: "SUBSCRIBE QoS 3", version: V311, raw: "82 06 00 01 | 00 01 23 | 03", stmt: "MQTT-3.8.3-4"},
		{name: "SUBSCRIBE options byte missing", version: V311, raw: "82 05 00 01 | 00 01 23", code: CodeMalformed},
		{name: "SUBACK code 3", version: V311, raw: "90 03 00 01 03", stmt: "MQTT-3.9.3-2"},
		{name: "CONNACK return code 6", version: V311, raw: "20 02 00 06", code: CodeMalformed},
		{name: "CONNACK session present with refusal", version: V311, raw: "20 02 01 05", stmt: "MQTT-3.2.2-4"},
		{name: "CONNECT protocol name MQTX", version: V311, raw: "10 0E | 00 04 4D 51 54 58 | 04 | 02 | 00 3C | 00 02 63 31", stmt: "MQTT-3.1.2-1"},
		{name: "CONNECT MQIsdp with level 4", version: V311, raw: "10 10 | 00 06 4D 51 49 73 64 70 | 04 | 02 | 00 3C | 00 02 63 31", stmt: "MQTT-3.1.2-1"},
		{name: "CONNECT reserved flag", version: V311, raw: "10 0E |" + cid + "03 | 00 3C | 00 02 63 31", stmt: "MQTT-3.1.2-3", code: CodeMalformed},
		{name: "CONNECT will QoS without will flag", version: V311, raw: "10 0E |" + cid + "0A | 00 3C | 00 02 63 31", stmt: "MQTT-3.1.2-13"},
		{name: "CONNECT will retain without will flag", version: V311, raw: "10 0E |" + cid + "22 | 00 3C | 00 02 63 31", stmt: "MQTT-3.1.2-15"},
		{name: "CONNECT will QoS 3", version: V311, raw: "10 13 |" + cid + "1E | 00 3C | 00 02 63 31 | 00 01 77 | 00 00", stmt: "MQTT-3.1.2-14"},
		{name: "CONNECT password without user name", version: V311, raw: "10 11 |" + cid + "42 | 00 3C | 00 02 63 31 | 00 01 70", stmt: "MQTT-3.1.2-22"},
		{name: "CONNECT client id missing", version: V311, raw: "10 0A |" + cid + "02 | 00 3C", stmt: "MQTT-3.1.3-3"},
		{name: "CONNECT will fields missing", version: V311, raw: "10 0E |" + cid + "06 | 00 3C | 00 02 63 31", stmt: "MQTT-3.1.2-9"},
		{name: "CONNECT will message missing", version: V311, raw: "10 11 |" + cid + "06 | 00 3C | 00 02 63 31 | 00 01 77", code: CodeMalformed},
		{name: "CONNECT will topic with wildcard", version: V311, raw: "10 13 |" + cid + "06 | 00 3C | 00 02 63 31 | 00 01 23 | 00 00", stmt: "MQTT-3.3.2-2"},
		{name: "CONNECT user name missing", version: V311, raw: "10 0E |" + cid + "82 | 00 3C | 00 02 63 31", stmt: "MQTT-3.1.2-19"},
		{name: "CONNECT password missing", version: V311, raw: "10 11 |" + cid + "C2 | 00 3C | 00 02 63 31 | 00 01 75", stmt: "MQTT-3.1.2-21"},
		{name: "CONNECT user name not flagged", version: V311, raw: "10 11 |" + cid + "02 | 00 3C | 00 02 63 31 | 00 01 75", stmt: "MQTT-3.1.2-18"},
		{name: "CONNECT password not flagged", version: V311, raw: "10 14 |" + cid + "82 | 00 3C | 00 02 63 31 | 00 01 75 | 00 01 70", stmt: "MQTT-3.1.2-20"},
		{name: "CONNECT client id runs past the packet", version: V311, raw: "10 0E |" + cid + "02 | 00 3C | 00 09 63 31", code: CodeMalformed},
		{name: "PINGREQ trailing byte", version: V311, raw: "C0 01 00", code: CodeMalformed},
		{name: "PUBACK 3.1.1 trailing byte", version: V311, raw: "40 03 00 07 00", code: CodeMalformed},
		{name: "UNSUBACK 3.1.1 trailing byte", version: V311, raw: "B0 03 00 07 00", code: CodeMalformed},
		{name: "CONNACK 3.1.1 trailing byte", version: V311, raw: "20 03 00 00 00", code: CodeMalformed},
		{name: "DISCONNECT 3.1.1 trailing byte", version: V311, raw: "E0 01 00", code: CodeMalformed},
		{name: "PUBLISH topic runs past the packet", version: V311, raw: "30 05 00 09 61 2F 62", code: CodeMalformed},
		{name: "PUBLISH packet id cut off", version: V311, raw: "32 06 00 03 61 2F 62 00", code: CodeMalformed},
		{name: "PUBLISH over MaxPacketSize", version: V311, max: 11, raw: "30 0A | 00 03 61 2F 62 | 68 65 6C 6C 6F", code: CodePacketTooLarge},
		{name: "CONNECT unsupported level 6", version: V311, raw: "10 0E | 00 04 4D 51 54 54 | 06 | 02 | 00 3C | 00 02 63 31",
			stmt: "MQTT-3.1.2-2", code: CodeUnsupportedVersion},
	}
}
