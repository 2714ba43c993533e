package simulator

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoProfile: every device publishes count messages to its own topic and
// subscribes to it, so every message has exactly one expected receiver.
func echoProfile(devices, count, qos int, interval time.Duration) *profile.Profile {
	return &profile.Profile{
		// Runs with a message count end when every device has sent it;
		// Duration is only the bound on a badly loaded machine.
		Name: "echo", Seed: 1, Duration: time.Duration(count)*interval + 20*time.Second, Drain: 500 * time.Millisecond,
		Groups: []profile.Group{{
			Name: "echo", Count: devices, ClientID: "echo-{{.Index}}",
			Subscriptions: []profile.Subscription{{Filter: "echo/{{.Index}}", QoS: qos}},
			Publish: &profile.Publish{Interval: interval, QoS: qos, Topic: "echo/{{.Index}}", Count: count,
				Payload: profile.Payload{Kind: profile.PayloadRandomWalk, Start: 20, Step: 1}},
			Lifecycle: profile.Lifecycle{Rate: 1000},
		}},
	}
}

func runFleet(t *testing.T, cfg Config) *reports.Results {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("new fleet: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := f.Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestQoSAccounting(t *testing.T) {
	for _, tg := range targets {
		for _, qos := range []int{0, 1, 2} {
			t.Run(tg.name+"/qos"+itoa(qos), func(t *testing.T) {
				addr := tg.start(t)
				const devices, count = 20, 10
				p := echoProfile(devices, count, qos, 50*time.Millisecond)
				rec := events.NewRecorder()
				res := runFleet(t, Config{Profile: p, Broker: addr, Events: rec})
				c := res.Counters
				want := int64(devices * count)
				if c["publishes_sent"] != want || c["expected"] != want || c["received_distinct"] != want {
					t.Fatalf("sent %d expected %d received %d, want %d each", c["publishes_sent"], c["expected"], c["received_distinct"], want)
				}
				if c["lost"] != 0 || c["duplicates"] != 0 || c["out_of_order"] != 0 {
					t.Fatalf("false accounting on a clean run: lost %d dup %d ooo %d", c["lost"], c["duplicates"], c["out_of_order"])
				}
				if c["connects"] != devices {
					t.Fatalf("connects %d, want %d", c["connects"], devices)
				}
				if qos > 0 && c["publishes_acked"] != want {
					t.Fatalf("acked %d, want %d", c["publishes_acked"], want)
				}
				if h := res.Histograms["e2e_latency"]; h == nil || h.Count() != uint64(want) {
					t.Fatalf("e2e latency histogram: %v", h)
				}
			})
		}
	}
}
