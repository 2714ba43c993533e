package broker

import (
	"testing"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

func u16(v uint16) *uint16 { return &v }

// aliased is a QoS 0 PUBLISH with a Topic Alias.
func aliased(topic string, alias uint16, payload string) *packet.Publish {
	return &packet.Publish{Topic: topic, Payload: []byte(payload), Props: &packet.Properties{TopicAlias: u16(alias)}}
}

// TestV5TopicAlias checks Topic Aliases from a 5.0 client: CONNACK
// advertises topic_alias_maximum; a PUBLISH with an alias and a topic sets
// the alias, one with the alias and an empty topic uses it, every alias from
// 1 to the maximum is accepted [MQTT-3.3.2-12], and subscribers get the
// topic, never the alias. Aliases do not outlive their connection
// [MQTT-3.3.2-7].
func TestV5TopicAlias(t *testing.T) {
	tb := startBroker(t, nil)
	w := tb.connect5(t, "ta-watch")
	subscribe(t, w, sub("ta/#", 0))
	got := func(t *testing.T, topic, payload string) {
		t.Helper()
		m := expect[*packet.Publish](t, w)
		if m.Topic != topic || string(m.Payload) != payload {
			t.Errorf("got %q %q, want %q %q", m.Topic, m.Payload, topic, payload)
		}
		if m.Props != nil && m.Props.TopicAlias != nil {
			t.Errorf("forwarded with Topic Alias %d", *m.Props.TopicAlias)
		}
	}

	r, ack := tb.raw5(t, &packet.Connect{ClientID: "ta-pub", CleanSession: true}, 0)
	if m := ack.Props.TopicAliasMaximum; m == nil || *m != DefaultTopicAliasMaximum {
		t.Fatalf("Topic Alias Maximum %v, want %d", m, DefaultTopicAliasMaximum)
	}
	for _, step := range []struct {
		p              *packet.Publish
		topic, payload string
	}{
		{aliased("ta/one", 1, "a"), "ta/one", "a"},
		{aliased("", 1, "b"), "ta/one", "b"},
		{aliased("ta/two", 1, "c"), "ta/two", "c"}, // a new topic for alias 1
		{aliased("", 1, "d"), "ta/two", "d"},
		{aliased("ta/max", DefaultTopicAliasMaximum, "e"), "ta/max", "e"},
		{aliased("", DefaultTopicAliasMaximum, "f"), "ta/max", "f"},
		{&packet.Publish{Topic: "ta/plain", Payload: []byte("g")}, "ta/plain", "g"},
		{aliased("", 1, "h"), "ta/two", "h"},
	} {
		if err := r.WritePacket(step.p); err != nil {
			t.Fatal(err)
		}
		got(t, step.topic, step.payload)
	}
	_ = r.Close()
	tb.wait(t, disconnectOf("ta-pub"))

	// A new connection starts without aliases, even for the same session.
	r, _ = tb.raw5(t, &packet.Connect{ClientID: "ta-pub", CleanSession: true}, 0)
	_ = r.WritePacket(aliased("", 1, "x"))
	expectServerDisconnect(t, r, 0x82)
	tb.wait(t, events.And(events.Is(events.Violation), events.ForClient("ta-pub")))
}

// TestV5TopicAliasInvalid checks the aliases that end the connection, with
// the codes of 3.3.4: DISCONNECT 0x94 (Topic Alias invalid) for alias 0
// [MQTT-3.3.2-8] and for one above the maximum advertised [MQTT-3.3.2-9]
// (with topic_alias_maximum 0 that is any alias); 0x82 (Protocol Error)
// for an empty topic with an alias never set on this connection.
func TestV5TopicAliasInvalid(t *testing.T) {
	tb := startBroker(t, nil)
	off := startBroker(t, func(c *Config) { c.TopicAliasMaximum = 0 })
	for _, tc := range []struct {
		name, stmt string
		code       byte
		tb         *testBroker
		p          *packet.Publish
	}{
		{"alias 0", "MQTT-3.3.2-8", 0x94, tb, aliased("ta/x", 0, "x")},
		{"over the maximum", "MQTT-3.3.2-9", 0x94, tb, aliased("ta/x", DefaultTopicAliasMaximum+1, "x")},
		{"unknown alias", "", 0x82, tb, aliased("", 2, "x")},
		{"aliases off", "MQTT-3.3.2-9", 0x94, off, aliased("ta/x", 1, "x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "tai-" + tc.name
			var r *client.Raw
			r, ack := tc.tb.raw5(t, &packet.Connect{ClientID: id, CleanSession: true}, 0)
			if tc.tb == off {
				if m := ack.Props.TopicAliasMaximum; m == nil || *m != 0 {
					t.Errorf("Topic Alias Maximum %v, want 0", m)
				}
			}
			if err := r.WritePacket(tc.p); err != nil {
				t.Fatal(err)
			}
			expectServerDisconnect(t, r, tc.code)
			e := tc.tb.wait(t, events.And(events.Is(events.Violation), events.ForClient(id)))
			if e.Statement != tc.stmt || e.Code != int(tc.code) {
				t.Errorf("violation statement %q code 0x%02X, want %q 0x%02X", e.Statement, e.Code, tc.stmt, tc.code)
			}
		})
	}
}
