package scenarios

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/targets"
)

// TestBrokerRestartDurableVerdicts runs the durable-state library scenario
// against the reference broker as a child process: with persistence on
// (sync every_write) every check passes and the restart events say what the
// broker recovered; with persistence off the same file is red, each check
// failing for the state it lost.
func TestBrokerRestartDurableVerdicts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two runs with broker processes")
	}
	run := func(t *testing.T, vars map[string]string, target ...targets.Target) (*reports.Results, []events.Event) {
		t.Helper()
		sc, err := Load("library/broker-restart-durable.yaml", vars)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		rec := events.NewRecorder()
		opts := Options{Events: rec}
		if len(target) > 0 {
			opts.Target = target[0]
		}
		res, err := Run(ctx, sc, opts)
		if err != nil {
			t.Fatal(err)
		}
		if skippedAll(res) {
			t.Skip(res.Assertions[0].Message)
		}
		for _, a := range res.Assertions {
			t.Logf("  %-7s %s: %s", a.Verdict, a.Name, a.Message)
		}
		return res, rec.Events()
	}
	t.Run("persistence on", func(t *testing.T) {
		res, evs := run(t, nil)
		if v := res.Verdict(); v != reports.Pass {
			t.Fatalf("verdict %s, want pass", v)
		}
		var stops, starts []string
		for _, e := range evs {
			if e.Fault != faultRestart {
				continue
			}
			switch e.Kind {
			case events.FaultInjected:
				stops = append(stops, e.Detail)
			case events.FaultRemoved:
				starts = append(starts, e.Detail)
			}
		}
		if len(stops) != 2 || !strings.Contains(stops[0], "gracefully") || !strings.Contains(stops[1], "SIGKILL") {
			t.Errorf("stop events %q, want a graceful stop then a SIGKILL", stops)
		}
		// Both restarts find the retained message, the keeper's session
		// and its 100 queued messages on disk.
		for i, s := range starts {
			if !strings.Contains(s, "recovered retained=1 sessions=1 queued=100 ") {
				t.Errorf("start event %d %q does not report the recovered state", i, s)
			}
		}
		if len(starts) != 2 {
			t.Errorf("%d start events, want 2", len(starts))
		}
	})
	t.Run("persistence off", func(t *testing.T) {
		res, _ := run(t, map[string]string{"persist": "false", "wait": "2s"})
		if v := res.Verdict(); v == reports.Pass {
			t.Fatalf("verdict pass with persistence off")
		}
		// The first restart loses everything; the timeline then stops at
		// the wait for the queued messages, so the later phases count
		// nothing either: every check fails, none passes on nothing.
		for _, name := range []string{
			"the session is resumed after each restart",
			"graceful restart - every queued QoS 1 message delivered once",
			"kill -9 - every queued QoS 1 message delivered once",
			"the retained message is still there after each restart",
			"the subscription survived both restarts",
		} {
			a := assertionNamed(res, name)
			if a == nil || a.Verdict != reports.Fail {
				t.Errorf("%q: want fail, got %+v", name, a)
			}
		}
		if a := assertionNamed(res, "graceful restart - every queued QoS 1 message delivered once"); a != nil && !strings.Contains(a.Message, "100 lost") {
			t.Errorf("graceful delivery: %q, want 100 lost", a.Message)
		}
	})
}

