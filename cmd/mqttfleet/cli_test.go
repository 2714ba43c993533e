package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/reports"
)

// capture runs f with os.Stdout redirected and returns what it printed.
func capture(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	f()
	os.Stdout = saved
	w.Close()
	return string(<-done)
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"broker", "--help"}, {"simulate", "--help"}, {"run", "--help"}, {"conformance", "--help"},
		{"netem", "--help"}, {"report", "--help"}, {"report", "merge", "--help"}, {"report", "html", "-h"},
		{"passwd", "--help"}, {"version", "--help"},
	} {
		out := capture(t, func() {
			if code := run(args); code != 0 {
				t.Errorf("%q exited %d, want 0", args, code)
			}
		})
		if !strings.Contains(out, "Usage:") {
			t.Errorf("%q printed no usage:\n%s", args, out)
		}
	}
	// The exit-code contract is in the top-level help.
	out := capture(t, func() { run([]string{"--help"}) })
	if !strings.Contains(out, "3 the target could not") {
		t.Errorf("top-level help does not state the exit codes:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out := capture(t, func() {
		if code := run([]string{"version"}); code != 0 {
			t.Errorf("version exited %d", code)
		}
	})
	if !strings.HasPrefix(out, "mqttfleet ") || !strings.Contains(out, runtime.Version()) || !strings.Contains(out, "commit ") {
		t.Errorf("version printed %q, want the module version, commit and %s", out, runtime.Version())
	}
}

func TestCompletion(t *testing.T) {
	out := capture(t, func() {
		if code := run([]string{"completion", "bash"}); code != 0 {
			t.Errorf("completion bash exited %d", code)
		}
	})
	if !strings.Contains(out, "__start_mqttfleet") {
		t.Errorf("completion bash printed no bash completion script (%d bytes)", len(out))
	}
}

// Flags go before or after positional arguments, as in every Go tool built
// on cobra; the old parser took "--target" after a file as a file name.
func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	err := execute(context.Background(), []string{"run", "../../scenarios/demo.yaml", "--dry-run", "--target", "tcp://127.0.0.1:1"})
	if reports.ExitCode(nil, err) != reports.ExitTargetUnavailable {
		t.Fatalf("run FILE --dry-run --target closed-port: %v, want the target check to run (exit 3)", err)
	}
	for i := range 2 {
		writeShard(t, filepath.Join(dir, "s"+string(rune('0'+i))+".json"), i, 2, i*5, 5)
	}
	merged := filepath.Join(dir, "m.json")
	if err := execute(context.Background(), []string{"report", "merge", filepath.Join(dir, "s0.json"), filepath.Join(dir, "s1.json"), "-o", merged}); err != nil {
		t.Fatalf("report merge FILES -o OUT: %v", err)
	}
	if _, err := reports.Read(merged); err != nil {
		t.Fatal(err)
	}
	// A shard given twice is refused by the command too.
	err = execute(context.Background(), []string{"report", "merge", "-o", merged, filepath.Join(dir, "s0.json"), filepath.Join(dir, "s0.json")})
	if err == nil || !strings.Contains(err.Error(), "a shard counts once") || !strings.Contains(err.Error(), "part 1 = "+filepath.Join(dir, "s0.json")) {
		t.Fatalf("merging a shard twice: %v", err)
	}
}

// Scripts written for the old flag parser (-target, -dry-run) keep working.
func TestSingleDashLongFlags(t *testing.T) {
	err := execute(context.Background(), []string{"run", "-dry-run", "-target=tcp://127.0.0.1:1", "../../scenarios/demo.yaml"})
	if reports.ExitCode(nil, err) != reports.ExitTargetUnavailable {
		t.Fatalf("run -dry-run -target=closed-port: %v, want the target check (exit 3)", err)
	}
	// A negative number stays a value, so its error names the flag.
	err = execute(context.Background(), []string{"simulate", "--devices", "-3"})
	if reports.ExitCode(nil, err) != reports.ExitInvalid || !strings.Contains(err.Error(), "--devices") {
		t.Fatalf("simulate --devices -3: %v", err)
	}
}

// `shards rehearse` runs an Indexed Job's pods as processes and merges them:
// the merged totals are the sum of the shards', its span the wall-clock
// span of all of them.
func TestShardsRehearsalMerges(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(profile, []byte(`name: rehearse
seed: 3
duration: 3s
drain: 1s
groups:
  - name: devices
    count: 300
    client_id: "r-{{.Index}}"
    publish: {interval: 1s, qos: 1, topic: "r/{{.Index}}"}
    subscriptions: [{filter: "r/{{.Index}}", qos: 1}]
    lifecycle: {rate: 1000}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	manifests := filepath.Join(dir, "m.yaml")
	if code := run([]string{"shards", "manifests", "--profile", profile, "--shards", "3", "-o", manifests}); code != 0 {
		t.Fatalf("shards manifests exited %d", code)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(os.Args[0], "shards", "rehearse", "--manifests", manifests, "--out", out)
	cmd.Env = append(os.Environ(), "MQTTFLEET_BE_MAIN=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shards rehearse: %v\n%s", err, b)
	}
	merged, err := reports.Read(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var parts []*reports.Results
	for i := range 3 {
		p, err := reports.Read(filepath.Join(out, "results", fmt.Sprintf("shard-%d.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	start, end := parts[0].Run.Start, parts[0].Run.End
	for _, k := range []string{"devices", "connects", "publishes_sent", "publishes_received", "expected", "lost"} {
		var sum int64
		for _, p := range parts {
			sum += p.Counters[k]
			if p.Run.Start.Before(start) {
				start = p.Run.Start
			}
			if p.Run.End.After(end) {
				end = p.Run.End
			}
		}
		if merged.Counters[k] != sum || (k == "devices" && sum != 300) || (k == "publishes_sent" && sum == 0) {
			t.Errorf("%s: merged %d, shards sum %d", k, merged.Counters[k], sum)
		}
	}
	if !merged.Run.Start.Equal(start) || !merged.Run.End.Equal(end) {
		t.Errorf("merged span %s..%s, shards %s..%s", merged.Run.Start, merged.Run.End, start, end)
	}
	for _, f := range []string{"report.html", "junit.xml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
