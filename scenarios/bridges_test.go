package scenarios

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/reports"
)

// The bridge library files pass against both bridge implementations in
// TestLibraryInProcess and TestLibraryMosquitto; these tests show each
// file's checks turning red when the bridge does what the bug class
// predicts, by running the file with the one setting that breaks it.

// runBridgeFile runs a library file against the in-process reference
// broker (with its bridge), after change edits the loaded scenario.
func runBridgeFile(t *testing.T, file string, vars map[string]string, change func(*Scenario)) *reports.Results {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs brokers and bridges")
	}
	sc, err := Load(file, vars)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(sc)
	}
	return runLogged(t, sc, Options{}, 3*time.Minute)
}

// runLogged runs sc within timeout, failing the test if it cannot run, and
// logs every verdict with its message.
func runLogged(t *testing.T, sc *Scenario, opts Options, timeout time.Duration) *reports.Results {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := Run(ctx, sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Assertions {
		t.Logf("  %-7s %s: %s", a.Verdict, a.Name, a.Message)
	}
	return res
}

func wantVerdict(t *testing.T, res *reports.Results, name string, want reports.Verdict) {
	t.Helper()
	a := assertionNamed(res, name)
	if a == nil {
		t.Fatalf("no assertion %q", name)
	}
	if a.Verdict != want {
		t.Errorf("%q: %s (%s), want %s", name, a.Verdict, a.Message, want)
	}
}

// TestBridgeLoopRed: without try_private the '#' both-ways bridge floods:
// both delivery checks fail with duplicates.
func TestBridgeLoopRed(t *testing.T) {
	res := runBridgeFile(t, "library/bridge-loop.yaml", map[string]string{"private": "false"}, nil)
	for _, n := range []string{"each reading reached the cloud once", "each reading reached the edge application once (no echo from the cloud)"} {
		wantVerdict(t, res, n, reports.Fail)
		if a := assertionNamed(res, n); a != nil && !strings.Contains(a.Message, "duplicates") {
			t.Errorf("%q: %s, want the duplicates named", n, a.Message)
		}
	}
}

// TestBridgeHalfOpenRed: a bridge whose keepalive is too long for the
// window notices the half-open link too late: the detection check fails.
func TestBridgeHalfOpenRed(t *testing.T) {
	res := runBridgeFile(t, "library/bridge-half-open.yaml", map[string]string{"keepalive": "10s"}, nil)
	wantVerdict(t, res, "the bridge noticed the half-open link within 3.5x keepalive (its first new link)", reports.Fail)
	wantVerdict(t, res, "QoS 1 - no reading lost across the half-open link", reports.Pass)
}

// TestBridgeFailoverRed: a bridge with only the primary's address cannot
// fail over: the readings after the primary stopped never reach the standby.
func TestBridgeFailoverRed(t *testing.T) {
	res := runBridgeFile(t, "library/bridge-failover.yaml", nil, func(sc *Scenario) {
		sc.Bridges[0].To = List{"primary"}
		for i := range sc.Steps {
			if sc.Steps[i].Do == DoWait && sc.Steps[i].Until != nil && sc.Steps[i].Until.Client == "standby-app" {
				sc.Steps[i].Timeout = Duration(3 * time.Second) // it will not come
			}
		}
	})
	wantVerdict(t, res, "before the failover every reading reached the primary", reports.Pass)
	wantVerdict(t, res, "after the failover every reading reached the standby, once", reports.Fail)
}

// TestBridgeRemoteRestartRed: a bridge that can hold only 5 messages while
// the remote is down loses the rest of the outage's readings.
func TestBridgeRemoteRestartRed(t *testing.T) {
	res := runBridgeFile(t, "library/bridge-remote-restart.yaml", nil, func(sc *Scenario) {
		sc.Bridges[0].MaxQueued = 5
		for i := range sc.Steps {
			if sc.Steps[i].Do == DoWait && sc.Steps[i].Until != nil && sc.Steps[i].Until.Topic == "telemetry/during" {
				sc.Steps[i].Timeout = Duration(3 * time.Second) // all 20 will not come
			}
		}
	})
	wantVerdict(t, res, "the readings of the outage arrived, each once", reports.Fail)
	if a := assertionNamed(res, "the readings of the outage arrived, each once"); a != nil && !strings.Contains(a.Message, "15 lost") {
		t.Errorf("message %q, want 15 lost (20 published, 5 held)", a.Message)
	}
}

// TestTopologyErrors: brokers:, bridges: and what names them are checked
// at load, each mistake with its file, line and field.
func TestTopologyErrors(t *testing.T) {
	const file = `name: topo
brokers:
  - name: cloud
    kind: mosquito
  - name: cloud
bridges:
  - name: up/link
    to: [nowhere]
    topics: ["a/# sideways 1"]
  - name: plain
    to: [cloud]
    topics: ["a/# out 1"]
clients:
  - name: c
    broker: moon
steps:
  - do: blackhole
    bridge: plain
  - do: restart_broker
    broker: mars
assertions:
  - name: a
    expect: count
    events: {kind: connack, client: c}
    min: 1
`
	p := filepath.Join(t.TempDir(), "topo.yaml")
	if err := os.WriteFile(p, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, nil)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T %v, want Errors", err, err)
	}
	for _, want := range []struct {
		field string
		line  int
		msg   string
	}{
		{"brokers[0].kind", 4, `unknown broker kind "mosquito"`},
		{"brokers[1].name", 5, `"cloud" used twice`},
		{"bridges[0].name", 7, "without '/'"},
		{"bridges[0].to[0]", 8, `no broker named "nowhere"`},
		{"bridges[0].topics[0]", 9, `direction "sideways"`},
		{"clients[0].broker", 15, `no broker named "moon"`},
		{"steps[0].bridge", 18, "set proxy: true"},
		{"steps[1].broker", 20, `no broker named "mars"`},
	} {
		found := false
		for _, e := range errs {
			if e.Field == want.field {
				found = true
				if e.Line != want.line || !strings.Contains(e.Msg, want.msg) {
					t.Errorf("%s: got line %d %q, want line %d containing %q", want.field, e.Line, e.Msg, want.line, want.msg)
				}
			}
		}
		if !found {
			t.Errorf("no error for %s in:\n%v", want.field, err)
		}
	}
}
