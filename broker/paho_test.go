package broker

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttfleet/mqttfleet/events"
)

// pahoOpts are paho.mqtt.golang options for one client of the test broker.
func pahoOpts(tb *testBroker, id string, clean bool) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker("tcp://" + tb.tcp).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(30 * time.Second).SetResumeSubs(false)
}

func pahoConnect(t *testing.T, o *paho.ClientOptions) paho.Client {
	t.Helper()
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect: %v", tok.Error())
	}
	return c
}

// TestPahoPersistentSession checks with paho clients that a persistent
// session keeps its subscription and receives, in order, the QoS 1 messages
// published while it was offline [MQTT-3.1.2-4] [MQTT-3.2.2-2] [MQTT-4.4.0-1].
func TestPahoPersistentSession(t *testing.T) {
	tb := startBroker(t, nil)
	got := make(chan string, 100)
	o := pahoOpts(tb, "paho-persistent", false).SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	sub := pahoConnect(t, o)
	if tok := sub.Subscribe("paho/q", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	sub.Disconnect(100)
	tb.wait(t, disconnectOf("paho-persistent"))

	pub := pahoConnect(t, pahoOpts(tb, "paho-pub", true))
	defer pub.Disconnect(100)
	for i := range 10 {
		if tok := pub.Publish("paho/q", 1, false, fmt.Sprint(i)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	sub = pahoConnect(t, o)
	defer sub.Disconnect(100)
	for i := range 10 {
		select {
		case m := <-got:
			if m != fmt.Sprint(i) {
				t.Fatalf("message %d: got %q", i, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not delivered", i)
		}
	}
}

// TestPahoWill checks with paho clients that a will is published when the
// connection breaks [MQTT-3.1.2-8] and not after a clean disconnect
// [MQTT-3.1.2-10].
func TestPahoWill(t *testing.T) {
	tb := startBroker(t, nil)
	got := make(chan string, 10)
	watcher := pahoConnect(t, pahoOpts(tb, "paho-watch", true))
	defer watcher.Disconnect(100)
	if tok := watcher.Subscribe("paho/will/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	clean := pahoConnect(t, pahoOpts(tb, "paho-clean", true).SetWill("paho/will/clean", "gone", 1, false))
	clean.Disconnect(100)
	tb.wait(t, disconnectOf("paho-clean"))

	// Break the other connection from the broker side: a protocol violation
	// is not something paho sends, so take it over with a raw client instead.
	broken := pahoConnect(t, pahoOpts(tb, "paho-broken", true).SetWill("paho/will/broken", "gone", 1, false))
	defer broken.Disconnect(0) // its connection is gone; this stops its goroutines
	tb.connect(t, "paho-broken")
	select {
	case topic := <-got:
		if topic != "paho/will/broken" {
			t.Fatalf("will on %q", topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("will not published")
	}
	select {
	case topic := <-got:
		t.Fatalf("unexpected will on %q", topic)
	case <-time.After(300 * time.Millisecond):
	}
	if n := tb.rec.Count(events.And(events.Is(events.WillPublished), events.ForClient("paho-clean"))); n != 0 {
		t.Fatal("will published after DISCONNECT")
	}
}
