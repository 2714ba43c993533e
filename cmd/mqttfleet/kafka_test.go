package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/reports"
)

// TestKafkaServeAsExternalCluster starts `mqttfleet kafka serve` as a
// separate process, the way a user's own cluster is reached, and runs a
// scenario whose bridge and watcher use it by bootstrap address only; then
// Ctrl-C stops the cluster cleanly.
func TestKafkaServeAsExternalCluster(t *testing.T) {
	serve := exec.Command(os.Args[0], "kafka", "serve", "--brokers", "3", "--topic", "telemetry:4")
	serve.Env = append(os.Environ(), "MQTTFLEET_BE_MAIN=1")
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill() })
	lines := bufio.NewScanner(stdout)
	bootstrap := ""
	for bootstrap == "" && lines.Scan() {
		bootstrap, _ = strings.CutPrefix(lines.Text(), "bootstrap: ")
	}
	if bootstrap == "" || strings.Count(bootstrap, ",") != 2 {
		t.Fatalf("kafka serve printed no bootstrap address of 3 brokers (got %q)", bootstrap)
	}
	go func() { // keep the pipe drained; it closes when the process ends
		for lines.Scan() {
		}
	}()

	out := t.TempDir()
	code := run([]string{"run", "--out", out, "--progress", "off", "--set", "bootstrap=" + bootstrap, "testdata/kafka-external.yaml"})
	res, err := reports.Read(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Assertions {
		t.Logf("%s %s: %s", a.Verdict, a.Name, a.Message)
	}
	if code != reports.ExitPass {
		t.Fatalf("run against the external cluster exited %d, want 0", code)
	}

	if err := serve.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kafka serve after Ctrl-C: %v, want exit 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("kafka serve did not stop within 30s of Ctrl-C")
	}
}

func TestKafkaUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"kafka", "bridge", "--acks", "2"},
		{"kafka", "bridge", "--mode", "fast"},
		{"kafka", "bridge", "--idempotent", "--acks", "1"},
		{"kafka", "serve", "--topic", "t:zero"},
		{"kafka", "watch", "--offsets", "latest"},
		{"kafka"},
	} {
		if code := run(args); code != reports.ExitInvalid {
			t.Errorf("%q exited %d, want 2", args, code)
		}
	}
}
