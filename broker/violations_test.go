package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/auth"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Raw byte builders: the packets below are what a broken client sends, so
// they are written byte by byte, not through the encoder (which refuses
// most of them).

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// mstr is an MQTT string: two-byte length, then the bytes as given (which
// may be ill-formed UTF-8 on purpose).
func mstr(s string) []byte { return append(be16(uint16(len(s))), s...) }

// rawConnect is a CONNECT with the given flags byte and payload fields;
// name "" means "MQTT" level 4.
func rawConnect(name string, level, flags byte, fields ...[]byte) []byte {
	if name == "" {
		name, level = "MQTT", packet.V311
	}
	return packet.Frame(0x10, append([][]byte{mstr(name), {level, flags}, be16(60)}, fields...)...)
}

// violationCase is a byte sequence a client gets wrong and that the broker
// must answer by closing the connection, sending nothing, with a violation
// event naming statement.
type violationCase struct {
	name      string
	asConnect bool // bytes are the first packet, not sent after a valid CONNECT
	bytes     []byte
	statement string
	changed   bool // before #21 the violation event named no statement
}

// violationCases covers every server-side close statement of 3.1.1 that a
// client can trigger with one packet; docs/broker.md "Connections" lists
// them.
var violationCases = []violationCase{
	// CONNECT [MQTT-3.1.4-1]: any fault closes without CONNACK.
	{name: "CONNECT reserved flag", asConnect: true, bytes: rawConnect("", 0, 0x03, mstr("c")), statement: "MQTT-3.1.2-3"},
	{name: "CONNECT will QoS 1 without will flag", asConnect: true, bytes: rawConnect("", 0, 0x0A, mstr("c")), statement: "MQTT-3.1.2-13"},
	{name: "CONNECT will retain without will flag", asConnect: true, bytes: rawConnect("", 0, 0x22, mstr("c")), statement: "MQTT-3.1.2-15"},
	{name: "CONNECT will QoS 3", asConnect: true, bytes: rawConnect("", 0, 0x1E, mstr("c"), mstr("w"), mstr("m")), statement: "MQTT-3.1.2-14"},
	{name: "CONNECT password without user name", asConnect: true, bytes: rawConnect("", 0, 0x42, mstr("c"), mstr("pw")), statement: "MQTT-3.1.2-22"},
	{name: "CONNECT client ID ill-formed UTF-8", asConnect: true, bytes: rawConnect("", 0, 0x02, mstr("c\xff")), statement: "MQTT-1.5.3-1"},
	{name: "CONNECT client ID UTF-16 surrogate", asConnect: true, bytes: rawConnect("", 0, 0x02, mstr("c\xed\xa0\x80")), statement: "MQTT-1.5.3-1"},
	{name: "CONNECT client ID U+0000", asConnect: true, bytes: rawConnect("", 0, 0x02, mstr("c\x00d")), statement: "MQTT-1.5.3-2"},
	{name: "CONNECT user name U+0000", asConnect: true, bytes: rawConnect("", 0, 0x82, mstr("c"), mstr("u\x00")), statement: "MQTT-1.5.3-2"},
	{name: "CONNECT will topic with wildcard", asConnect: true, bytes: rawConnect("", 0, 0x06, mstr("c"), mstr("w/+"), mstr("m")), statement: "MQTT-3.3.2-2"},
	{name: "CONNECT empty will topic", asConnect: true, bytes: rawConnect("", 0, 0x06, mstr("c"), mstr(""), mstr("m")), statement: "MQTT-4.7.3-1"},
	{name: "CONNECT user name flag without user name", asConnect: true, bytes: rawConnect("", 0, 0x82, mstr("c")), statement: "MQTT-3.1.2-19"},
	{name: "CONNECT field the flags do not announce", asConnect: true, bytes: rawConnect("", 0, 0x02, mstr("c"), mstr("u")), statement: "MQTT-3.1.2-18"},
	{name: "CONNECT fixed-header flags", asConnect: true, bytes: append([]byte{0x11}, rawConnect("", 0, 0x02, mstr("c"))[1:]...), statement: "MQTT-2.2.2-1"},
	{name: "CONNECT name MQTT with level 3", asConnect: true, bytes: rawConnect("MQTT", 3, 0x02, mstr("c")), statement: "MQTT-3.1.2-1"},
	{name: "CONNECT name MQIsdp with level 4", asConnect: true, bytes: rawConnect("MQIsdp", 4, 0x02, mstr("c")), statement: "MQTT-3.1.2-1"},
	{name: "CONNECT cut short by its remaining length", asConnect: true, bytes: []byte{0x10, 0x04, 0x00, 0x04, 'M', 'Q'}, statement: "MQTT-3.1.4-1", changed: true},
	{name: "first packet PINGREQ", asConnect: true, bytes: []byte{0xC0, 0x00}, statement: "MQTT-3.1.0-1"},

	// After CONNECT.
	{name: "second CONNECT", bytes: rawConnect("", 0, 0x02, mstr("c2")), statement: "MQTT-3.1.0-2"},
	{name: "PUBLISH QoS 3", bytes: packet.Frame(0x36, mstr("t"), be16(1)), statement: "MQTT-3.3.1-4"},
	{name: "PUBLISH QoS 0 with DUP", bytes: packet.Frame(0x38, mstr("t"), []byte("x")), statement: "MQTT-3.3.1-2"},
	{name: "PUBLISH QoS 1 packet ID 0", bytes: packet.Frame(0x32, mstr("t"), be16(0)), statement: "MQTT-2.3.1-1"},
	{name: "PUBLISH QoS 2 packet ID 0", bytes: packet.Frame(0x34, mstr("t"), be16(0)), statement: "MQTT-2.3.1-1"},
	{name: "PUBLISH topic +", bytes: packet.Frame(0x30, mstr("a/+/b")), statement: "MQTT-3.3.2-2"},
	{name: "PUBLISH topic #", bytes: packet.Frame(0x30, mstr("a/#")), statement: "MQTT-3.3.2-2"},
	{name: "PUBLISH empty topic", bytes: packet.Frame(0x30, mstr(""), []byte("x")), statement: "MQTT-4.7.3-1"},
	{name: "PUBLISH topic ill-formed UTF-8", bytes: packet.Frame(0x30, mstr("a\xc0\xafb")), statement: "MQTT-1.5.3-1"},
	{name: "PUBLISH topic U+0000", bytes: packet.Frame(0x30, mstr("a\x00b")), statement: "MQTT-1.5.3-2"},
	{name: "PUBLISH topic runs past remaining length", bytes: []byte{0x30, 0x03, 0x00, 0x10, 'a'}, statement: "MQTT-4.8.0-1", changed: true},
	{name: "SUBSCRIBE requested QoS 3", bytes: packet.Frame(0x82, be16(1), mstr("f"), []byte{3}), statement: "MQTT-3.8.3-4"},
	{name: "SUBSCRIBE reserved option bits", bytes: packet.Frame(0x82, be16(1), mstr("f"), []byte{0x04}), statement: "MQTT-3.8.3-4"},
	{name: "SUBSCRIBE reserved bits of a second filter", bytes: packet.Frame(0x82, be16(1), mstr("f"), []byte{1}, mstr("g"), []byte{0x81}), statement: "MQTT-3.8.3-4"},
	{name: "SUBSCRIBE no filters", bytes: packet.Frame(0x82, be16(1)), statement: "MQTT-3.8.3-3"},
	{name: "SUBSCRIBE packet ID 0", bytes: packet.Frame(0x82, be16(0), mstr("f"), []byte{0}), statement: "MQTT-2.3.1-1"},
	{name: "SUBSCRIBE filter without requested QoS", bytes: packet.Frame(0x82, be16(1), mstr("f")), statement: "MQTT-4.8.0-1", changed: true},
	{name: "SUBSCRIBE filter U+0000", bytes: packet.Frame(0x82, be16(1), mstr("f\x00"), []byte{0}), statement: "MQTT-1.5.3-2"},
	{name: "UNSUBSCRIBE no filters", bytes: packet.Frame(0xA2, be16(1)), statement: "MQTT-3.10.3-2"},
	{name: "UNSUBSCRIBE packet ID 0", bytes: packet.Frame(0xA2, be16(0), mstr("f")), statement: "MQTT-2.3.1-1"},
	{name: "UNSUBSCRIBE filter ill-formed UTF-8", bytes: packet.Frame(0xA2, be16(1), mstr("\xff")), statement: "MQTT-1.5.3-1"},
	{name: "PUBACK packet ID 0", bytes: packet.Frame(0x40, be16(0)), statement: "MQTT-2.3.1-1"},
	{name: "PUBREC packet ID 0", bytes: packet.Frame(0x50, be16(0)), statement: "MQTT-2.3.1-1"},
	{name: "PUBREL packet ID 0", bytes: packet.Frame(0x62, be16(0)), statement: "MQTT-2.3.1-1"},
	{name: "PUBCOMP packet ID 0", bytes: packet.Frame(0x70, be16(0)), statement: "MQTT-2.3.1-1"},
	{name: "PUBACK remaining length 3", bytes: packet.Frame(0x40, be16(1), []byte{0}), statement: "MQTT-4.8.0-1", changed: true},
	{name: "PUBREL remaining length 1", bytes: packet.Frame(0x62, []byte{1}), statement: "MQTT-4.8.0-1", changed: true},
	{name: "PINGREQ remaining length 1", bytes: packet.Frame(0xC0, []byte{0}), statement: "MQTT-4.8.0-1", changed: true},
	{name: "DISCONNECT remaining length 1", bytes: packet.Frame(0xE0, []byte{0}), statement: "MQTT-4.8.0-1", changed: true},
	{name: "remaining length of five bytes", bytes: []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, statement: "MQTT-4.8.0-1", changed: true},
	{name: "PUBACK flags", bytes: packet.Frame(0x41, be16(1)), statement: "MQTT-2.2.2-1"},
	{name: "PUBREC flags", bytes: packet.Frame(0x52, be16(1)), statement: "MQTT-2.2.2-1"},
	{name: "PUBREL flags 0000", bytes: packet.Frame(0x60, be16(1)), statement: "MQTT-3.6.1-1"},
	{name: "PUBCOMP flags", bytes: packet.Frame(0x78, be16(1)), statement: "MQTT-2.2.2-1"},
	{name: "SUBSCRIBE flags 0000", bytes: packet.Frame(0x80, be16(1), mstr("f"), []byte{0}), statement: "MQTT-3.8.1-1"},
	{name: "UNSUBSCRIBE flags 0011", bytes: packet.Frame(0xA3, be16(1), mstr("f")), statement: "MQTT-3.10.1-1"},
	{name: "PINGREQ flags", bytes: []byte{0xC1, 0x00}, statement: "MQTT-2.2.2-1"},
	{name: "DISCONNECT flags", bytes: []byte{0xE4, 0x00}, statement: "MQTT-3.14.1-1"},
	{name: "reserved type 0", bytes: []byte{0x00, 0x00}, statement: "MQTT-4.8.0-1", changed: true},
	{name: "reserved type 15", bytes: []byte{0xF0, 0x00}, statement: "MQTT-4.8.0-1", changed: true},
	{name: "CONNACK from a client", bytes: []byte{0x20, 0x02, 0x00, 0x00}, statement: "MQTT-4.8.0-1"},
	{name: "SUBACK from a client", bytes: packet.Frame(0x90, be16(1), []byte{0}), statement: "MQTT-4.8.0-1"},
	{name: "UNSUBACK from a client", bytes: packet.Frame(0xB0, be16(1)), statement: "MQTT-4.8.0-1"},
	{name: "PINGRESP from a client", bytes: []byte{0xD0, 0x00}, statement: "MQTT-4.8.0-1"},
}