// TestBrokerRestartDurableMosquittoOff: the Mosquitto container passes the
// library file only because the scenario turns its persistence on (the
// library run); with it off the same restarts lose the state.
func TestBrokerRestartDurableMosquittoOff(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a Mosquitto container run")
	}
	sc, err := Load("library/broker-restart-durable.yaml", map[string]string{"persist": "false", "wait": "2s"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := events.NewRecorder()
	res, err := Run(ctx, sc, Options{Target: targets.NewMosquitto(), Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	if skippedAll(res) {
		t.Skip(res.Assertions[0].Message)
	}
	// The timeline stops at the first wait: one restart, told once.
	for _, k := range []events.Kind{events.FaultInjected, events.FaultRemoved} {
		if n := rec.Count(func(e events.Event) bool { return e.Kind == k && e.Fault == faultRestart }); n != 1 {
			t.Errorf("%d %s events for the graceful restart, want 1", n, k)
		}
	}
	for _, a := range res.Assertions {
		t.Logf("  %-7s %s: %s", a.Verdict, a.Name, a.Message)
	}
	// Lost, not unreachable: the keeper reconnected (the pinned port kept
	// the address) and found nothing queued.
	if a := assertionNamed(res, "graceful restart - every queued QoS 1 message delivered once"); a == nil || a.Verdict != reports.Fail || !strings.Contains(a.Message, "100 lost") {
		t.Errorf("graceful delivery without persistence: want fail with 100 lost, got %+v", a)
	}
}

func assertionNamed(res *reports.Results, name string) *reports.Assertion {
	for i := range res.Assertions {
		if res.Assertions[i].Name == name {
			return &res.Assertions[i]
		}
	}
	return nil
}

// TestRestartModeErrors: restart modes and target persistence are checked
// at load, with the file, line and field of the mistake.
func TestRestartModeErrors(t *testing.T) {
	const file = `name: modes
clients:
  - name: c
steps:
  - do: restart_broker
    mode: kil
  - do: start_broker
    mode: kill
assertions:
  - name: a
    expect: count
    events: {kind: connack, client: c}
    min: 1
`
	cases := []struct {
		name, from, to string
		line           int
		field, msg     string
	}{
		{"unknown mode", "", "", 6, "steps[0].mode", `did you mean "kill"`},
		{"mode on start_broker", "", "", 8, "steps[1].mode", "does not use mode"},
		{"persistence in process", "name: modes\n", "name: modes\ntarget: {kind: inprocess, persistence: true}\n", 2, "target.persistence", "kind process or mosquitto"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte(strings.Replace(file, tc.from, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p, nil)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T %v, want Errors", err, err)
			}
			for _, e := range errs {
				if e.Field == tc.field {
					if e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) || e.File != p {
						t.Errorf("got %v, want %s:%d %s", e, p, tc.line, tc.msg)
					}
					return
				}
			}
			t.Errorf("no error for %s in %v", tc.field, err)
		})
	}
}

// TestKillNeedsAKillableTarget: a kill step against the in-process broker
// (which cannot be killed without killing the harness) skips the scenario
// with the reason, never passing on nothing.
func TestKillNeedsAKillableTarget(t *testing.T) {
	sc, err := Parse([]byte(`name: kill-inprocess
clients:
  - name: c
steps:
  - do: restart_broker
    mode: kill
assertions:
  - name: a
    expect: count
    events: {kind: connack, client: c}
    min: 1
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Assertions[0]
	if a.Verdict != reports.Skipped || !strings.Contains(a.Message, "kill (step restart_broker#1") {
		t.Errorf("verdict %s %q, want skipped for the kill capability", a.Verdict, a.Message)
	}
}

// TestKafkaBrokerRestartRed: the Kafka restart reproduction with the broker's
// persistence off loses readings end to end: the broker comes back without
// the bridge's session, and what devices publish before the bridge
// subscribes again reaches no one. (The library run is the green half.)
func TestKafkaBrokerRestartRed(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a Kafka pipeline run")
	}
	sc, err := Load("library/kafka-broker-restart.yaml", map[string]string{"persist": "false"})
	if err != nil {
		t.Fatal(err)
	}
	res := runLogged(t, sc, Options{}, 2*time.Minute)
	if a := assertionNamed(res, "the broker was killed and came back"); a == nil || a.Verdict != reports.Pass {
		t.Errorf("the kill must still happen: %+v", a)
	}
	for _, name := range []string{"the bridge found its session after the kill", "nothing lost from device to Kafka across the kill"} {
		if a := assertionNamed(res, name); a == nil || a.Verdict != reports.Fail {
			t.Errorf("%q: want fail without persistence, got %+v", name, a)
		}
	}
}

// TestBrokerRestartKillIsACrash: the kill really is one. With the store
// committed only every 10 s (sync: interval), a graceful restart still
// loses nothing (the broker commits as it closes) while a kill -9 loses the
// queued messages it had acknowledged since the last commit.
func TestBrokerRestartKillIsACrash(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a run with broker processes")
	}
	sc, err := Load("library/broker-restart-durable.yaml", map[string]string{"wait": "2s"})
	if err != nil {
		t.Fatal(err)
	}
	res := runLogged(t, sc, Options{Target: &targets.Process{Sync: "interval", SyncInterval: 10 * time.Second}}, 2*time.Minute)
	// Acknowledgements of the first batch's deliveries may be lost by the
	// kill too, so that batch may come again: only its loss is checked.
	if a := assertionNamed(res, "graceful restart - every queued QoS 1 message delivered once"); a == nil || !strings.Contains(a.Message, " 0 lost") {
		t.Errorf("graceful restart with sync interval: want nothing lost, got %+v", a)
	}
	if a := assertionNamed(res, "kill -9 - every queued QoS 1 message delivered once"); a == nil || a.Verdict != reports.Fail || strings.Contains(a.Message, " 0 lost") {
		t.Errorf("kill -9 with sync interval 10s: want messages lost, got %+v", a)
	}
}
