package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/reports"
)

// Ginkgo allows one suite run per process, so one test runs the suite.
func TestConformanceWritesTheResultsSet(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	dir := t.TempDir()
	// Ginkgo writes its report to os.Stdout: catch it to look for colour codes.
	log, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = log
	code := run([]string{"conformance", "--target", "inprocess", "--label-filter", "MQTT-3.3.1-5", "--out", dir})
	os.Stdout = saved
	log.Close()
	if code != reports.ExitPass {
		t.Fatalf("conformance exited %d, want 0", code)
	}
	for _, f := range []string{"results.json", "junit.xml", "report.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("conformance --out did not write %s: %v", f, err)
		}
	}
	res, err := reports.Read(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != reports.KindConformance || res.Conformance == nil {
		t.Fatalf("results.json: kind %q, matrix %v", res.Kind, res.Conformance)
	}
	if c := res.Conformance.Cell("inprocess", "MQTT-3.3.1-5"); c.Status != reports.CellPass {
		t.Errorf("MQTT-3.3.1-5 on inprocess: %s, want pass", c.Status)
	}
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if !bytes.Contains(html, []byte("MQTT-3.3.1-5")) {
		t.Error("report.html lacks the statement row")
	}
	out, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
	if len(out) == 0 || bytes.Contains(out, []byte("\x1b[")) {
		t.Errorf("with NO_COLOR the suite's output must have no ANSI codes (%d bytes):\n%q", len(out), out)
	}
}

func TestConformanceMissingImageExits3(t *testing.T) {
	t.Setenv("MQTTFLEET_MOSQUITTO_IMAGE", "mqttfleet/no-such-image:0")
	dir := t.TempDir()
	code := run([]string{"conformance", "--target", "mosquitto", "--out", dir})
	if code != reports.ExitTargetUnavailable {
		t.Fatalf("conformance with a missing image exited %d, want 3", code)
	}
	res, err := reports.Read(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Status != reports.StatusTargetUnavailable || !strings.Contains(res.Run.StatusReason, "no-such-image") &&
		!strings.Contains(res.Run.StatusReason, "Docker") {
		t.Fatalf("results status %q reason %q: want target_unavailable naming the image (or Docker)", res.Run.Status, res.Run.StatusReason)
	}
	junit, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if !bytes.Contains(junit, []byte(`errors="1"`)) {
		t.Errorf("junit.xml of a run whose target never started is not red:\n%s", junit)
	}
}

func TestColorOnlyOnATerminalWithoutNoColor(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if colorOK(f) {
		t.Error("colour into a file")
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		t.Setenv("NO_COLOR", "")
		if !colorOK(tty) {
			t.Error("no colour on a terminal without NO_COLOR")
		}
	}
}

// The client suite writes the same results set; its cells are clients.
func TestConformanceClientWritesTheResultsSet(t *testing.T) {
	dir := t.TempDir()
	code := run([]string{"conformance", "--client", "native,paho", "--probes", "publish-qos1,connect-plain", "--out", dir})
	if code != reports.ExitPass {
		t.Fatalf("conformance --client exited %d, want 0", code)
	}
	res, err := reports.Read(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, client := range []string{"mqttfleet-client", "paho.mqtt.golang"} {
		if c := res.Conformance.Cell(client, "MQTT-4.3.2-1"); c.Status != reports.CellPass {
			t.Errorf("%s MQTT-4.3.2-1: %s %s, want pass", client, c.Status, c.Reason)
		}
	}
	junit, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if !bytes.Contains(junit, []byte("MQTT-3.1.0-1")) || !bytes.Contains(junit, []byte("paho.mqtt.golang")) {
		t.Errorf("junit.xml lacks the statement or the client:\n%.600s", junit)
	}
	for _, bad := range [][]string{
		{"conformance", "--client", "nosuch"},
		{"conformance", "--client", "paho", "--probes", "nosuch"},
		{"conformance", "--client", "paho", "--target", "inprocess"},
		{"conformance", "--client", "paho", "--protocol", "6"},
	} {
		if code := run(bad); code != reports.ExitInvalid {
			t.Errorf("%v exited %d, want %d", bad, code, reports.ExitInvalid)
		}
	}
}
