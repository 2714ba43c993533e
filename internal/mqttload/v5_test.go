package mqttload_test

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/internal/mqttload"
	"github.com/mqttfleet/mqttfleet/packet"
)

// In 5.0 mode every scenario carries messages end to end through the
// reference broker: with a fixed message count, what the subscribers
// received is exactly what was sent. A 5.0 PUBLISH without its property
// length, or a SUBSCRIBE without its options byte, would be a protocol
// error there and the broker would close the connection, so the counts
// could not match. The p2p window shows that the 5.0 CONNACK was read:
// it is the broker's Receive Maximum, not the window asked for.
func TestV5ScenariosDeliverEverything(t *testing.T) {
	const inflight = 7 // the broker's Receive Maximum
	addr := brokertest.TCP(brokertest.Start(t, func(c *broker.Config) { c.MaxInflight = inflight }))
	// 100 per publisher: one whole batch of 64 and a partial one. Well under
	// the broker's outbound buffer, so no QoS 0 message may be dropped.
	tg := mqttload.Target{Addr: addr, Level: packet.V5, Messages: 100}
	const d = 20 * time.Second // a bound for failures only: exact runs end when all has arrived

	r, err := tg.PointToPoint(64, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 100 || r.Received != 100 {
		t.Errorf("p2p: sent %d, received %d, want 100 and 100", r.Sent, r.Received)
	}
	if r.Window != inflight {
		t.Errorf("p2p window %d, want the broker's Receive Maximum %d", r.Window, inflight)
	}

	r, err = tg.FanOut(3, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 100 || r.Received != 300 {
		t.Errorf("fan-out to 3: sent %d, received %d, want 100 and 300", r.Sent, r.Received)
	}

	r, err = tg.FanIn(2, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 200 || r.Received != 200 {
		t.Errorf("fan-in from 2: sent %d, received %d, want 200 and 200", r.Sent, r.Received)
	}
}

// A 5.0 connection records the server's Receive Maximum, and a 3.1.1 one
// (whose CONNACK has no properties) sets no limit.
func TestDialLevels(t *testing.T) {
	addr := brokertest.TCP(brokertest.Start(t, func(c *broker.Config) { c.MaxInflight = 9 }))
	c5, err := mqttload.Target{Addr: addr, Level: packet.V5}.Dial("lv5", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c5.Close()
	if c5.Level != packet.V5 || c5.ReceiveMax != 9 {
		t.Errorf("5.0: level %d, receive max %d, want 5 and 9", c5.Level, c5.ReceiveMax)
	}
	if err := c5.Subscribe("a/+", 1); err != nil {
		t.Errorf("5.0 subscribe: %v", err)
	}
	c3, err := mqttload.Dial(addr, "lv3", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if c3.Level != packet.V311 || c3.ReceiveMax != 65535 {
		t.Errorf("3.1.1: level %d, receive max %d, want 4 and 65535", c3.Level, c3.ReceiveMax)
	}
}
