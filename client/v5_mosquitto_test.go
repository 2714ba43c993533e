package client

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Interop of the native MQTT 5.0 client with a second, independent 5.0
// implementation: Mosquitto 2.0.11 in a container (issue #15's interop
// acceptance). The in-process broker's own 5.0 tests live in broker/.

// v5Opts are 5.0 client options with Clean Start and the given properties.
func v5Opts(id string, clean bool, props *packet.Properties) Options {
	return Options{ClientID: id, ProtocolLevel: packet.V5, CleanSession: clean, Props: props}
}

// richProps are PUBLISH properties a broker must forward unchanged
// [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20].
func richProps() *packet.Properties {
	format, expiry := byte(1), uint32(300)
	return &packet.Properties{
		PayloadFormat: &format, MessageExpiry: &expiry,
		ContentType: "application/json", HasContentType: true,
		ResponseTopic: "v5i/reply", HasResponseTopic: true,
		CorrelationData: []byte{0, 1, 2, 0xff},
		User:            []packet.UserProperty{{Key: "site", Value: "north"}, {Key: "site", Value: "south"}, {Key: "fw", Value: "1.2"}},
	}
}

// checkForwarded compares what a subscriber got with what was published:
// everything but the Message Expiry Interval, which the broker may lower by
// the time the message waited [MQTT-3.3.2-6].
func checkForwarded(t *testing.T, got, sent *packet.Properties) {
	t.Helper()
	if got == nil {
		t.Fatal("delivered PUBLISH has no properties")
	}
	if got.PayloadFormat == nil || *got.PayloadFormat != *sent.PayloadFormat {
		t.Errorf("Payload Format Indicator %v, want %d", got.PayloadFormat, *sent.PayloadFormat)
	}
	if got.MessageExpiry == nil || *got.MessageExpiry > *sent.MessageExpiry || *got.MessageExpiry+5 < *sent.MessageExpiry {
		t.Errorf("Message Expiry Interval %v, want %d or a little less", got.MessageExpiry, *sent.MessageExpiry)
	}
	if got.ContentType != sent.ContentType || got.ResponseTopic != sent.ResponseTopic || string(got.CorrelationData) != string(sent.CorrelationData) {
		t.Errorf("content type %q, response topic %q, correlation data %x; want %q, %q, %x",
			got.ContentType, got.ResponseTopic, got.CorrelationData, sent.ContentType, sent.ResponseTopic, sent.CorrelationData)
	}
	// User properties keep their order, duplicates included [MQTT-3.3.2-18].
	if !slices.Equal(got.User, sent.User) {
		t.Errorf("user properties %v, want %v", got.User, sent.User)
	}
}

func TestMosquittoV5PublishSubscribe(t *testing.T) {
	b := startMosquitto(t)
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			ctx := ctxT(t, 10*time.Second)
			topic := fmt.Sprintf("v5i/ps/%d", qos)
			sub := dialBroker(t, b.Addr, v5Opts(fmt.Sprintf("v5sub%d", qos), true, nil))
			granted, err := sub.Subscribe(ctx, packet.Subscription{Filter: topic, QoS: qos})
			if err != nil || !slices.Equal(granted, []byte{qos}) {
				t.Fatalf("subscribe: granted %v, %v; want [%d]", granted, err, qos)
			}
			pub := dialBroker(t, b.Addr, v5Opts(fmt.Sprintf("v5pub%d", qos), true, nil))
			sent := richProps()
			if err := pub.PublishAsyncProps(ctx, topic, qos, false, []byte(`{"t":21.5}`), sent).Wait(ctx); err != nil {
				t.Fatalf("publish: %v", err)
			}
			m := nextMessage(t, sub, 5*time.Second)
			if m.Topic != topic || string(m.Payload) != `{"t":21.5}` || m.QoS != qos {
				t.Fatalf("got %s %q QoS %d; want %s QoS %d", m.Topic, m.Payload, m.QoS, topic, qos)
			}
			checkForwarded(t, m.Props, sent)
			// Exactly once at QoS 2, at most once at QoS 0: nothing else
			// comes before a later message on the same topic and QoS.
			markerNext(t, ctx, pub, sub, topic, qos, "marker")
		})
	}
}

// A persistent 5.0 session (Session Expiry Interval above 0) outlives its
// connection: reconnecting within the interval finds it (session present) with
// the QoS 1 message published meanwhile; one that has expired is gone.
func TestMosquittoV5SessionExpiry(t *testing.T) {
	b := startMosquitto(t)
	ctx := ctxT(t, 30*time.Second)
	pub := dialBroker(t, b.Addr, v5Opts("v5se-pub", true, nil))
	session := func(id string, expiry uint32) (*Client, *packet.Connack) {
		t.Helper()
		c, ack, err := Dial(ctx, b.Addr, v5Opts(id, false, &packet.Properties{SessionExpiry: &expiry}))
		if err != nil {
			t.Fatalf("connect %s: %v", id, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, ack
	}

	for _, tc := range []struct {
		id      string
		expiry  uint32
		outage  time.Duration
		present bool
	}{
		// 60 s: the outage is well inside it.
		{"v5se-kept", 60, 0, true},
		// 1 s: the broker must have dropped the session after twice that.
		// The wait is the condition under test (time passing), not a guess.
		{"v5se-gone", 1, 2500 * time.Millisecond, false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			topic := "v5i/se/" + tc.id
			c, _ := session(tc.id, tc.expiry)
			if _, err := c.Subscribe(ctx, packet.Subscription{Filter: topic, QoS: 1}); err != nil {
				t.Fatal(err)
			}
			if err := c.Disconnect(ctx); err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, topic, 1, false, []byte("queued")); err != nil {
				t.Fatal(err)
			}
			if tc.outage > 0 {
				time.Sleep(tc.outage)
			}
			c2, ack := session(tc.id, tc.expiry)
			if ack.SessionPresent != tc.present {
				t.Fatalf("session present %v after %v with Session Expiry %d s; want %v", ack.SessionPresent, tc.outage, tc.expiry, tc.present)
			}
			if tc.present {
				if m := nextMessage(t, c2, 5*time.Second); string(m.Payload) != "queued" || m.QoS != 1 {
					t.Fatalf("got %q QoS %d, want the queued message at QoS 1", m.Payload, m.QoS)
				}
				return
			}
			// A new session has no subscription: a message published now is
			// not delivered, and neither is the one queued in the old session.
			// A subscription made now, then a marker, shows nothing came first.
			if _, err := c2.Subscribe(ctx, packet.Subscription{Filter: topic, QoS: 1}); err != nil {
				t.Fatal(err)
			}
			markerNext(t, ctx, pub, c2, topic, 1, "after")
		})
	}
}

// TestMosquittoV5TopicAliases: the client's outgoing Topic Aliases against
// Mosquitto, whose max_topic_alias is 10 by default: within the maximum,
// empty topics on repeats, every message delivered on its own topic.
func TestMosquittoV5TopicAliases(t *testing.T) {
	b := startMosquitto(t)
	aliasRoundTrip(t, b.Addr, 10)
}
