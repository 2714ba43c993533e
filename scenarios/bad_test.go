package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/reports"
)

// base is a valid scenario the bad cases are edits of; its line numbers are
// what the cases expect (line 1 is "name: base").
const base = `name: base
groups:
  - name: sensors
    count: 3
    proxy: true
    keepalive: 2s
  - name: direct
    count: 1
clients:
  - name: watcher
    subscriptions: [{filter: "fleet/#", qos: 1}]
steps:
  - name: online
    do: wait
    connected: sensors
  - name: cut
    delay: 1s
    do: blackhole
    group: sensors
assertions:
  - name: wills
    expect: count
    events: {kind: publish_received, client: watcher}
    equals: 3
`

// TestBadScenarios: each kind of mistake gives one error naming the file,
// the line and the field, with a message that says what to write instead.
func TestBadScenarios(t *testing.T) {
	cases := []struct {
		name     string
		from, to string // replace from with to in base ("" from: append to)
		line     int
		field    string
		msg      string
	}{
		{"unknown top-level field", "steps:", "step:", 12, "step", "unknown field"},
		{"unknown step field", "    group: sensors\nassertions", "    grup: sensors\nassertions", 19, "steps[1].grup", "unknown field"},
		{"duration without unit", "delay: 1s", "delay: 1.5", 17, "steps[1].delay", "not a duration"},
		{"unknown action", "do: blackhole", "do: blackhol", 18, "steps[1].do", `did you mean "blackhole"`},
		{"unknown group", "    group: sensors\nassertions", "    group: sensor\nassertions", 19, "steps[1].group", `no group named "sensor"`},
		{"fault on a group not behind the proxy", "    group: sensors\nassertions", "    group: direct\nassertions", 19, "steps[1].group", "add proxy: true"},
		{"after names no earlier step", "    delay: 1s\n", "    after: later\n", 17, "steps[1].after", `no earlier step is named "later"`},
		{"two triggers", "    delay: 1s\n", "    at: 2s\n    after: online\n", 16, "steps[1]", "at most one of at, after and when"},
		{"field the action does not use", "    group: sensors\nassertions", "    group: sensors\n    latency: 100ms\nassertions", 20, "steps[1].latency", "does not use latency"},
		{"unknown event kind", "kind: publish_received", "kind: publish_recieved", 23, "assertions[0].events.kind", `did you mean "publish_received"`},
		{"bad topic filter", "client: watcher}", "client: watcher, topic: \"a/#/b\"}", 23, "assertions[0].events.topic", "[MQTT-4.7.1-2]"},
		{"assertion without a name", "  - name: wills\n", "  - note: unnamed\n", 21, "assertions[0]", "needs a name"},
		{"unknown check", "expect: count", "expect: counts", 22, "assertions[0].expect", `did you mean "count"`},
		{"count without bounds", "    equals: 3\n", "", 21, "assertions[0]", "needs equals, min or max"},
		{"latency bound is not a duration", "expect: count\n    events: {kind: publish_received, client: watcher}\n    equals: 3\n",
			"expect: latency\n    events: {kind: publish_received, client: watcher}\n    max: 200\n", 24, "assertions[0].max", "not a duration"},
		{"rate for without min", "expect: count\n    events: {kind: publish_received, client: watcher}\n    equals: 3\n",
			"expect: rate\n    events: {kind: publish_received, client: watcher}\n    max: 3\n    for: 5s\n", 25, "assertions[0].for", "is how long the rate must stay"},
		{"window after an unknown step", "    equals: 3\n", "    equals: 3\n    during: {after: cutt}\n", 25, "assertions[0].during.after", `no step named "cutt"`},
		{"unknown variable", "count: 3", "count: ${devices}", 4, "${devices}", `unknown variable "devices"`},
		{"tag the decoder cannot take", `subscriptions: [{filter: "fleet/#", qos: 1}]`, `subscriptions: !x {filter: "fleet/#", qos: 1}`, 11, "clients[0].subscriptions", "remove the tag"},
		{"QoS out of range in a group", "    keepalive: 2s\n", "    keepalive: 2s\n    publish: {interval: 1s, topic: t, qos: 3}\n", 7, "groups[0].publish.qos", "QoS must be 0, 1 or 2"},
		{"device outside the group", "    group: sensors\nassertions", "    group: sensors\n    devices: [0, 7]\nassertions", 20, "steps[1].devices[1]", "outside group"},
		{"YAML syntax", "    count: 3\n", "    count: 3\n   proxy: [\n", 5, "", ""},
		{"unknown target in per_target", "    equals: 3\n", "    equals: 3\n    per_target: {mosquito: {equals: 0}}\n", 25, "assertions[0].per_target.mosquito", `did you mean "mosquitto"`},
		{"wrong type", "count: 3", "count: three", 4, "groups[0].count", `want a whole number, got string "three"`},
		{"wait without condition", "    connected: sensors\n", "", 13, "steps[0]", "exactly one of until"},
		{"no assertions", "assertions:\n  - name: wills\n    expect: count\n    events: {kind: publish_received, client: watcher}\n    equals: 3\n", "", 1, "assertions", "at least one assertion"},
		{"unknown target kind", "name: base\n", "name: base\ntarget: {kind: mosquito}\n", 2, "target.kind", `did you mean "mosquitto"`},
		{"counter check without a counter", "expect: count\n    events: {kind: publish_received, client: watcher}\n", "expect: counter\n", 21, "assertions[0].counter", "needs counter:"},
		{"client action on unknown client", "    do: blackhole\n    group: sensors\n", "    do: publish\n    client: nobody\n    topic: a\n", 19, "steps[1].client", `no client named "nobody"`},
		// Holes that let a verdict go green on nothing, or be decided by a
		// silent truncation or a typo found only after the run.
		{"matcher names a client that does not exist", "client: watcher}\n    equals: 3", "client: watchr}\n    equals: 0", 23, "assertions[0].events.client", `client ID matching "watchr"`},
		{"min greater than max", "    equals: 3\n", "    min: 5\n    max: 2\n", 24, "assertions[0].min", "min 5 is greater than max 2"},
		{"negative bound", "    equals: 3\n", "    min: -1\n", 24, "assertions[0].min", "must not be negative"},
		{"fractional device count", "    count: 3\n", "    count: 2.5\n", 4, "groups[0].count", "must be a whole number, not 2.5"},
		{"device count below one", "    count: 3\n", "    count: 0.9\n", 4, "groups[0].count", "must be a whole number, not 0.9"},
		{"reason code counter in upper case", "expect: count\n    events: {kind: publish_received, client: watcher}\n", "expect: counter\n    counter: connack_rc_0x8A\n", 23, "assertions[0].counter", "<packet>_rc_0x"},
		{"reason code counter of no packet", "expect: count\n    events: {kind: publish_received, client: watcher}\n", "expect: counter\n    counter: unsuback_rc_0x00\n", 23, "assertions[0].counter", `no counter "unsuback_rc_0x00"`},
		{"unknown counter", "expect: count\n    events: {kind: publish_received, client: watcher}\n", "expect: counter\n    counter: lostt\n", 23, "assertions[0].counter", `no counter "lostt"`},
		// MQTT 5 knobs and misbehaviours (issue #15).
		{"session expiry on a 3.1.1 client", "qos: 1}]\nsteps:", "qos: 1}]\n    session_expiry: 60s\nsteps:", 12, "clients[0].session_expiry", "add protocol: 5"},
		{"will delay in fractions of a second", "qos: 1}]\nsteps:", "qos: 1}]\n    protocol: 5\n    will: {topic: w, delay: 1.5s}\nsteps:", 13, "clients[0].will.delay", "whole seconds"},
		{"unknown violation", "    do: blackhole\n    group: sensors\n", "    do: violate\n    client: watcher\n    violation: topic_alias_0\n", 20, "steps[1].violation", `unknown violation "topic_alias_0"`},
		{"MQTT 5 violation on a 3.1.1 client", "    do: blackhole\n    group: sensors\n", "    do: violate\n    client: watcher\n    violation: receive_maximum\n", 20, "steps[1].violation", "needs protocol: 5"},
		{"violation and bytes", "    do: blackhole\n    group: sensors\n", "    do: violate\n    client: watcher\n    violation: receive_maximum\n    bytes: \"c0 00\"\n", 20, "steps[1].violation", "not both"},
		{"second YAML document", "    equals: 3\n", "    equals: 3\n---\nname: other\n", 1, "", "2 YAML documents"},
	}
	dir := t.TempDir()
	if len(cases) < 15 {
		t.Fatalf("want at least 15 kinds of mistakes, have %d", len(cases))
	}
	// The base itself must load.
	good := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(good, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(good, nil); err != nil {
		t.Fatalf("the base scenario must be valid: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.from) {
				t.Fatalf("case edits text the base does not have: %q", tc.from)
			}
			text := strings.Replace(base, tc.from, tc.to, 1)
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil)
			if err == nil {
				t.Fatalf("loaded; want an error at line %d", tc.line)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			t.Log(err)
			if se.File != path {
				t.Errorf("file = %q, want %q", se.File, path)
			}
			if se.Line != tc.line {
				t.Errorf("line = %d, want %d: %v", se.Line, tc.line, err)
			}
			if tc.field != "" && se.Field != tc.field {
				t.Errorf("field = %q, want %q: %v", se.Field, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not say %q", err.Error(), tc.msg)
			}
			if strings.Count(err.Error(), "\n") > 0 && se.Field != "" {
				t.Errorf("want one line, got %q", err.Error())
			}
		})
	}
}

