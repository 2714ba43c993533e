package simulator

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// TestRampRate checks devices start at index/rate after the run start.
func TestRampRate(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			addr := tg.start(t)
			const devices, rate = 200, 400.0
			p := &profile.Profile{Name: "ramp", Duration: time.Duration(devices/rate*float64(time.Second)) + 300*time.Millisecond, Drain: 100 * time.Millisecond,
				Groups: []profile.Group{{Count: devices, Lifecycle: profile.Lifecycle{Rate: rate}}}}
			rec := events.NewRecorder()
			res := runFleet(t, Config{Profile: p, Broker: addr, Events: rec})
			if res.Counters["connects"] != devices {
				t.Fatalf("connects %d, want %d", res.Counters["connects"], devices)
			}
			starts := map[int]time.Time{}
			for _, e := range rec.Filter(events.Is(events.Connect)) {
				starts[e.Device-1] = e.Time
			}
			t0 := res.Run.Start
			late := 0
			for i := 0; i < devices; i++ {
				want := time.Duration(float64(i) / rate * float64(time.Second))
				got := starts[i].Sub(t0)
				// Timers may fire late on a loaded machine, never early.
				if got < want-time.Millisecond {
					t.Fatalf("device %d started at %s, before its slot %s", i, got, want)
				}
				if got > want+50*time.Millisecond {
					late++
				}
			}
			// A loaded 2-core machine delays some timers; the ramp as a whole must hold.
			if late > devices/4 {
				t.Fatalf("%d of %d devices started more than 50ms after their slot", late, devices)
			}
			// The rate itself: a ramp run too slow (or stretched by drift)
			// shows as the last devices all starting late. The median of each
			// end's tenth, not one device, so a single stalled timer does not
			// decide it.
			for _, d := range []struct {
				name   string
				lo, hi int
			}{{"first", 0, devices / 10}, {"last", devices - devices/10, devices}} {
				var lag []time.Duration
				for i := d.lo; i < d.hi; i++ {
					lag = append(lag, starts[i].Sub(t0)-time.Duration(float64(i)/rate*float64(time.Second)))
				}
				sort.Slice(lag, func(i, j int) bool { return lag[i] < lag[j] })
				if med := lag[len(lag)/2]; med > 50*time.Millisecond {
					t.Fatalf("%s tenth of the ramp started a median %s after its slots (rate %g/s)", d.name, med, rate)
				}
			}
		})
	}
}

// TestReconnectBackoff checks attempt spacing against the policy: never
// early, at most 20% late.
// The target refuses connections (a closed port): every attempt fails fast,
// so the spacing is the policy's delay alone.
func TestReconnectBackoff(t *testing.T) {
	cases := []struct {
		name string
		r    profile.Reconnect
		want []time.Duration
	}{
		// Delays of 1 s and more: a timer on a loaded 2-core machine can
		// wake up to ~80 ms late, which must stay under 20%.
		{"fixed", profile.Reconnect{Policy: profile.ReconnectFixed, Delay: time.Second, MaxAttempts: 3},
			[]time.Duration{1000, 1000, 1000}},
		{"exponential", profile.Reconnect{Policy: profile.ReconnectExponential, Delay: time.Second, Max: 3 * time.Second, Multiplier: 2, MaxAttempts: 3},
			[]time.Duration{1000, 2000, 3000}},
		{"exponential-x3", profile.Reconnect{Policy: profile.ReconnectExponential, Delay: time.Second, Max: 4 * time.Second, Multiplier: 3, MaxAttempts: 2},
			[]time.Duration{1000, 3000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var total time.Duration
			for i := range tc.want {
				tc.want[i] *= time.Millisecond
				total += tc.want[i]
			}
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			p := &profile.Profile{Name: "backoff", Duration: total + time.Second, Drain: 50 * time.Millisecond,
				Groups: []profile.Group{{Count: 3, Reconnect: tc.r}}}
			rec := events.NewRecorder()
			res := runFleet(t, Config{Profile: p, Broker: addr, Events: rec})
			if res.Counters["connects"] != 0 {
				t.Fatalf("connected to a closed port?")
			}
			// The policy's delay runs from a failure (the ConnAck event with
			// code -1) to the next attempt (the Connect event).
			attempts, failures := map[int][]time.Time{}, map[int][]time.Time{}
			for _, e := range rec.Filter(events.Is(events.Connect, events.ConnAck)) {
				if e.Kind == events.Connect {
					attempts[e.Device] = append(attempts[e.Device], e.Time)
				} else {
					failures[e.Device] = append(failures[e.Device], e.Time)
				}
			}
			for dev, ts := range attempts {
				fs := failures[dev]
				sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
				sort.Slice(fs, func(i, j int) bool { return fs[i].Before(fs[j]) })
				if len(ts) != len(tc.want)+1 || len(fs) != len(ts) {
					t.Fatalf("device %d made %d attempts (%d failures), want %d", dev, len(ts), len(fs), len(tc.want)+1)
				}
				for i, w := range tc.want {
					// The failure is emitted before retry arms the timer and
					// the attempt is stamped after it fires, so no wait may
					// be short of the policy's delay (these have no jitter).
					// A timer on a loaded 2-core machine may fire late.
					got := ts[i+1].Sub(fs[i])
					if got < w || got > w+w/5 {
						t.Errorf("device %d wait %d: %s, want %s to %s", dev, i+1, got, w, w+w/5)
					}
				}
			}
		})
	}
}

