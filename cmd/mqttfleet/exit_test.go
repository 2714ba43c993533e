package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/reports"
)

// The exit-code contract, command by command: 0 pass, 1 a verdict failed,
// 2 bad usage or input (nothing ran), 3 the target could not be reached.

func TestSimulateClosedPortExits3(t *testing.T) {
	out := filepath.Join(t.TempDir(), "results.json")
	code := run([]string{"simulate", "--broker", "tcp://127.0.0.1:1", "--devices", "3", "--duration", "1s",
		"--progress", "off", "--results", out})
	if code != reports.ExitTargetUnavailable {
		t.Fatalf("simulate against a closed port exited %d, want 3", code)
	}
	res, err := reports.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Status != reports.StatusTargetUnavailable || !strings.Contains(res.Run.StatusReason, "never answered") {
		t.Fatalf("results say status %q (%q), want target_unavailable with the reason", res.Run.Status, res.Run.StatusReason)
	}
	if res.Verdict() == reports.Pass {
		t.Fatal("a run against a closed port has a passing verdict")
	}
}

func TestSimulateJudgesItsFleet(t *testing.T) {
	b := brokertest.Start(t, nil)
	out := filepath.Join(t.TempDir(), "results.json")
	code := run([]string{"simulate", "--broker", brokertest.TCP(b), "--devices", "4", "--duration", "1500ms",
		"--interval", "100ms", "--progress", "off", "--results", out})
	if code != reports.ExitPass {
		t.Fatalf("simulate against a healthy broker exited %d, want 0", code)
	}
	res, err := reports.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]reports.Verdict{}
	for _, a := range res.Assertions {
		got[a.Name] = a.Verdict
	}
	if got["devices connected"] != reports.Pass || got["message loss"] != reports.Pass {
		t.Fatalf("verdicts %v, want devices connected and message loss (QoS 1 default) both pass", got)
	}
	// The same fleet held to a bound it cannot meet fails, exit 1.
	code = run([]string{"simulate", "--broker", brokertest.TCP(b), "--devices", "2", "--duration", "500ms",
		"--progress", "off", "--results", out, "--min-connected", "3"})
	if code != reports.ExitFail {
		t.Fatalf("--min-connected 3 with 2 devices exited %d, want 1", code)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\ngroups: [{name: g, count: nope}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"simulate", "--devices", "0"},
		{"simulate", "--devices", "-3"},
		{"simulate", "--qos", "3"},
		{"simulate", "--min-connected", "150%"},
		{"simulate", "--start-at", "soon", "--broker", "tcp://127.0.0.1:1"},
		{"run", bad},
		{"run", "--dry-run", "--target", "nonsense", "../../scenarios/demo.yaml"},
		{"nosuchcommand"},
	} {
		if code := run(args); code != reports.ExitInvalid {
			t.Errorf("%q exited %d, want 2", args, code)
		}
	}
}

func TestDryRunChecksTheTarget(t *testing.T) {
	if code := run([]string{"run", "--dry-run", "--target", "tcp://127.0.0.1:1", "../../scenarios/demo.yaml"}); code != reports.ExitTargetUnavailable {
		t.Fatalf("dry run against a closed port exited %d, want 3", code)
	}
	b := brokertest.Start(t, nil)
	if code := run([]string{"run", "--dry-run", "--target", "tcp://" + brokertest.TCP(b), "../../scenarios/demo.yaml"}); code != reports.ExitPass {
		t.Fatalf("dry run against a live broker exited %d, want 0", code)
	}
}

func TestRunAgainstAnUnreachableTargetExits3(t *testing.T) {
	out := t.TempDir()
	code := run([]string{"run", "--target", "tcp://127.0.0.1:1", "--out", out, "--progress", "off", "../../scenarios/library/retained.yaml"})
	if code != reports.ExitTargetUnavailable {
		t.Fatalf("run against a closed port exited %d, want 3", code)
	}
	res, err := reports.Read(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Status != reports.StatusTargetUnavailable {
		t.Fatalf("results status %q, want target_unavailable", res.Run.Status)
	}
}

// TestRunDeviationAndStrict: a miss that a known deviation explains exits 0
// and is reported as a deviation (summary, results, JUnit); --strict makes
// the same run exit 1. The in-process broker stands in for a Mosquitto the
// user runs, by address with --deviations mosquitto, and the scenario
// demands a will that a second CONNECT never sends here (no client has one),
// citing the statements of Mosquitto's declared deviation.
func TestRunDeviationAndStrict(t *testing.T) {
	b := brokertest.Start(t, nil)
	dir := t.TempDir()
	sc := filepath.Join(dir, "dev.yaml")
	text := `name: dev
clients:
  - {name: watcher, subscriptions: [{filter: "wills/#", qos: 1}]}
steps:
  - {name: settle, delay: 200ms, do: mark}
assertions:
  - name: second CONNECT - will once
    expect: count
    events: {kind: publish_received, client: watcher, topic: wills/second-connect}
    equals: 1
    statements: [MQTT-3.1.2-8, MQTT-3.1.0-2]
`
	if err := os.WriteFile(sc, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"run", "--target", "tcp://" + brokertest.TCP(b), "--progress", "off", sc}
	out := filepath.Join(dir, "lenient")
	if code := run(append(base, "--out", out, "--deviations", "mosquitto")); code != reports.ExitPass {
		t.Fatalf("a known deviation exited %d, want 0", code)
	}
	res, err := reports.Read(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a := res.Assertions[0]; a.Verdict != reports.Deviation || a.Deviation == nil || a.Deviation.Statement != "MQTT-3.1.2-8" {
		t.Fatalf("assertion %+v, want a deviation from MQTT-3.1.2-8", a)
	}
	junit, err := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<property name="deviations" value="1">`, `<property name="verdict" value="deviation">`, `<skipped message="deviation: `} {
		if !strings.Contains(string(junit), want) {
			t.Errorf("junit.xml lacks %s", want)
		}
	}
	if code := run(append(base, "--out", filepath.Join(dir, "strict"), "--deviations", "mosquitto", "--strict")); code != reports.ExitFail {
		t.Fatalf("--strict exited %d, want 1", code)
	}
	// Without the table the miss is unexplained: a failure.
	if code := run(append(base, "--out", filepath.Join(dir, "plain"))); code != reports.ExitFail {
		t.Fatalf("an unexplained miss exited %d, want 1", code)
	}
	if code := run(append(base, "--out", filepath.Join(dir, "bad"), "--deviations", "mosquito")); code != reports.ExitInvalid {
		t.Fatalf("--deviations mosquito exited %d, want 2", code)
	}
}
