package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/events"
)

// TestBadLinkFaultSteps: each mistake in a link fault step is one error
// naming the file, the line and the field. The cases replace the base's
// blackhole step (lines 18-19: do, group).
func TestBadLinkFaultSteps(t *testing.T) {
	const step = "    do: blackhole\n    group: sensors\n"
	cases := []struct {
		name, to string
		line     int
		field    string
		msg      string
	}{
		{"loss without a probability", "    do: loss\n    group: sensors\n", 16, "steps[1].probability", "needs a probability"},
		{"loss probability above 1", "    do: loss\n    group: sensors\n    probability: 5\n", 20, "steps[1].probability", "between 0 and 1"},
		{"loss with both models", "    do: loss\n    group: sensors\n    probability: 0.1\n    p: 0.1\n    r: 0.5\n", 16, "steps[1]", "not both"},
		{"gilbert-elliott without r", "    do: loss\n    group: sensors\n    p: 0.1\n", 16, "steps[1].r", "needs r"},
		{"r without p", "    do: loss\n    group: sensors\n    r: 0.5\n", 16, "steps[1].p", "need p"},
		{"unknown packet type", "    do: loss\n    group: sensors\n    probability: 0.1\n    packets: [publish, pubak]\n", 21, "steps[1].packets[1]", `did you mean "puback"`},
		{"duplicate without a probability", "    do: duplicate\n    group: sensors\n", 16, "steps[1].probability", "needs a probability"},
		{"reorder window of one", "    do: reorder\n    group: sensors\n    window: 1\n", 20, "steps[1].window", "at least 2"},
		{"nat_idle without idle", "    do: nat_idle\n    group: sensors\n", 16, "steps[1].idle", "needs idle"},
		{"nat_idle with a direction", "    do: nat_idle\n    group: sensors\n    idle: 2s\n    direction: upstream\n", 21, "steps[1].direction", "whole link"},
		{"field loss does not use", "    do: loss\n    group: sensors\n    probability: 0.1\n    window: 4\n", 21, "steps[1].window", "does not use window"},
		{"negative burst", "    do: bandwidth\n    group: sensors\n    rate: 1000\n    burst: -1\n", 21, "steps[1].burst", "must not be negative"},
		{"link fault on a group not behind the proxy", "    do: nat_rebind\n    group: direct\n", 19, "steps[1].group", "add proxy: true"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(base, step, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *Error at line %d", err, tc.line)
			}
			t.Log(err)
			if se.File != path || se.Line != tc.line || se.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %s:%d field %q %q; want line %d field %q saying %q", se.File, se.Line, se.Field, err, tc.line, tc.field, tc.msg)
			}
		})
	}
}

// TestLinkFaultStepsLoadAndDescribe: every link fault step of the docs loads, and the dry run names its parameters.
func TestLinkFaultStepsLoadAndDescribe(t *testing.T) {
	steps := []string{
		"{do: loss, group: sensors, direction: downstream, probability: 0.05, packets: [publish]}",
		"{do: loss, group: sensors, p: 0.01, r: 0.3, loss_bad: 1, loss_good: 0}",
		"{do: duplicate, group: sensors, probability: 0.02}",
		"{do: reorder, group: sensors, window: 4, hold: 100ms}",
		"{do: bandwidth, group: sensors, rate: 10000, burst: 50000}",
		"{do: nat_idle, group: sensors, idle: 120s}",
		"{do: nat_rebind, group: sensors, every: 700ms}",
	}
	want := []string{"probability=0.05 packets=publish", "p=0.01 r=0.3", "probability=0.02", "window=4 hold=100ms",
		"burst=50000B", "idle=2m0s", "nat_rebind sensors every 700ms"}
	text := strings.Replace(base, "  - name: cut\n    delay: 1s\n    do: blackhole\n    group: sensors\n",
		"  - "+strings.Join(steps, "\n  - ")+"\n", 1)
	sc, err := Parse([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if d := describe(&sc.Steps[i+1]); !strings.Contains(d, w) {
			t.Errorf("step %s: described %q, want %q in it", steps[i], d, w)
		}
	}
}

// TestNetemGroupCounterNames: per-client link counters are known before a
// run only for groups and clients behind the proxy.
func TestNetemGroupCounterNames(t *testing.T) {
	sc, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{"netem_dropped_down:sensors": true, "netem_nat_dropped:sensors": true,
		"netem_dropped:direct": false, "netem_dropped:watcher": false, "lost:sensors": false, "netem_droped:sensors": false} {
		if got := sc.isNetemGroupCounter(name); got != ok {
			t.Errorf("%s: known = %v, want %v", name, got, ok)
		}
	}
}

// TestLinkNote: a delivery verdict names what the proxy did on the links of
// its receivers, and nothing when it did nothing there.
func TestLinkNote(t *testing.T) {
	sc, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &Assertion{From: &Matcher{Client: "watcher"}, To: &Matcher{Group: "sensors"}}
	evs := []events.Event{{Kind: events.PublishReceived, Group: "sensors", ClientID: "sensors-0"},
		{Kind: events.PublishSent, Group: "watcher", ClientID: "watcher"}}
	counters := map[string]int64{"netem_dropped:sensors": 20, "netem_duplicated:sensors": 3, "netem_dropped:other": 9}
	if got, want := sc.linkNote(a, evs, counters), "; the links of sensors dropped 20 packets, doubled 3 (netem)"; got != want {
		t.Errorf("note %q, want %q", got, want)
	}
	if got := sc.linkNote(a, evs, map[string]int64{"netem_dropped:sensors": 0}); got != "" {
		t.Errorf("note %q with nothing counted, want none", got)
	}
}
