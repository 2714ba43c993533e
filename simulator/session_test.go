package simulator

import (
	"context"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/netem"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// TestPersistentSessionAcrossCut: a device with persistent sessions echoes
// QoS 2 messages behind the fault proxy; the broker's answers are
// blackholed for a while (so PUBLISHes reach the broker unacknowledged)
// and then the link is reset. The device keeps its client Session across
// the reconnect, so every message it sent is acknowledged in the end and
// none is delivered twice. With clean sessions the messages held at the
// cut are never acknowledged: the same run shows what the session buys.
func TestPersistentSessionAcrossCut(t *testing.T) {
	for _, tg := range targets {
		for _, clean := range []bool{false, true} {
			name := tg.name + "/persistent"
			if clean {
				name = tg.name + "/clean"
			}
			t.Run(name, func(t *testing.T) {
				c := runWithCut(t, tg.start(t), clean)
				t.Logf("counters %v", c)
				sent, acked := c["publishes_sent"], c["publishes_acked"]
				if clean {
					if acked >= sent {
						t.Fatalf("clean sessions: %d acked of %d sent, want some lost with the link", acked, sent)
					}
					return
				}
				if acked != sent || c["reconnects"] < 1 {
					t.Fatalf("persistent session: %d acked of %d sent after %d reconnects, want all acked", acked, sent, c["reconnects"])
				}
				if c["duplicates"] != 0 || c["lost"] != 0 {
					t.Fatalf("persistent session: %d duplicates, %d lost; want none", c["duplicates"], c["lost"])
				}
			})
		}
	}
}

// runWithCut runs one echo device at QoS 2 and cuts its link after it has
// sent two messages into a downstream blackhole.
func runWithCut(t *testing.T, addr string, clean bool) map[string]int64 {
	_, host, _ := splitAddr(addr)
	px := netem.NewProxy(netem.ProxyConfig{Listen: "127.0.0.1:0", Upstream: host})
	if err := px.Start(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() { _ = px.Close() })
	p := echoProfile(1, 20, 2, 100*time.Millisecond) // 2 s: the cut comes well before the last message
	g := &p.Groups[0]
	g.CleanSession = &clean
	g.Netem = &profile.Netem{Group: "edge"}
	g.Reconnect = profile.Reconnect{Policy: profile.ReconnectFixed, Delay: 200 * time.Millisecond}
	rec := events.NewRecorder()
	f, err := New(Config{Profile: p, Broker: addr, Netem: px, Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	done := make(chan *reports.Results, 1)
	go func() {
		res, _ := f.Run(ctx)
		done <- res
	}()
	if _, err := rec.WaitN(ctx, events.Is(events.PublishAcked), 2); err != nil {
		t.Fatalf("device did not get going: %v", err)
	}
	hole, err := px.Apply(netem.ByGroup("edge"), netem.Fault{Kind: netem.Blackhole, Direction: netem.Downstream})
	if err != nil {
		t.Fatalf("apply blackhole: %v", err)
	}
	sent := rec.Count(events.Is(events.PublishSent))
	if _, err := rec.WaitN(ctx, events.Is(events.PublishSent), sent+2); err != nil {
		t.Fatalf("device stopped publishing: %v", err)
	}
	// New links must not be blackholed: lift it, then cut the link.
	if err := px.Remove(hole); err != nil {
		t.Fatalf("remove blackhole: %v", err)
	}
	if _, err := px.Apply(netem.ByGroup("edge"), netem.Fault{Kind: netem.Reset}); err != nil {
		t.Fatalf("apply reset: %v", err)
	}
	res := <-done
	if res == nil {
		t.Fatalf("fleet run gave no results")
	}
	return res.Counters
}
