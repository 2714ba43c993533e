package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/simulator"
	"github.com/mqttfleet/mqttfleet/targets"
)

func TestMain(m *testing.M) {
	// The process target runs this test binary as its broker child.
	targets.RunChild()
	// The storm holds four sockets per device in this process (device,
	// proxy both sides, broker).
	if _, _, err := simulator.RaiseOpenFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "raise open-file limit:", err)
	}
	goleak.VerifyTestMain(m,
		// testcontainers keeps a reaper-less Docker client with idle HTTP
		// connections for the process lifetime.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	)
}

// libraryOverrides scale scenarios down where the file's own size would
// cost minutes or more sockets than the machine allows; the files state the
// real sizes. By target name, then scenario.
var libraryOverrides = map[string]map[string]map[string]string{
	// Through Docker's port proxy every device costs two more descriptors
	// in the proxy process: a fifth of the storm keeps the shape.
	"mosquitto": {"reconnect-storm": {"devices": "1000", "half": "500", "jitter_peak": "400", "lockstep_peak": "250"},
		// Mosquitto holds at most 20 in flight and 1,000 queued QoS 1
		// messages per client and drops the rest: a bridge that falls
		// behind for half a second on a loaded 2-core box (it takes the
		// whole fleet) loses readings to the broker, not to Kafka. 1,000
		// readings fit in its queue whatever the machine's load.
		"kafka-async-undrained": {"devices": "10", "readings": "100", "min_lost": "500", "min_messages": "800"}},
}

// libraryDeviations are the assertions a target must report as its known
// deviation (docs/deviations.md), by target, scenario and assertion, with
// the statement. Timer deviations (Mosquitto's keepalive granularity) may
// or may not land outside the window in a given run, so only deterministic
// ones are listed; every other assertion must pass or deviate.
var libraryDeviations = map[string]map[string]map[string]string{
	"mosquitto": {
		"will-triggers":               {"second CONNECT - will once": "MQTT-3.1.2-8"},
		"v5-receive-maximum-exceeded": {"the flooder was disconnected with 0x93": "v5:MQTT-3.3.4-7"},
		"v5-topic-alias-misuse":       {"alias 0 - DISCONNECT 0x94": "v5:MQTT-3.3.2-8"},
		"v5-takeover-0x8e": {
			"plain - the old connection got DISCONNECT 0x8E":   "v5:MQTT-3.1.4-3",
			"delayed - the old connection got DISCONNECT 0x8E": "v5:MQTT-3.1.4-3",
		},
	},
}

func libraryFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("library/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no library scenarios: %v", err)
	}
	return files
}

// runLibrary runs every library scenario against a target and checks the
// verdicts; failing assertions are printed with their evidence.
func runLibrary(t *testing.T, targetName string, target func() targets.Target, wantPass bool) {
	for _, file := range libraryFiles(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			if only := os.Getenv("MQTTFLEET_SCENARIO"); only != "" && only != name {
				t.Skip("MQTTFLEET_SCENARIO selects " + only)
			}
			sc, err := Load(file, libraryOverrides[targetName][name])
			if err != nil {
				t.Fatal(err)
			}
			if targetName != "inprocess" && !sc.UsesTarget() {
				t.Skip("the scenario does not use the target broker (its fleet runs against brokers: of its own)")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			opts := Options{}
			if target != nil {
				opts.Target = target()
			}
			if testing.Verbose() {
				opts.Progress = testWriter{t}
			}
			start := time.Now()
			res, err := Run(ctx, sc, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s (%s)", Summary(sc, res), time.Since(start).Round(time.Millisecond))
			if skippedAll(res) {
				t.Skip(res.Assertions[0].Message)
			}
			if dir := os.Getenv("MQTTFLEET_SCENARIO_OUT"); dir != "" {
				// CI keeps every verdict with its evidence.
				p := filepath.Join(dir, targetName, name+".json")
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := res.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range res.Assertions {
				t.Logf("  %-7s %s: %s", a.Verdict, a.Name, a.Message)
				if a.Verdict == reports.Fail || a.Verdict == reports.Error {
					for _, e := range a.Evidence {
						t.Logf("           %s %s %s client=%s group=%s topic=%s cause=%s %s", e.Time.Format("15:04:05.000"),
							e.Source, e.Kind, e.ClientID, e.Group, e.Topic, e.Cause, e.Detail)
					}
				}
			}
			if wantPass && res.Verdict() != reports.Pass {
				t.Errorf("%s: verdict %s", name, res.Verdict())
			}
			want := maps.Clone(libraryDeviations[targetName][name]) // entries found are deleted
			for _, a := range res.Assertions {
				stmt, expected := want[a.Name]
				switch {
				case a.Verdict == reports.Deviation && targetName == "inprocess":
					t.Errorf("%q: the reference broker deviated: %s", a.Name, a.Message)
				case expected && (a.Verdict != reports.Deviation || a.Deviation == nil || a.Deviation.Statement != stmt):
					t.Errorf("%q: want the known deviation from %s, got %s %+v (%s)", a.Name, stmt, a.Verdict, a.Deviation, a.Message)
				}
				delete(want, a.Name)
			}
			for n := range want {
				t.Errorf("no assertion %q to deviate", n)
			}
		})
	}
}

// TestLibraryInProcess is the acceptance run: every library scenario passes
// against the in-process reference broker.
func TestLibraryInProcess(t *testing.T) {
	runLibrary(t, "inprocess", nil, true)
}

// TestLibraryMosquitto runs the library against the Mosquitto container
// (the image in $MQTTFLEET_MOSQUITTO_IMAGE; make images builds one). Where
// the standard leaves a choice the files declare Mosquitto's behaviour per
// target, so its verdicts must pass too. Skipped without Docker or the
// image, and with -short.
func TestLibraryMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the Mosquitto container run takes minutes")
	}
	runLibrary(t, "mosquitto", func() targets.Target { return targets.NewMosquitto() }, true)
}

func skippedAll(res *reports.Results) bool {
	for _, a := range res.Assertions {
		if a.Verdict != reports.Skipped {
			return false
		}
	}
	return len(res.Assertions) > 0
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestDemo runs the make demo scenario, scaled down (the file runs a
// thousand devices for about a minute), and checks that it passes and that
// its dry run describes every step.
func TestDemo(t *testing.T) {
	sc, err := Load("demo.yaml", map[string]string{"devices": "200", "peak_connects": "140", "phase": "2s"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Describe(&b, sc); err != nil {
		t.Fatal(err)
	}
	for _, s := range sc.Steps {
		if !strings.Contains(b.String(), s.Name) {
			t.Errorf("dry run does not mention step %s", s.Name)
		}
	}
	if testing.Short() {
		t.Skip("-short: the demo run takes half a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(Summary(sc, res))
	for _, a := range res.Assertions {
		t.Logf("  %-7s %s: %s", a.Verdict, a.Name, a.Message)
	}
	if res.Verdict() != reports.Pass {
		t.Errorf("demo verdict %s", res.Verdict())
	}
	if len(res.Assertions) != 7 {
		t.Errorf("the demo ends in %d verdicts, want the README's seven", len(res.Assertions))
	}
	// Its report marks the steps on every time chart, as Chromium renders it:
	// the wave (an instant reset of every link) and the half-open window.
	var page bytes.Buffer
	if err := reports.HTML(&page, res); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"half-open", "wave"} {
		if !strings.Contains(page.String(), `data-step="`+step+`"`) {
			t.Errorf("the demo report has no marker for step %s", step)
		}
	}
	showInChromium(t, page.String(), "wave")
}
