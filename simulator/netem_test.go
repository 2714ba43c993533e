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

// TestBehindNetemReset puts a fleet behind the in-process fault proxy,
// resets every link once all devices are up, and checks the fleet counts
// the dropped links and reconnects after the policy's delay (never early,
// at most 20% late) — and no false loss (messages sent in the last grace
// period before a link died are not expected).
func TestBehindNetemReset(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) { testBehindNetemReset(t, tg.start(t)) })
	}
}

func testBehindNetemReset(t *testing.T, addr string) {
	_, host, _ := splitAddr(addr)
	px := netem.NewProxy(netem.ProxyConfig{Listen: "127.0.0.1:0", Upstream: host})
	if err := px.Start(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() { _ = px.Close() })
	const devices = 10
	p := echoProfile(devices, 0, 1, 100*time.Millisecond)
	p.Duration = 5 * time.Second
	p.Groups[0].Netem = &profile.Netem{Group: "edge"}
	const delay = 1500 * time.Millisecond // 20% of it outlasts a timer stall on a loaded 2-core machine
	p.Groups[0].Reconnect = profile.Reconnect{Policy: profile.ReconnectFixed, Delay: delay}
	rec := events.NewRecorder()
	f, err := New(Config{Profile: p, Broker: addr, Netem: px, Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan *reports.Results, 1)
	go func() {
		res, _ := f.Run(ctx)
		done <- res
	}()
	if _, err := rec.WaitN(ctx, events.Is(events.Subscribed), devices); err != nil {
		t.Fatalf("fleet did not come up: %v", err)
	}
	if _, err := px.Apply(netem.ByGroup("edge"), netem.Fault{Kind: netem.Reset}); err != nil {
		t.Fatalf("apply reset: %v", err)
	}
	res := <-done
	c := res.Counters
	if c["reconnects"] < devices || res.Disconnects[string(events.CauseIOError)] < devices {
		t.Fatalf("reconnects %d, io disconnects %d: want at least %d each", c["reconnects"], res.Disconnects[string(events.CauseIOError)], devices)
	}
	if c["lost"] != 0 {
		t.Fatalf("lost %d after a reset: the grace rule should exclude messages in flight", c["lost"])
	}
	if c["expected"] == 0 || c["received_distinct"] < c["expected"] {
		t.Fatalf("expected %d received %d", c["expected"], c["received_distinct"])
	}
	// The policy's delay runs from the lost link to the next attempt.
	lostAt := map[int]time.Time{}
	for _, e := range rec.Events() {
		switch {
		case e.Kind == events.Disconnect && e.Cause == events.CauseIOError:
			lostAt[e.Device] = e.Time
		case e.Kind == events.Connect && !lostAt[e.Device].IsZero():
			// The Disconnect is emitted before retry arms the timer and the
			// Connect is stamped after it fires: never early. A timer on a
			// loaded 2-core machine may fire late.
			if got := e.Time.Sub(lostAt[e.Device]); got < delay || got > delay+delay/5 {
				t.Errorf("device %d reconnected %s after losing its link, want %s to %s", e.Device, got, delay, delay+delay/5)
			}
			lostAt[e.Device] = time.Time{}
		}
	}
}