// TestViolationsClose sends each violation to the broker over a real socket,
// as a 3.1.1 client and again as a 3.1 (MQIsdp) client, and checks that the
// connection closes with no reply and that a violation event names the
// statement.
func TestViolationsClose(t *testing.T) {
	tb := startBroker(t, nil)
	for _, level := range []byte{packet.V311, packet.V31} {
		for _, tc := range violationCases {
			if level == packet.V31 && tc.asConnect {
				continue // CONNECT is decoded by its own level; the cases above are 3.1.1 CONNECTs
			}
			name := map[byte]string{packet.V311: "3.1.1/", packet.V31: "3.1/"}[level] + tc.name
			t.Run(name, func(t *testing.T) {
				id := strings.NewReplacer(" ", "-", "/", "-").Replace(name)
				var r *client.Raw
				if tc.asConnect {
					r = client.NewRaw(tb.dial(t), packet.V311)
				} else {
					cp := &packet.Connect{ClientID: id, CleanSession: true}
					if level == packet.V31 {
						cp.ProtocolName, cp.ProtocolLevel = "MQIsdp", packet.V31
					}
					r, _ = tb.raw(t, cp, 0)
				}
				if err := r.WriteBytes(tc.bytes); err != nil {
					t.Fatal(err)
				}
				if err := r.ExpectClosed(5 * time.Second); err != nil {
					t.Fatalf("% x: %v", tc.bytes, err)
				}
				e := tb.violationOf(t, r)
				if e.Statement != tc.statement {
					t.Errorf("violation names %q (%s), want %q (changed in #21: %v)", e.Statement, e.Detail, tc.statement, tc.changed)
				}
			})
		}
	}
}

