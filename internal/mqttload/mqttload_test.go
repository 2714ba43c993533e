package mqttload_test

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/internal/mqttload"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The scenarios must count what really crossed the broker: messages flow,
// and a subscriber never counts more than was sent to it (a count of
// encoded rather than written messages, or of non-PUBLISH frames, would).
func TestScenariosCountDeliveries(t *testing.T) {
	addr := brokertest.TCP(brokertest.Start(t, nil))
	const d = 300 * time.Millisecond

	r, err := mqttload.PointToPoint(addr, 8, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received == 0 || r.Received > r.Sent {
		t.Errorf("p2p: sent %d, received %d", r.Sent, r.Received)
	}
	if want := float64(r.Received) / d.Seconds(); r.Rate != want {
		t.Errorf("p2p rate %v, want %v", r.Rate, want)
	}

	if r.Acked == 0 || r.Acked > r.Sent {
		t.Errorf("p2p: sent %d, acknowledged %d", r.Sent, r.Acked)
	}

	// Exact: every message of 3 publishers reaches the subscriber, and each is acknowledged.
	r, err = mqttload.Target{Addr: addr, Messages: 50}.FanInQoS1(3, 8, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 150 || r.Received != 150 || r.Acked != 150 {
		t.Errorf("QoS 1 fan-in from 3 x 50: sent %d, received %d, acknowledged %d", r.Sent, r.Received, r.Acked)
	}

	r, err = mqttload.FanOut(addr, 3, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received == 0 || r.Received > 3*r.Sent {
		t.Errorf("fan-out to 3: sent %d, received %d", r.Sent, r.Received)
	}

	r, err = mqttload.FanIn(addr, 2, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received == 0 || r.Received > r.Sent {
		t.Errorf("fan-in from 2: sent %d, received %d", r.Sent, r.Received)
	}
}

// Dial reports a peer that is not an MQTT broker instead of returning a
// connection that will never carry anything.
func TestDialRefusesNonBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		c.Close()
	}()
	if c, err := mqttload.Dial(ln.Addr().String(), "x", 0); err == nil {
		c.Close()
		t.Fatal("Dial to a non-MQTT server succeeded")
	}
	<-done
}

// Connections to loopback come from spread source addresses (see dialer),
// and the broker sees them as such.
func TestDialSpreadsSourceAddresses(t *testing.T) {
	addr := brokertest.TCP(brokertest.Start(t, nil))
	seen := map[string]bool{}
	var cs []*mqttload.Conn
	defer func() { mqttload.CloseAll(cs...) }()
	for i := range 4 {
		c, err := mqttload.Dial(addr, "spread-"+string(rune('a'+i)), 0)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		seen[c.NC.LocalAddr().(*net.TCPAddr).IP.String()] = true
	}
	if len(seen) < 4 {
		t.Errorf("4 connections came from %d source addresses: %v", len(seen), seen)
	}
}
