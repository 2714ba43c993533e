package broker

import (
	"context"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Tests of the MQTT 5.0 knobs of server5.go and alias_out.go, over real
// sockets: Topic Aliases the broker sends, Server Keep Alive, Response
// Information, Maximum QoS and Retain Available.

func intp(v int) *int    { return &v }
func boolp(v bool) *bool { return &v }
func bytep(v byte) *byte { return &v }

// aliasClient connects a raw 5.0 client giving Topic Alias Maximum tam
// (nil: none) and subscribes it to filter at qos.
func (tb *testBroker) aliasClient(t *testing.T, id string, tam *uint16, filter string, qos byte) *client.Raw {
	t.Helper()
	r, _ := tb.raw5(t, &packet.Connect{ClientID: id, CleanSession: true, Props: &packet.Properties{TopicAliasMaximum: tam}}, 0)
	subscribe(t, r, sub(filter, qos))
	return r
}

// wireTopic reads the next PUBLISH as it came on the wire and returns its
// topic and Topic Alias (0: none), acknowledging a QoS 1 one.
func wireTopic(t *testing.T, r *client.Raw) (string, uint16) {
	t.Helper()
	m := expect[*packet.Publish](t, r)
	if m.QoS == 1 {
		if err := r.WritePacket(&packet.Puback{PacketID: m.PacketID}); err != nil {
			t.Fatal(err)
		}
	}
	if m.Props == nil || m.Props.TopicAlias == nil {
		return m.Topic, 0
	}
	return m.Topic, *m.Props.TopicAlias
}

// TestV5ServerTopicAliases checks the alias policy: the first distinct
// topics get aliases 1..min(topic_alias_out, client's maximum)
// [MQTT-3.1.2-26] [MQTT-3.3.2-11], never 0 [MQTT-3.3.2-8]; the first
// PUBLISH carries topic and alias, later ones the alias alone; topics past
// the last alias, and topics under 4 bytes, go out in full. Clients that
// gave no maximum or 0 get none [MQTT-3.1.2-27], nor does anyone with
// topic_alias_out 0; a new connection starts without aliases [MQTT-3.3.2-7].
func TestV5ServerTopicAliases(t *testing.T) {
	tb := startBroker(t, nil)
	two := tb.aliasClient(t, "sa-two", u16(2), "sa/#", 1)
	none := tb.aliasClient(t, "sa-none", nil, "sa/#", 0)
	zero := tb.aliasClient(t, "sa-zero", u16(0), "sa/#", 0)
	pub := tb.connect5(t, "sa-pub")

	type wire struct {
		topic string
		alias uint16
	}
	steps := []struct {
		topic string
		qos   byte
		want  wire // what the client with maximum 2 sees
	}{
		{"sa/one", 0, wire{"sa/one", 1}},
		{"sa/one", 1, wire{"", 1}},
		{"sa/two", 1, wire{"sa/two", 2}},
		{"sa/three", 0, wire{"sa/three", 0}}, // both aliases taken
		{"sa/two", 0, wire{"", 2}},
		{"sa/one", 0, wire{"", 1}},
		{"sa/three", 1, wire{"sa/three", 0}},
	}
	for i, s := range steps {
		publish(t, pub, &packet.Publish{Topic: s.topic, QoS: s.qos, PacketID: uint16(i + 1), Payload: []byte("x")})
		if topic, alias := wireTopic(t, two); topic != s.want.topic || alias != s.want.alias {
			t.Errorf("step %d (%s): got topic %q alias %d, want %q alias %d", i, s.topic, topic, alias, s.want.topic, s.want.alias)
		}
		for name, r := range map[string]*client.Raw{"no maximum": none, "maximum 0": zero} {
			if topic, alias := wireTopic(t, r); topic != s.topic || alias != 0 {
				t.Errorf("step %d, client with %s: got topic %q alias %d", i, name, topic, alias)
			}
		}
	}

	// A new connection of the same client starts afresh: alias 1 again,
	// with its topic.
	_ = two.Close()
	tb.wait(t, disconnectOf("sa-two"))
	two = tb.aliasClient(t, "sa-two", u16(2), "sa/#", 0)
	publish(t, pub, &packet.Publish{Topic: "sa/two", Payload: []byte("y")})
	if topic, alias := wireTopic(t, two); topic != "sa/two" || alias != 1 {
		t.Errorf("after reconnecting: got topic %q alias %d, want %q alias 1", topic, alias, "sa/two")
	}

	// Short topics get no alias: the alias-only form would not be shorter.
	short := tb.aliasClient(t, "sa-short", u16(5), "s/+", 0)
	for range 2 {
		publish(t, pub, &packet.Publish{Topic: "s/a", Payload: []byte("z")})
		if topic, alias := wireTopic(t, short); topic != "s/a" || alias != 0 {
			t.Errorf("short topic: got topic %q alias %d", topic, alias)
		}
	}
}

// TestV5ServerTopicAliasConfig checks topic_alias_out: it caps the aliases
// below a larger client maximum, and 0 turns them off.
func TestV5ServerTopicAliasConfig(t *testing.T) {
	for _, tc := range []struct {
		out   int
		wants []uint16 // aliases of the first PUBLISHes on three topics
	}{
		{1, []uint16{1, 0, 0}},
		{0, []uint16{0, 0, 0}},
	} {
		tb := startBroker(t, func(c *Config) { c.TopicAliasOut = tc.out })
		r := tb.aliasClient(t, "cfg-sub", u16(100), "cfg/#", 0)
		pub := tb.connect5(t, "cfg-pub")
		for i, topic := range []string{"cfg/a", "cfg/b", "cfg/c"} {
			publish(t, pub, &packet.Publish{Topic: topic, Payload: []byte("x")})
			if got, alias := wireTopic(t, r); got != topic || alias != tc.wants[i] {
				t.Errorf("topic_alias_out %d, %s: got topic %q alias %d, want alias %d", tc.out, topic, got, alias, tc.wants[i])
			}
		}
	}
}

// TestV5ServerTopicAliasMaxPacketSize checks that a first use of an alias
// never pushes a PUBLISH over the client's Maximum Packet Size: a message
// that fits only without the 3-byte property goes out in full, and the
// alias stays free for the next message on the topic that fits with it.
func TestV5ServerTopicAliasMaxPacketSize(t *testing.T) {
	tb := startBroker(t, nil)
	const topic = "mps/topic"
	big := make([]byte, 20)
	// Fixed header 2, topic 2+9, property length 1, payload: fits exactly.
	limit := uint32(2 + 2 + len(topic) + 1 + len(big))
	r, _ := tb.raw5(t, &packet.Connect{ClientID: "mps-sub", CleanSession: true,
		Props: &packet.Properties{TopicAliasMaximum: u16(3), MaximumPacketSize: &limit}}, 0)
	subscribe(t, r, sub("mps/#", 0))
	pub := tb.connect5(t, "mps-pub")
	for i, s := range []struct {
		payload []byte
		topic   string
		alias   uint16
	}{
		{big, topic, 0},
		{[]byte("s"), topic, 1},
		{big[:len(big)-3], "", 1}, // the alias-only form is shorter
	} {
		publish(t, pub, &packet.Publish{Topic: topic, Payload: s.payload})
		if got, alias := wireTopic(t, r); got != s.topic || alias != s.alias {
			t.Errorf("message %d: got topic %q alias %d, want %q alias %d", i, got, alias, s.topic, s.alias)
		}
	}
}

// TestV5NativeClientResolvesServerAliases checks the native client against
// the broker's aliases: it gives a Topic Alias Maximum and every message it
// delivers carries its topic.
func TestV5NativeClientResolvesServerAliases(t *testing.T) {
	tb := startBroker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := client.Connect(ctx, tb.dial(t), client.Options{ClientID: "nat-sub", ProtocolLevel: packet.V5, CleanSession: true,
		Props: &packet.Properties{TopicAliasMaximum: u16(2)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, sub("nat/#", 1)); err != nil {
		t.Fatal(err)
	}
	pub := tb.connect5(t, "nat-pub")
	topics := []string{"nat/a", "nat/b", "nat/a", "nat/c", "nat/b", "nat/c"}
	for i, topic := range topics {
		publish(t, pub, &packet.Publish{Topic: topic, QoS: byte(i % 2), PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
	}
	for i, topic := range topics {
		select {
		case m := <-c.Messages():
			if m.Topic != topic || len(m.Payload) != 1 || m.Payload[0] != byte(i) {
				t.Errorf("message %d: topic %q payload %v, want %q [%d]", i, m.Topic, m.Payload, topic, i)
			}
		case <-ctx.Done():
			t.Fatalf("message %d not delivered", i)
		}
	}
}

// TestV5ServerKeepAlive checks server_keep_alive: a 5.0 client with another
// Keep Alive gets it as Server Keep Alive in CONNACK and is held to 1.5x it
// (DISCONNECT 0x8D); one with the same value, and a 3.1.1 client, keep their
// own [MQTT-3.2.2-22]. The native client adopts the server's value
// [MQTT-3.2.2-21]: with its own keepalive off it still pings, and stays.
func TestV5ServerKeepAlive(t *testing.T) {
	// 2 s: the native client pings after 2 s of silence and the broker
	// waits 3 s, a margin a loaded machine keeps.
	const ska = 2
	tb := startBroker(t, func(c *Config) { c.ServerKeepAlive = ska })
	r, ack := tb.raw5(t, &packet.Connect{ClientID: "ska-raw", CleanSession: true, KeepAlive: 60}, 0)
	if v := ack.Props.ServerKeepAlive; v == nil || *v != ska {
		t.Fatalf("Server Keep Alive %v, want %d", v, ska)
	}
	if ka := tb.keepaliveOf(t, "ska-raw"); ka != ska*time.Second {
		t.Errorf("keepalive applied %v, want %ds", ka, ska)
	}
	// Silent: closed after 3 s, not 90 (expect waits 5 s).
	d := expect[*packet.Disconnect](t, r)
	if d.ReasonCode != 0x8D {
		t.Errorf("DISCONNECT 0x%02X, want 0x8D", d.ReasonCode)
	}

	_, ack = tb.raw5(t, &packet.Connect{ClientID: "ska-same", CleanSession: true, KeepAlive: ska}, 0)
	if v := ack.Props.ServerKeepAlive; v != nil {
		t.Errorf("Server Keep Alive %d sent to a client asking for the same", *v)
	}
	tb.raw(t, &packet.Connect{ClientID: "ska-311", CleanSession: true, KeepAlive: 60}, 0)
	if ka := tb.keepaliveOf(t, "ska-311"); ka != time.Minute {
		t.Errorf("3.1.1 keepalive %v, want its own 1m0s", ka)
	}

	rec := events.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := client.Connect(ctx, tb.dial(t), client.Options{ClientID: "ska-native", ProtocolLevel: packet.V5, CleanSession: true, Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Two round trips of PINGREQ: the client pings on the server's 2 s
	// although it asked for no keepalive, and the broker keeps it.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := rec.WaitN(wctx, events.Is(events.Ping), 2); err != nil {
		t.Fatalf("native client: %v", err)
	}
	if err := c.Err(); err != nil {
		t.Fatalf("native client link ended: %v", err)
	}
}

// TestV5ResponseInformation checks response_information: sent only to a
// client whose CONNECT has Request Response Information 1 [MQTT-3.1.2-28],
// and never when it is not configured.
func TestV5ResponseInformation(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.ResponseInformation = "resp/" })
	for _, tc := range []struct {
		id   string
		req  *byte
		want bool
	}{
		{"ri-1", bytep(1), true}, {"ri-0", bytep(0), false}, {"ri-none", nil, false},
	} {
		_, ack := tb.raw5(t, &packet.Connect{ClientID: tc.id, CleanSession: true, Props: &packet.Properties{RequestResponseInfo: tc.req}}, 0)
		if ack.Props.HasResponseInfo != tc.want || (tc.want && ack.Props.ResponseInfo != "resp/") {
			t.Errorf("%s: Response Information %v %q, want %v", tc.id, ack.Props.HasResponseInfo, ack.Props.ResponseInfo, tc.want)
		}
	}
	off := startBroker(t, nil)
	_, ack := off.raw5(t, &packet.Connect{ClientID: "ri-off", CleanSession: true, Props: &packet.Properties{RequestResponseInfo: bytep(1)}}, 0)
	if ack.Props.HasResponseInfo {
		t.Errorf("Response Information %q without response_information", ack.Props.ResponseInfo)
	}
}

// TestV5MaximumQoS checks maximum_qos 1: CONNACK says Maximum QoS 1
// [MQTT-3.2.2-9]; a SUBSCRIBE for QoS 2 is granted QoS 1 [MQTT-3.2.2-10]; a
// Will QoS 2 is refused with CONNACK 0x9B [MQTT-3.2.2-12]; a QoS 2 PUBLISH
// gets DISCONNECT 0x9B. A 3.1.1 client, which cannot be told, publishes at
// QoS 2 and its message is delivered at QoS 1.
func TestV5MaximumQoS(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.MaximumQoS = intp(1) })
	r, ack := tb.raw5(t, &packet.Connect{ClientID: "mq-sub", CleanSession: true}, 0)
	if q := ack.Props.MaximumQoS; q == nil || *q != 1 {
		t.Fatalf("Maximum QoS %v, want 1", q)
	}
	if codes := subscribe(t, r, sub("mq/#", 2)); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("SUBACK %v for QoS 2, want granted 1", codes)
	}
	old := tb.connect(t, "mq-311")
	publish(t, old, &packet.Publish{Topic: "mq/x", QoS: 2, PacketID: 5, Payload: []byte("q2")})
	if m := expect[*packet.Publish](t, r); m.QoS != 1 || string(m.Payload) != "q2" {
		t.Errorf("delivered %q at QoS %d, want QoS 1", m.Payload, m.QoS)
	}

	will := &packet.Will{Topic: "mq/will", QoS: 2, Payload: []byte("w")}
	w, ack := tb.raw5(t, &packet.Connect{ClientID: "mq-will", CleanSession: true, Will: will}, 0x9B)
	if ack.SessionPresent {
		t.Error("Session Present on a refusal")
	}
	expectClosed(t, w)
	if e := tb.wait(t, events.And(events.Is(events.ConnAck), events.ForClient("mq-will"))); e.Statement != "MQTT-3.2.2-12" {
		t.Errorf("refusal event statement %q", e.Statement)
	}
	will.QoS = 1
	tb.raw5(t, &packet.Connect{ClientID: "mq-will1", CleanSession: true, Will: will}, 0)

	p := tb.connect5(t, "mq-pub")
	publish(t, p, &packet.Publish{Topic: "mq/ok", QoS: 1, PacketID: 1})
	if err := p.WritePacket(&packet.Publish{Topic: "mq/no", QoS: 2, PacketID: 2}); err != nil {
		t.Fatal(err)
	}
	expectServerDisconnect(t, p, 0x9B)

	zero := startBroker(t, func(c *Config) { c.MaximumQoS = intp(0) })
	_, ack = zero.raw5(t, &packet.Connect{ClientID: "mq0", CleanSession: true}, 0)
	if q := ack.Props.MaximumQoS; q == nil || *q != 0 {
		t.Errorf("Maximum QoS %v, want 0", q)
	}
}

// TestV5RetainUnavailable checks retain_available false: CONNACK says
// Retain Available 0; a retained Will is refused with CONNACK 0x9A
// [MQTT-3.2.2-13]; a retained PUBLISH gets DISCONNECT 0x9A. A 3.1.1
// client's retained message is forwarded without RETAIN and not kept.
func TestV5RetainUnavailable(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.RetainAvailable = boolp(false) })
	r, ack := tb.raw5(t, &packet.Connect{ClientID: "ra-sub", CleanSession: true}, 0)
	if v := ack.Props.RetainAvailable; v == nil || *v != 0 {
		t.Fatalf("Retain Available %v, want 0", v)
	}
	subscribe(t, r, packet.Subscription{Filter: "ra/#", RetainAsPublished: true})

	old := tb.connect(t, "ra-311")
	publish(t, old, &packet.Publish{Topic: "ra/x", Retain: true, Payload: []byte("kept?")})
	if m := expect[*packet.Publish](t, r); m.Retain || string(m.Payload) != "kept?" {
		t.Errorf("forwarded %q with RETAIN %v, want RETAIN 0", m.Payload, m.Retain)
	}
	late := tb.connect5(t, "ra-late")
	subscribe(t, late, sub("ra/#", 0))
	// Retained messages would follow the SUBACK before the PINGRESP.
	if err := late.WritePacket(&packet.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Pingresp](t, late)

	will := &packet.Will{Topic: "ra/will", Retain: true, Payload: []byte("w")}
	w, _ := tb.raw5(t, &packet.Connect{ClientID: "ra-will", CleanSession: true, Will: will}, 0x9A)
	expectClosed(t, w)
	if e := tb.wait(t, events.And(events.Is(events.ConnAck), events.ForClient("ra-will"))); e.Statement != "MQTT-3.2.2-13" {
		t.Errorf("refusal event statement %q", e.Statement)
	}

	p := tb.connect5(t, "ra-pub")
	if err := p.WritePacket(&packet.Publish{Topic: "ra/y", Retain: true, Payload: []byte("r")}); err != nil {
		t.Fatal(err)
	}
	expectServerDisconnect(t, p, 0x9A)
}
