package simulator

import (
	"net"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/internal/testcerts"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// TestTransports runs the same small echo fleet over TCP, WebSocket, TLS and
// secure WebSocket, with both drivers, against the reference broker.
func TestTransports(t *testing.T) {
	certs := testcerts.New(t, "simulator")
	cert, key := certs.Cert, certs.Key
	b := brokertest.Start(t, func(cfg *broker.Config) {
		cfg.Listeners = append(cfg.Listeners,
			broker.ListenerConfig{Name: "ws", Type: "ws", Addr: "127.0.0.1:0"},
			broker.ListenerConfig{Name: "tls", Type: "tls", Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key},
			broker.ListenerConfig{Name: "wss", Type: "wss", Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key})
	})
	for _, kind := range []string{"tcp", "ws", "tls", "wss"} {
		for _, drv := range []Driver{Native{}, Paho{}} {
			t.Run(kind+"/"+drv.Name(), func(t *testing.T) {
				_, host, path := splitAddr(b.Addr(kind))
				p := echoProfile(3, 3, 1, 30*time.Millisecond)
				p.Groups[0].Transport = profile.Transport{Kind: kind, Path: path, InsecureSkipVerify: true}
				res := runFleet(t, Config{Profile: p, Broker: host, Driver: drv})
				c := res.Counters
				if c["connects"] != 3 || c["received_distinct"] != 9 || c["expected"] != 9 || c["lost"] != 0 {
					t.Fatalf("connects %d received %d expected %d lost %d", c["connects"], c["received_distinct"], c["expected"], c["lost"])
				}
			})
		}
	}
}

// TestSourceAddresses checks devices bind their source addresses
// round-robin by index, as the broker sees them.
func TestSourceAddresses(t *testing.T) {
	rec := events.NewRecorder()
	b := brokertest.Start(t, func(cfg *broker.Config) { cfg.Events = rec })
	p := echoProfile(4, 2, 1, 30*time.Millisecond)
	p.Groups[0].SourceAddresses = []string{"127.0.0.2", "127.0.0.3"}
	res := runFleet(t, Config{Profile: p, Broker: b.Addr("tcp")})
	if res.Counters["connects"] != 4 {
		t.Fatalf("connects %d", res.Counters["connects"])
	}
	want := map[string]string{"echo-0": "127.0.0.2", "echo-1": "127.0.0.3", "echo-2": "127.0.0.2", "echo-3": "127.0.0.3"}
	seen := 0
	for _, e := range rec.Filter(events.And(events.Is(events.Connect), events.From(events.SourceBroker))) {
		host, _, err := net.SplitHostPort(e.Remote)
		if err != nil || host != want[e.ClientID] {
			t.Fatalf("%s connected from %q, want %s", e.ClientID, e.Remote, want[e.ClientID])
		}
		seen++
	}
	if seen != 4 {
		t.Fatalf("broker saw %d connects", seen)
	}
}