// TestOverrideMustExist: -set for a variable the file does not declare is an error.
func TestOverrideMustExist(t *testing.T) {
	text := strings.Replace(base, "name: base\n", "name: base\nvars: {devices: 3}\n", 1)
	text = strings.Replace(text, "count: 3", "count: ${devices}", 1)
	sc, err := Parse([]byte(text), map[string]string{"devices": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Groups[0].Count != 5 {
		t.Errorf("count = %d, want the override 5", sc.Groups[0].Count)
	}
	_, err = Parse([]byte(text), map[string]string{"devcies": "5"})
	if err == nil || !strings.Contains(err.Error(), `no variable "devcies"`) {
		t.Errorf("want an error naming the unknown variable, got %v", err)
	}
}

// TestAllProblemsInOnePass: a file with several mistakes lists every one,
// in file order, each with its line and field, and is an invalid input.
func TestAllProblemsInOnePass(t *testing.T) {
	text := strings.NewReplacer(
		"    count: 3\n", "    count: 2.5\n",
		"do: blackhole", "do: blackhol",
		"client: watcher}\n    equals: 3", "client: ghost}\n    min: 4\n    max: 1",
	).Replace(base)
	_, err := Parse([]byte(text), nil)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %T (%v), want Errors", err, err)
	}
	want := []struct {
		line  int
		field string
	}{{4, "groups[0].count"}, {18, "steps[1].do"}, {23, "assertions[0].events.client"}, {24, "assertions[0].min"}}
	if len(es) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(es), len(want), err)
	}
	for i, w := range want {
		if es[i].Line != w.line || es[i].Field != w.field {
			t.Errorf("problem %d at line %d field %s, want line %d field %s", i, es[i].Line, es[i].Field, w.line, w.field)
		}
	}
	if !errors.Is(err, reports.ErrInvalid) {
		t.Error("a refused scenario is not reports.ErrInvalid (exit 2)")
	}
	if got := strings.Count(err.Error(), "\n"); got != len(want) {
		t.Errorf("want a heading and one line per problem, got:\n%v", err)
	}
}

// TestReasonCodeCounterAccepted: `expect: counter` takes a reason-code
// counter (<packet>_rc_0x..) although a Collector holds one only once seen.
func TestReasonCodeCounterAccepted(t *testing.T) {
	from := "expect: count\n    events: {kind: publish_received, client: watcher}\n"
	if !strings.Contains(base, from) {
		t.Fatal("base changed")
	}
	path := filepath.Join(t.TempDir(), "rc.yaml")
	text := strings.Replace(base, from, "expect: counter\n    counter: connack_rc_0x00\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err != nil {
		t.Fatalf("connack_rc_0x00 refused: %v", err)
	}
	if !reports.IsCollectorCounter("suback_rc_0x87") || reports.IsCollectorCounter("suback_rc_0x1") {
		t.Fatal("IsCollectorCounter and the reason-code rule disagree")
	}
}
