package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/targets"
)

// named is a target that only has a name: evaluate reads nothing else.
type named struct {
	targets.Target
	name string
}

func (n named) Name() string { return n.name }

// TestDeviationVerdicts: a miss is a deviation only on a target whose
// declared deviation covers the statements the assertion cites; --strict
// makes it a failure that still names the deviation; an unexplained miss,
// and any miss on the reference broker, stays a failure.
func TestDeviationVerdicts(t *testing.T) {
	text := `name: dev
clients:
  - {name: watcher, subscriptions: [{filter: "wills/#", qos: 1}]}
steps:
  - {name: t, do: mark}
assertions:
  - name: will after a second CONNECT
    expect: count
    events: {kind: publish_received, client: watcher, topic: wills/second-connect}
    equals: 1
    statements: [MQTT-3.1.2-8, MQTT-3.1.0-2]
  - name: will after a socket close
    expect: count
    events: {kind: publish_received, client: watcher, topic: wills/socket-close}
    equals: 1
    statements: [MQTT-3.1.2-8]
  - name: keepalive close in the standard's window
    expect: count
    events: {kind: disconnect, client: watcher}
    within: {after: t, from: 0s, to: 3s}
    statements: [MQTT-3.1.2-24]
`
	sc, err := Parse([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	m := moments{t0: t0, end: t0.Add(20 * time.Second), steps: map[string]time.Time{"t": t0}}
	// No will arrives; the keepalive close comes 4.2 s after t: 1.2 s late.
	evs := []events.Event{{Time: t0.Add(4200 * time.Millisecond), Kind: events.Disconnect, ClientID: "watcher"}}
	cases := []struct {
		target, table string
		strict        bool
		want          []reports.Verdict
	}{
		{"mosquitto", "", false, []reports.Verdict{reports.Deviation, reports.Fail, reports.Deviation}},
		{"mosquitto", "", true, []reports.Verdict{reports.Fail, reports.Fail, reports.Fail}},
		{"inprocess", "", false, []reports.Verdict{reports.Fail, reports.Fail, reports.Fail}},
		// A broker reached by address carries a known broker's table only when asked.
		{"tcp://127.0.0.1:1883", "", false, []reports.Verdict{reports.Fail, reports.Fail, reports.Fail}},
		{"tcp://127.0.0.1:1883", "mosquitto", false, []reports.Verdict{reports.Deviation, reports.Fail, reports.Deviation}},
	}
	for _, tc := range cases {
		r := &runner{sc: sc, opts: Options{Strict: tc.strict, Deviations: tc.table}, target: named{name: tc.target}}
		got := r.evaluate(evs, m, nil)
		for i, a := range got {
			if a.Verdict != tc.want[i] {
				t.Errorf("%s strict=%v table=%q: %q is %s, want %s (%s)", tc.target, tc.strict, tc.table, a.Name, a.Verdict, tc.want[i], a.Message)
			}
			explained := tc.want[i] == reports.Deviation || (tc.strict && i != 1)
			if explained != (a.Deviation != nil) {
				t.Errorf("%s strict=%v: %q deviation = %+v, want one: %v", tc.target, tc.strict, a.Name, a.Deviation, explained)
			}
			if a.Deviation != nil && a.Deviation.Strict != tc.strict {
				t.Errorf("%q: deviation strict = %v", a.Name, a.Deviation.Strict)
			}
		}
		if ka := got[2]; !strings.Contains(ka.Message, "the latest came 1.2s after the window closed") {
			t.Errorf("the keepalive miss does not say how late it was: %s", ka.Message)
		}
		if ka := got[2]; ka.Deviation != nil && (ka.Deviation.Statement != "MQTT-3.1.2-24" || !strings.HasPrefix(ka.Deviation.Doc, "docs/deviations.md#")) {
			t.Errorf("keepalive deviation: %+v", ka.Deviation)
		}
	}
}
