package simulator

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// TestChurn runs lifecycles that end links on purpose and checks the counts
// and that the accounting rule produces no false loss through them.
func TestChurn(t *testing.T) {
	persistent := false
	cases := []struct {
		name  string
		p     func() *profile.Profile
		check func(t *testing.T, c map[string]int64, disc map[string]int64)
	}{
		{"drop churn, clean sessions", func() *profile.Profile {
			p := echoProfile(10, 0, 1, 50*time.Millisecond)
			p.Duration = 3 * time.Second
			p.Groups[0].Will = &profile.Will{Topic: "gone/{{.Index}}", Payload: "bye", QoS: 1}
			p.Groups[0].Lifecycle.Churn = &profile.Churn{Every: 300 * time.Millisecond, Probability: 0.5, Mode: profile.ChurnDrop, Offline: 200 * time.Millisecond}
			return p
		}, func(t *testing.T, c, disc map[string]int64) {
			if disc["dropped"] == 0 || c["reconnects"] == 0 {
				t.Fatalf("dropped %d reconnects %d: churn did nothing", disc["dropped"], c["reconnects"])
			}
			// Every churned device comes back, except those whose offline
			// time had not passed when the run ended (at most one each).
			if c["reconnects"] > disc["dropped"] || c["reconnects"] < disc["dropped"]-10 {
				t.Fatalf("reconnects %d for %d churned links", c["reconnects"], disc["dropped"])
			}
		}},
		{"clean churn, persistent receivers keep their messages", func() *profile.Profile {
			return &profile.Profile{Name: "persist", Seed: 3, Duration: 3 * time.Second, Drain: time.Second, Groups: []profile.Group{
				{Name: "pub", Count: 5, Publish: &profile.Publish{Interval: 50 * time.Millisecond, QoS: 1, Topic: "pub/{{.Index}}"}},
				{Name: "sub", Count: 5, CleanSession: &persistent,
					Subscriptions: []profile.Subscription{{Filter: "pub/+", QoS: 1}},
					Lifecycle: profile.Lifecycle{Churn: &profile.Churn{Every: 300 * time.Millisecond, Probability: 0.5,
						Mode: profile.ChurnClean, Offline: 300 * time.Millisecond}}},
			}}
		}, func(t *testing.T, c, disc map[string]int64) {
			if disc[string("client_disconnect")] == 0 {
				t.Fatalf("no churn: %v", disc)
			}
			if c["expected"] < 5*5*30 {
				t.Fatalf("expected only %d messages", c["expected"])
			}
		}},
		{"online time ends devices for good", func() *profile.Profile {
			p := echoProfile(10, 0, 0, 50*time.Millisecond)
			p.Duration = 1500 * time.Millisecond
			p.Groups[0].Lifecycle.Online = 500 * time.Millisecond
			p.Groups[0].Lifecycle.Spread = 200 * time.Millisecond
			p.Groups[0].Lifecycle.Rate = 0
			return p
		}, func(t *testing.T, c, disc map[string]int64) {
			if disc["client_disconnect"] != 10 || c["reconnects"] != 0 || c["connected_at_stop"] != 0 {
				t.Fatalf("left %d reconnects %d connected at stop %d; want 10 0 0", disc["client_disconnect"], c["reconnects"], c["connected_at_stop"])
			}
		}},
	}
	for _, tg := range targets {
		for _, tc := range cases {
			t.Run(tg.name+"/"+tc.name, func(t *testing.T) {
				addr := tg.start(t)
				res := runFleet(t, Config{Profile: tc.p(), Broker: addr})
				c := res.Counters
				if c["lost"] != 0 {
					t.Fatalf("lost %d (expected %d, received %d): false loss through churn", c["lost"], c["expected"], c["received_distinct"])
				}
				tc.check(t, c, res.Disconnects)
				t.Logf("expected %d received %d dup %d disconnects %v", c["expected"], c["received_distinct"], c["duplicates"], res.Disconnects)
			})
		}
	}
}
