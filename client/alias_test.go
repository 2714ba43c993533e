package client

import (
	"errors"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// withAlias is a QoS 0 PUBLISH with a Topic Alias, as a broker sends it.
func withAlias(topic string, alias uint16, payload string) *packet.Publish {
	return &packet.Publish{Topic: topic, Payload: []byte(payload), Props: &packet.Properties{TopicAlias: &alias}}
}

// TestV5ServerTopicAliases: a client that gave Topic Alias Maximum 2
// accepts aliases 1 and 2 [MQTT-3.3.2-10], a set alias stands for its topic
// on this connection, and a topic with a used alias remaps it.
func TestV5ServerTopicAliases(t *testing.T) {
	most := uint16(2)
	c, srv := connectFake(t, Options{ClientID: "alias", ProtocolLevel: packet.V5, Props: &packet.Properties{TopicAliasMaximum: &most}})
	for i, s := range []struct {
		p     *packet.Publish
		topic string
	}{
		{withAlias("a/one", 1, "0"), "a/one"},
		{withAlias("", 1, "1"), "a/one"},
		{withAlias("a/two", 2, "2"), "a/two"},
		{withAlias("", 2, "3"), "a/two"},
		{withAlias("a/new", 1, "4"), "a/new"},
		{withAlias("", 1, "5"), "a/new"},
		{&packet.Publish{Topic: "a/plain", Payload: []byte("6")}, "a/plain"},
	} {
		if err := srv.WritePacket(s.p); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-c.Messages():
			if m.Topic != s.topic || string(m.Payload) != string(rune('0'+i)) {
				t.Errorf("message %d: topic %q payload %q, want %q", i, m.Topic, m.Payload, s.topic)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not delivered", i)
		}
	}
}

// TestV5ServerTopicAliasErrors: an empty topic with an alias never set is a
// Protocol Error (DISCONNECT 0x82); an alias above the maximum the client
// gave, or any alias from a client that gave none, is Topic Alias invalid
// (DISCONNECT 0x94). The client sends the DISCONNECT, closes, and Err wraps
// ErrProtocol.
func TestV5ServerTopicAliasErrors(t *testing.T) {
	two := uint16(2)
	for _, tc := range []struct {
		name  string
		props *packet.Properties
		p     *packet.Publish
		code  byte
	}{
		{"unknown alias", &packet.Properties{TopicAliasMaximum: &two}, withAlias("", 2, "x"), 0x82},
		{"over the maximum", &packet.Properties{TopicAliasMaximum: &two}, withAlias("a/b", 3, "x"), 0x94},
		{"no maximum given", nil, withAlias("a/b", 1, "x"), 0x94},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := events.NewRecorder()
			c, srv := connectFake(t, Options{ClientID: "bad-alias", ProtocolLevel: packet.V5, Props: tc.props, Events: rec})
			if err := srv.WritePacket(tc.p); err != nil {
				t.Fatal(err)
			}
			d := expect[*packet.Disconnect](t, srv)
			if d.ReasonCode != tc.code {
				t.Errorf("DISCONNECT 0x%02x, want 0x%02x", d.ReasonCode, tc.code)
			}
			if err := srv.ExpectClosed(5 * time.Second); err != nil {
				t.Errorf("after DISCONNECT: %v", err)
			}
			<-c.Done()
			var pe *ProtocolError
			if !errors.As(c.Err(), &pe) || pe.Code != tc.code || !errors.Is(c.Err(), ErrProtocol) {
				t.Errorf("Err() = %v, want a ProtocolError 0x%02x", c.Err(), tc.code)
			}
			if n := rec.Count(events.Is(events.PublishReceived)); n != 0 {
				t.Errorf("%d publish_received events for a refused PUBLISH", n)
			}
		})
	}
}
