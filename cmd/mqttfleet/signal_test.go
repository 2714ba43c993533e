package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/reports"
)

// TestMain lets a test run this binary as mqttfleet itself, so signals
// reach a real process: MQTTFLEET_BE_MAIN=1 test-binary simulate ...
func TestMain(m *testing.M) {
	if os.Getenv("MQTTFLEET_BE_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestInterruptWritesPartialResults: the first Ctrl-C stops a timed run
// cleanly; the results file is written, marked interrupted, and the exit
// code is 1 (partial results are never a pass).
func TestInterruptWritesPartialResults(t *testing.T) {
	b := brokertest.Start(t, nil)
	out := filepath.Join(t.TempDir(), "results.json")
	cmd := exec.Command(os.Args[0], "simulate", "--broker", brokertest.TCP(b), "--devices", "3", "--duration", "5m",
		"--interval", "100ms", "--progress", "plain", "--progress-every", "100ms", "--results", out)
	cmd.Env = append(os.Environ(), "MQTTFLEET_BE_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := bufio.NewScanner(stderr)
	var log []string
	// Interrupt once the whole fleet is up and messages flow.
	for lines.Scan() {
		log = append(log, lines.Text())
		if strings.Contains(lines.Text(), "connected 3/3") && !strings.Contains(lines.Text(), "recv 0 ") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		log = append(log, lines.Text())
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != reports.ExitFail {
		t.Fatalf("interrupted simulate ended with %v, want exit 1\n%s", err, strings.Join(log, "\n"))
	}
	res, err := reports.Read(out)
	if err != nil {
		t.Fatalf("no results after Ctrl-C: %v", err)
	}
	if res.Run.Status != reports.StatusInterrupted || res.Counters["publishes_received"] == 0 {
		t.Fatalf("results status %q, %d received: want interrupted with what ran", res.Run.Status, res.Counters["publishes_received"])
	}
	if res.Run.Duration() > time.Minute {
		t.Fatalf("the run lasted %s after Ctrl-C", res.Run.Duration())
	}
	if !strings.Contains(strings.Join(log, "\n"), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", strings.Join(log, "\n"))
	}
}

// TestNetemLeavesAResultsFile: the standalone proxy, stopped with Ctrl-C,
// writes its links and fault windows through the results model.
func TestNetemLeavesAResultsFile(t *testing.T) {
	b := brokertest.Start(t, nil)
	out := filepath.Join(t.TempDir(), "netem.json")
	cmd := exec.Command(os.Args[0], "netem", "--listen", "127.0.0.1:0", "--upstream", brokertest.TCP(b), "--api", "", "--results", out)
	cmd.Env = append(os.Environ(), "MQTTFLEET_BE_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := bufio.NewScanner(stdout)
	addr := ""
	for addr == "" && lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "netem: "); ok {
			addr, _, _ = strings.Cut(a, " ")
		}
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial the proxy at %q: %v", addr, err)
	}
	// A CONNECT through the proxy and its CONNACK back prove the link is up.
	if _, err := c.Write([]byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 1, 'n'}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 {
		t.Fatalf("no CONNACK through the proxy: %v %x", err, ack)
	}
	c.Close()
	go func() {
		for lines.Scan() {
		}
	}()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("netem stopped with %v, want exit 0", err)
	}
	res, err := reports.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != reports.KindNetem || res.Counters["links_opened"] != 1 {
		t.Fatalf("netem results: kind %q, links_opened %d; want netem, 1", res.Kind, res.Counters["links_opened"])
	}
	// What link faults did is in the file too (nothing, here: no fault was applied).
	if n, ok := res.Counters["netem_dropped_up"]; !ok || n != 0 {
		t.Fatalf("netem results: netem_dropped_up = %d (present %v), want 0", n, ok)
	}
}