func TestReconnectDelayJitter(t *testing.T) {
	r := profile.Reconnect{Policy: profile.ReconnectExponential, Delay: time.Second, Max: 8 * time.Second, Multiplier: 2, Jitter: 0.25}
	rng := rand.New(rand.NewPCG(1, 2))
	for attempt := 1; attempt <= 10; attempt++ {
		base := min(time.Second<<(attempt-1), 8*time.Second)
		for i := 0; i < 100; i++ {
			d, ok := ReconnectDelay(r, attempt, rng)
			if !ok || d < base*3/4 || d > base*5/4 {
				t.Fatalf("attempt %d: %s outside %s +/- 25%%", attempt, d, base)
			}
		}
	}
	if _, ok := ReconnectDelay(profile.Reconnect{Policy: profile.ReconnectNone}, 1, rng); ok {
		t.Fatal("policy none reconnected")
	}
}

// TestDuplicateIDTakeoverPaho runs two paho devices sharing one client ID
// with paho's auto-reconnect: each reconnect takes the ID from the other,
// and the fleet counts the takeovers.
func TestDuplicateIDTakeoverPaho(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			addr := tg.start(t)
			p := &profile.Profile{Name: "kickloop", Duration: 5 * time.Second, Drain: 100 * time.Millisecond,
				Groups: []profile.Group{{Count: 2, ClientID: "kick-{{mod .Index 1}}",
					Lifecycle: profile.Lifecycle{Rate: 10},
					Reconnect: profile.Reconnect{Policy: profile.ReconnectFixed, Delay: time.Second, Max: time.Second}}}}
			rec := events.NewRecorder()
			res := runFleet(t, Config{Profile: p, Broker: addr, Driver: Paho{}, Events: rec})
			tk := res.Counters["takeovers"]
			if tk < 2 {
				t.Fatalf("takeovers %d, want at least 2 in a kick loop (connects %d, disconnects %v)", tk, res.Counters["connects"], res.Disconnects)
			}
			if res.Disconnects[string(events.CauseTakeover)] != tk {
				t.Fatalf("disconnects by takeover %d != takeovers %d", res.Disconnects[string(events.CauseTakeover)], tk)
			}
			t.Logf("%s: %d takeovers, %d connects in 5s", tg.name, tk, res.Counters["connects"])
		})
	}
}

// TestConnackCodes: an empty client ID with a persistent session is refused
// with CONNACK 0x02 [MQTT-3.1.3-8]; the fleet counts refusals by code.
func TestConnackCodes(t *testing.T) {
	persistent := false
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			addr := tg.start(t)
			p := &profile.Profile{Name: "codes", Duration: 300 * time.Millisecond, Drain: 50 * time.Millisecond,
				Groups: []profile.Group{
					{Name: "ok", Count: 3},
					{Name: "anon", Count: 2, ClientID: "{{if false}}x{{end}}", CleanSession: &persistent},
				}}
			res := runFleet(t, Config{Profile: p, Broker: addr})
			c := res.Counters
			if c["connack_0"] != 3 || c["connack_2"] != 2 || c["connect_failures"] != 2 {
				t.Fatalf("connack_0 %d connack_2 %d failures %d; want 3 2 2", c["connack_0"], c["connack_2"], c["connect_failures"])
			}
		})
	}
}