// violationOf waits for the violation event of the connection r.
func (tb *testBroker) violationOf(t *testing.T, r *client.Raw) events.Event {
	t.Helper()
	local := r.Conn().LocalAddr().String()
	return tb.wait(t, func(e events.Event) bool { return e.Kind == events.Violation && e.Remote == local })
}

// TestMisfitAckCloses: an acknowledgement that does not fit the outgoing
// message holding its packet ID breaks the QoS flow [MQTT-4.3.2-2]
// [MQTT-4.3.3-2], a protocol violation the broker closes on [MQTT-4.8.0-1],
// as Mosquitto does. Before #21 the broker ignored it (PUBACK, PUBCOMP) or
// answered PUBREL (PUBREC) and left the message in flight.
func TestMisfitAckCloses(t *testing.T) {
	tb := startBroker(t, nil)
	pub := tb.connect(t, "misfit-pub")
	for i, tc := range []struct {
		name      string
		qos       byte
		pubrec    bool // answer the QoS 2 delivery with PUBREC first and read PUBREL
		ack       byte // first byte of the misfit acknowledgement
		statement string
	}{
		{"PUBACK for QoS 2", 2, false, 0x40, "MQTT-4.3.3-2"},
		{"PUBACK for QoS 2 after PUBREL", 2, true, 0x40, "MQTT-4.3.3-2"},
		{"PUBCOMP for QoS 2 before PUBREL", 2, false, 0x70, "MQTT-4.3.3-2"},
		{"PUBREC for QoS 1", 1, false, 0x50, "MQTT-4.3.2-2"},
		{"PUBCOMP for QoS 1", 1, false, 0x70, "MQTT-4.3.2-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("misfit/%d", i)
			r := tb.connect(t, "misfit-"+strings.ReplaceAll(tc.name, " ", "-"))
			subscribe(t, r, sub(topic, 2))
			publish(t, pub, &packet.Publish{Topic: topic, QoS: tc.qos, PacketID: uint16(i + 1), Payload: []byte("x")})
			m := expect[*packet.Publish](t, r)
			if tc.pubrec {
				if err := r.WritePacket(&packet.Pubrec{PacketID: m.PacketID}); err != nil {
					t.Fatal(err)
				}
				expect[*packet.Pubrel](t, r)
			}
			if err := r.WriteBytes(packet.Frame(tc.ack, be16(m.PacketID))); err != nil {
				t.Fatal(err)
			}
			if err := r.ExpectClosed(5 * time.Second); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if e := tb.violationOf(t, r); e.Statement != tc.statement {
				t.Errorf("violation names %q (%s), want %q", e.Statement, e.Detail, tc.statement)
			}
		})
	}
}

