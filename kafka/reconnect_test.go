package kafka

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
)

// logs collects the bridge's log events.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Emit(e events.Event) {
	if e.Kind == events.Log && e.Source == events.SourceKafka {
		l.mu.Lock()
		l.lines = append(l.lines, e.Detail)
		l.mu.Unlock()
	}
}

func (l *logs) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// TestBridgeReconnectsAfterBrokerRestart: a bridge with a persistent session
// and Reconnect outlives a restart of its MQTT broker. With the broker's
// persistence on it finds its session (session present) and gets what was
// published while it was away; with it off it subscribes again and gets
// what is published after that.
func TestBridgeReconnectsAfterBrokerRestart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		persist   bool
		reconnect time.Duration
		wantSP    bool
	}{
		{"broker persistence on", true, 50 * time.Millisecond, true},
		{"broker persistence off", false, 50 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const devices, n = 4, 10
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			store := filepath.Join(t.TempDir(), "broker.db")
			edit := func(addr string) func(*broker.Config) {
				return func(c *broker.Config) {
					c.Listeners[0].Addr = addr
					if tc.persist {
						c.Persistence = broker.PersistenceConfig{Enabled: true, Path: store, Sync: broker.SyncEveryWrite}
					}
				}
			}
			first := brokertest.Start(t, edit("127.0.0.1:0"))
			addr := brokertest.TCP(first)
			cl := startCluster(t, Topic{Name: "telemetry", Partitions: 2})
			lg := &logs{}
			b := startBridge(t, BridgeConfig{Name: "bridge", MQTT: addr, Filters: []string{"fleet/+/t"}, QoS: 1,
				Brokers: cl.Addrs(), Topic: "telemetry", Acks: "all", KeyLevel: 1,
				Persistent: true, Reconnect: tc.reconnect, Events: lg})
			newFleet(t, ctx, addr, devices).publish(t, ctx, n)
			eventually(t, 30*time.Second, "the first records produced", func() bool { return b.Stats().Produced == devices*n })

			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "the bridge sees its link end", func() bool { return lg.has("bridge MQTT link ended") })
			brokertest.Start(t, edit(addr))
			if !tc.wantSP {
				// Without a stored session nothing is owed to the bridge
				// until it has subscribed again.
				eventually(t, 10*time.Second, "the bridge back", func() bool { return lg.has("bridge MQTT link back") })
			}
			newFleet(t, ctx, addr, devices).publish(t, ctx, n)
			eventually(t, 30*time.Second, "every record produced", func() bool { return b.Stats().Produced == 2*devices*n })
			want := "session present " + map[bool]string{true: "true", false: "false"}[tc.wantSP]
			if !lg.has(want) {
				t.Errorf("bridge logs %q, want a reconnect with %s", lg.lines, want)
			}
		})
	}
}
