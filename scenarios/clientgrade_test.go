package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/reports"
)

// The client-grading library files judge the fleet's client library, not
// the target: each turns red when the situation it grades goes away.

func verdictOf(res *reports.Results, name string) reports.Verdict {
	for _, a := range res.Assertions {
		if a.Name == name {
			return a.Verdict
		}
	}
	return ""
}

// With PINGRESP answered, no device has a reason to close its link.
func TestClientPingrespWithheldRed(t *testing.T) {
	sc, err := Load("library/client-pingresp-withheld.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc.Brokers[0].Script.Actions = nil // a broker that answers every PINGREQ
	res := runLogged(t, sc, Options{}, 2*time.Minute)
	if v := verdictOf(res, "every device closes the link when no PINGRESP comes"); v != reports.Fail {
		t.Fatalf("with PINGRESP answered: %s, want fail (no device had a dead link to notice)", v)
	}
}

// A damped fleet that in fact retries every 100 ms is caught.
func TestClientConnackRefusedRed(t *testing.T) {
	sc, err := Load("library/client-connack-refused.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc.Groups[1].Reconnect = sc.Groups[0].Reconnect // fixed 100 ms
	res := runLogged(t, sc, Options{}, 2*time.Minute)
	if v := verdictOf(res, "damped - backoff keeps each device to 6 attempts or fewer in 10 s"); v != reports.Fail {
		t.Fatalf("damped group retrying every 100 ms: %s, want fail", v)
	}
}

func TestAdversaryBrokerValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"brokers: [{name: evil, kind: adversary}]", "kind adversary needs a script"},
		{"brokers: [{name: b, script: {actions: [{on: pingreq, do: withhold}]}}]", "a script is for kind adversary"},
		{"brokers: [{name: evil, kind: adversary, script: {actions: [{on: pingreq, do: refuse}]}}]", `"refuse" on pingreq`},
		{"groups: [{name: g, count: 1, broker: nope}]", `no broker named "nope"`},
	} {
		_, err := Parse([]byte("name: x\n"+tc.yaml+"\nassertions: [{name: a, expect: count, events: {kind: connect}, min: 0}]\n"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.yaml, err, tc.want)
		}
	}
}

// The kick-loop grade turns: twins with a fixed 1 s retry are graded
// looping. (The paho grade's other direction - a 60 s cap settles paho's
// twins - was checked by hand: 2 takeovers in the last 32 s. It is not a
// test because paho's reconnect sleeps through Disconnect for up to its
// cap, a goroutine goleak would report.)
func TestKickLoopGradeTurns(t *testing.T) {
	sc, err := Load("library/kick-loop.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sc.Groups {
		if sc.Groups[i].Name == "damped" {
			sc.Groups[i].Reconnect.Policy = "fixed"
			sc.Groups[i].Reconnect.Jitter = 0
		}
	}
	res := runLogged(t, sc, Options{}, 3*time.Minute)
	if v := verdictOf(res, "client grade - backoff with jitter is not looping - under 5 takeovers in the last 32 s"); v != reports.Fail {
		t.Errorf("twins retrying every 1 s: %s, want fail (graded looping)", v)
	}
}
