package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
)

// TestSingleDeviceFaultAndWhen exercises what the library does not: a
// fault on one device of a group (its link is addressed alone), a fault
// restored by itself (for:), and a step triggered by an event (when:).
func TestSingleDeviceFaultAndWhen(t *testing.T) {
	text := `name: one-device
groups:
  - name: pair
    count: 3
    proxy: true
    client_id: "pair-{{.Index}}"
    keepalive: 1s
    will: {topic: "pair/{{.ClientID}}/state", payload: offline, qos: 1}
clients:
  - name: watcher
    subscriptions: [{filter: "pair/+/state", qos: 1}]
steps:
  - do: wait
    connected: pair
  - name: cut
    do: blackhole
    group: pair
    devices: [1]
    for: 4s
  - name: will-seen
    when: {kind: publish_received, client: watcher}
    do: mark
  - name: settle
    delay: 1s
    do: mark
assertions:
  - name: only device 1's will
    expect: count
    events: {kind: publish_received, client: watcher}
    per: topic
    equals: 1
    keys: 1
  - name: it is pair-1's
    expect: count
    events: {kind: publish_received, client: watcher, topic: pair/pair-1/state}
    within: {after: cut, from: 0.3s, to: 3s}
    equals: 1
`
	rec := events.NewRecorder()
	res := runText(t, text, Options{Events: rec})
	for _, a := range res.Assertions {
		t.Logf("%s %s: %s", a.Verdict, a.Name, a.Message)
	}
	if res.Verdict() != reports.Pass {
		t.Fatalf("verdict %s", res.Verdict())
	}
	checkWhenRanAtWill(t, rec.Events())
}

// checkWhenRanAtWill relates the when: step to the event that triggered it.
// A window check around the step's own moment always finds the step's own
// log line, so it proves nothing; instead the step's recorded moment must be
// the will's own time (the trigger's base is the matched event's time), and
// both must follow the cut that caused the will.
//
// The order of the will and the step's log line in this recorder is not
// compared: the watcher emits the will to the runner's recorder first and to
// Options.Events last, so the runner can react and log the step before the
// watcher's copy reaches this recorder. The runner's own log lines (cut,
// will-seen, settle) come from one goroutine and keep their order.
func checkWhenRanAtWill(t *testing.T, evs []events.Event) {
	t.Helper()
	logAt := func(step string) (int, events.Event) {
		for i, e := range evs {
			if e.Kind == events.Log && e.Source == events.SourceScenario && strings.HasPrefix(e.Detail, "step "+step+": ") {
				return i, e
			}
		}
		t.Fatalf("no log line for step %s", step)
		return 0, events.Event{}
	}
	cutIdx, cut := logAt("cut")
	stepIdx, step := logAt("will-seen")
	settleIdx, _ := logAt("settle")
	if !(cutIdx < stepIdx && stepIdx < settleIdx) {
		t.Fatalf("step logs out of order: cut #%d, will-seen #%d, settle #%d", cutIdx, stepIdx, settleIdx)
	}
	willIdx, will := -1, events.Event{}
	for i, e := range evs {
		// The step's matcher skips the broker's own events; so does this.
		if e.Kind == events.PublishReceived && e.ClientID == "watcher" && e.Source != events.SourceBroker {
			willIdx, will = i, e
			break
		}
	}
	if willIdx < 0 {
		t.Fatal("the watcher received no will")
	}
	if will.Topic != "pair/pair-1/state" {
		t.Fatalf("first message to the watcher is on %s, want pair-1's will", will.Topic)
	}
	if willIdx < cutIdx || !will.Time.After(cut.Time) {
		t.Fatalf("will (#%d at %s) precedes the cut (#%d at %s)", willIdx, will.Time, cutIdx, cut.Time)
	}
	if !step.Time.Equal(will.Time) {
		t.Fatalf("when: step recorded at %s, the will it waited for at %s (%s apart)",
			step.Time.Format(time.RFC3339Nano), will.Time.Format(time.RFC3339Nano), step.Time.Sub(will.Time))
	}
}

// TestFailingAssertionHasEvidence: a failed check names what it saw and
// carries the deciding events.
func TestFailingAssertionHasEvidence(t *testing.T) {
	text := `name: failing
clients:
  - name: pub
  - name: sub
    subscriptions: [{filter: "t/#", qos: 1}]
steps:
  - {do: publish, client: pub, topic: t/1, payload: "x", qos: 1}
  - {do: publish, client: pub, topic: t/2, payload: "y", qos: 1}
  - do: wait                # counts from the previous step's start: t/2
    until: {kind: publish_received, client: sub, topic: t/2}
    timeout: 5s
assertions:
  - name: exactly one message (wrong on purpose)
    expect: count
    events: {kind: publish_received, client: sub}
    equals: 1
`
	res := runText(t, text, Options{})
	if res.Verdict() != reports.Fail {
		t.Fatalf("verdict %s, want fail", res.Verdict())
	}
	a := res.Assertions[len(res.Assertions)-1]
	if !strings.Contains(a.Message, "2 events") || len(a.Evidence) != 2 {
		t.Errorf("message %q with %d events of evidence; want 2 events named and shown", a.Message, len(a.Evidence))
	}
	for _, e := range a.Evidence {
		if e.Kind != events.PublishReceived || e.ClientID != "sub" {
			t.Errorf("evidence %+v is not what decided the check", e)
		}
	}
}