// TestGentleAnswers: what a client gets wrong that the broker answers other
// than by closing, each allowed by the statement docs/broker.md names
// ("Answers other than closing"). Each case ends with PINGREQ: PINGRESP
// must be the next packet after the documented answer, which shows both
// that nothing else was sent and that the connection is still up.
func TestGentleAnswers(t *testing.T) {
	acl := writeACL(t)
	tb := startBroker(t, func(c *Config) {
		c.Auth = auth.Config{AllowAnonymous: true, ACLFile: acl}
		c.MaxTopicLength = 64
	})
	long := strings.Repeat("l", 65)
	alive := func(t *testing.T, r *client.Raw) {
		t.Helper()
		if err := r.WriteBytes([]byte{0xC0, 0x00}); err != nil {
			t.Fatal(err)
		}
		expect[*packet.Pingresp](t, r)
	}
	send := func(t *testing.T, r *client.Raw, b []byte) {
		t.Helper()
		if err := r.WriteBytes(b); err != nil {
			t.Fatal(err)
		}
	}
	asUser := func(t *testing.T, user, id string) *client.Raw {
		r, _ := tb.raw(t, &packet.Connect{ClientID: id, CleanSession: true, UsernameFlag: true, Username: user}, 0)
		return r
	}

	t.Run("PUBACK for an unknown packet ID is ignored", func(t *testing.T) {
		r := tb.connect(t, "g-puback")
		send(t, r, packet.Frame(0x40, be16(77)))
		alive(t, r)
	})
	t.Run("PUBCOMP for an unknown packet ID is ignored", func(t *testing.T) {
		r := tb.connect(t, "g-pubcomp")
		send(t, r, packet.Frame(0x70, be16(77)))
		alive(t, r)
	})
	t.Run("PUBREC for an unknown packet ID is answered PUBREL", func(t *testing.T) {
		r := tb.connect(t, "g-pubrec")
		send(t, r, packet.Frame(0x50, be16(77)))
		if p := expect[*packet.Pubrel](t, r); p.PacketID != 77 {
			t.Fatalf("PUBREL %d, want 77", p.PacketID)
		}
		alive(t, r)
	})
	t.Run("PUBREL for an unknown packet ID is answered PUBCOMP", func(t *testing.T) {
		r := tb.connect(t, "g-pubrel")
		send(t, r, packet.Frame(0x62, be16(77)))
		if p := expect[*packet.Pubcomp](t, r); p.PacketID != 77 {
			t.Fatalf("PUBCOMP %d, want 77", p.PacketID)
		}
		alive(t, r)
	})
	t.Run("PUBREC resent after PUBREL is answered PUBREL again", func(t *testing.T) {
		r := asUser(t, "sub", "g-pubrec-again")
		subscribe(t, r, sub("gentle/q2", 2))
		publish(t, asUser(t, "pub", "g-pubrec-pub"), &packet.Publish{Topic: "gentle/q2", QoS: 2, PacketID: 9, Payload: []byte("x")})
		m := expect[*packet.Publish](t, r)
		for range 2 {
			send(t, r, packet.Frame(0x50, be16(m.PacketID)))
			expect[*packet.Pubrel](t, r)
		}
		send(t, r, packet.Frame(0x70, be16(m.PacketID)))
		alive(t, r)
	})
	t.Run("QoS 2 PUBLISH reusing an ID before PUBREL is answered PUBREC and not routed again", func(t *testing.T) {
		w := asUser(t, "sub", "g-reuse-watch")
		subscribe(t, w, sub("gentle/reuse", 0))
		r := asUser(t, "pub", "g-reuse")
		for _, payload := range []string{"first", "second"} {
			send(t, r, packet.Frame(0x34, mstr("gentle/reuse"), be16(5), []byte(payload)))
			if p := expect[*packet.Pubrec](t, r); p.PacketID != 5 {
				t.Fatalf("PUBREC %d, want 5", p.PacketID)
			}
		}
		send(t, r, packet.Frame(0x62, be16(5)))
		expect[*packet.Pubcomp](t, r)
		alive(t, r)
		// A QoS 1 marker published after both: it must be the next message.
		publish(t, r, &packet.Publish{Topic: "gentle/reuse", QoS: 1, PacketID: 6, Payload: []byte("marker")})
		if p := expect[*packet.Publish](t, w); string(p.Payload) != "first" {
			t.Fatalf("got %q, want first", p.Payload)
		}
		if p := expect[*packet.Publish](t, w); string(p.Payload) != "marker" {
			t.Fatalf("got %q after the first, want marker: the reused ID was routed again", p.Payload)
		}
	})
	t.Run("PUBLISH the ACL denies is acknowledged and dropped", func(t *testing.T) {
		r := asUser(t, "sub", "g-acl-pub")
		send(t, r, packet.Frame(0x32, mstr("gentle/denied"), be16(3), []byte("x")))
		if p := expect[*packet.Puback](t, r); p.PacketID != 3 {
			t.Fatalf("PUBACK %d, want 3", p.PacketID)
		}
		tb.wait(t, events.And(events.Is(events.Drop), events.ForClient("g-acl-pub"),
			func(e events.Event) bool { return e.Cause == events.CauseNotAuthorized }))
		alive(t, r)
	})
	t.Run("PUBLISH over max_topic_length is acknowledged and dropped", func(t *testing.T) {
		r := asUser(t, "pub", "g-limit-pub")
		send(t, r, packet.Frame(0x34, mstr(long), be16(4), []byte("x")))
		expect[*packet.Pubrec](t, r)
		send(t, r, packet.Frame(0x62, be16(4)))
		expect[*packet.Pubcomp](t, r)
		tb.wait(t, events.And(limitDrop(limitTopicLength), events.ForClient("g-limit-pub")))
		alive(t, r)
	})
	t.Run("SUBSCRIBE the ACL denies or over max_topic_length gets SUBACK 0x80", func(t *testing.T) {
		r := asUser(t, "pub", "g-sub-refused")
		codes := subscribe(t, r, sub("gentle/x", 1), sub(long, 0))
		if codes[0] != packet.SubackFailure || codes[1] != packet.SubackFailure {
			t.Fatalf("SUBACK %#v, want 0x80 0x80", codes)
		}
		alive(t, r)
	})
	t.Run("empty client ID with clean session gets an assigned ID", func(t *testing.T) {
		for _, cp := range []*packet.Connect{
			{CleanSession: true},
			{ProtocolName: "MQIsdp", ProtocolLevel: packet.V31, CleanSession: true},
		} {
			alive(t, func() *client.Raw { r, _ := tb.raw(t, cp, 0); return r }())
		}
	})
	t.Run("client ID beyond 23 bytes and [0-9a-zA-Z] is accepted", func(t *testing.T) {
		for _, cp := range []*packet.Connect{
			{ClientID: "a-client-id-of-more-than-23-bytes/ü", CleanSession: true},
			{ProtocolName: "MQIsdp", ProtocolLevel: packet.V31, ClientID: "a-3.1-client-id-of-more-than-23-bytes", CleanSession: true},
		} {
			alive(t, func() *client.Raw { r, _ := tb.raw(t, cp, 0); return r }())
		}
	})
}