// TestRateAndLatencyChecks evaluates rate and latency checks over a
// synthetic stream, at their edges.
func TestRateAndLatencyChecks(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var evs []events.Event
	// 3 takeovers a second for 5 s, then 1 in the next 5 s.
	for s := 0; s < 5; s++ {
		for k := 0; k < 3; k++ {
			evs = append(evs, events.Event{Time: t0.Add(time.Duration(s)*time.Second + time.Duration(k)*100*time.Millisecond), Kind: events.Takeover})
		}
	}
	evs = append(evs, events.Event{Time: t0.Add(7 * time.Second), Kind: events.Takeover})
	m := moments{t0: t0, end: t0.Add(10 * time.Second), steps: map[string]time.Time{}}
	num := func(s string) *Value { v := &Value{Text: s}; _ = v.parseNumber(); return v }
	cases := []struct {
		name string
		a    Assertion
		b    bounds
		pass bool
	}{
		{"sustained for 5s", Assertion{Expect: ExpectRate, For: Duration(5 * time.Second)}, bounds{min: num("3")}, true},
		{"not for 6s", Assertion{Expect: ExpectRate, For: Duration(6 * time.Second)}, bounds{min: num("3")}, false},
		{"ceiling 3 holds", Assertion{Expect: ExpectRate}, bounds{max: num("3")}, true},
		{"ceiling 2 broken", Assertion{Expect: ExpectRate}, bounds{max: num("2")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := checkRate(&tc.a, tc.b, evs, span{from: t0, to: m.end}, m)
			if v.pass != tc.pass {
				t.Errorf("pass = %v, want %v: %s", v.pass, tc.pass, v.msg)
			}
			if !v.pass && len(v.evidence) == 0 {
				t.Errorf("a failed rate check carries no evidence")
			}
		})
	}
	var lat []events.Event
	for i := 1; i <= 100; i++ {
		lat = append(lat, events.Event{Kind: events.PublishReceived, Latency: time.Duration(i) * time.Millisecond})
	}
	dur := func(s string) *Value { v := &Value{Text: s}; _ = v.parseDuration(); return v }
	a := Assertion{Expect: ExpectLatency, Percentile: 99}
	if v := checkLatency(&a, bounds{max: dur("99ms")}, lat); !v.pass || v.evidence[0].Latency != 100*time.Millisecond {
		t.Errorf("p99 of 1..100 ms under 99ms: %s (slowest first: %v)", v.msg, v.evidence[0].Latency)
	}
	if v := checkLatency(&a, bounds{max: dur("98ms")}, lat); v.pass {
		t.Errorf("p99 of 1..100 ms is not under 98ms: %s", v.msg)
	}
}

// TestDescribe: the dry run places steps on the clock where it can and
// relative to what they wait for where it cannot, with their lines.
func TestDescribe(t *testing.T) {
	text := `name: describe
groups:
  - {name: g, count: 2, proxy: true}
clients:
  - {name: w, subscriptions: [{filter: "#", qos: 1}]}
steps:
  - {name: a, at: 2s, do: blackhole, group: g, for: 1s}
  - {name: b, delay: 500ms, do: restore, group: g}
  - {name: c, do: wait, connected: g}
  - {name: d, when: {kind: disconnect, group: g}, delay: 1s, do: mark}
  - {name: e, after: a, delay: 3s, do: reset, group: g}
assertions:
  - name: x
    expect: count
    events: {kind: disconnect, group: g}
    within: {after: a, from: 1s, to: 2s}
    max: 2
    per_target: {mosquitto: {within: {after: a, from: 1s, to: 5s}, note: coarse}}
`
	sc, err := Parse([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Describe(&b, sc); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Log(out)
	for _, want := range []string{
		"line 7    t=2s", "blackhole g for 1s",
		"line 8    t=2.5s", "restore g",
		"line 10   +1s after first {kind=disconnect group=g}",
		"line 11   t=5s", "reset g",
		"every one from a+1s to a+2s", "on mosquitto: every one from a+1s to a+5s — coarse",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q", want)
		}
	}
}

// runText parses a scenario written in the test and runs it to the end
// (bounded by a minute).
func runText(t *testing.T, text string, opts Options) *reports.Results {
	t.Helper()
	sc, err := Parse([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
