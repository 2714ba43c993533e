package profile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `name: sensors
seed: 7
duration: 60s
groups:
  - name: sensors
    count: 100
    client_id: "sensor-{{.Index}}"
    keepalive: 30s
    will: {topic: "status/{{.Index}}", payload: "gone", qos: 1}
    subscriptions:
      - filter: "cmd/{{.Index}}"
        qos: 1
    publish:
      interval: 10s
      jitter: 1s
      qos: 1
      topic: "fleet/{{.Index}}/temp"
      payload: {kind: random_walk, start: 20, step: 0.5, min: -10, max: 50}
    lifecycle: {rate: 500}
    reconnect: {policy: exponential, delay: 100ms, max: 5s, jitter: 0.2}
`

func TestParseGood(t *testing.T) {
	p, err := Parse([]byte(good))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	g := p.Groups[0]
	if g.Count != 100 || g.Publish.QoS != 1 || g.Reconnect.Multiplier != 2 || g.Transport.Kind != TransportTCP {
		t.Fatalf("unexpected group after defaults: %+v", g)
	}
	if p.Drain != DefaultDrain || g.KeepAliveOrDefault() != 30*time.Second || !g.IsClean() {
		t.Fatalf("defaults not applied: drain %s keepalive %s", p.Drain, g.KeepAliveOrDefault())
	}
	if got := MustCompile("id", g.ClientID).Render(Vars{Index: 42}); got != "sensor-42" {
		t.Fatalf("client id = %q", got)
	}
}

// TestParseBad checks that every refusal names the field and its line.
func TestParseBad(t *testing.T) {
	cases := []struct {
		name, replace, with string
		field               string
		line                int
	}{
		{"unknown field", "    keepalive: 30s\n", "    keepalive: 30s\n    keeplive: 3s\n", "groups[0].keeplive", 9},
		{"count zero", "count: 100", "count: 0", "groups[0].count", 6},
		{"fractional count", "count: 100", "count: 2.5", "groups[0].count", 6},
		{"count below one", "count: 100", "count: 0.9", "groups[0].count", 6},
		{"count type", "count: 100", "count: many", "groups[0].count", 6},
		{"publish qos", "      qos: 1\n      topic", "      qos: 3\n      topic", "groups[0].publish.qos", 16},
		{"sub qos", "        qos: 1", "        qos: -1", "groups[0].subscriptions[0].qos", 12},
		{"bad filter", `"cmd/{{.Index}}"`, `"cmd/#/x"`, "groups[0].subscriptions[0].filter", 11},
		{"wildcard topic", `"fleet/{{.Index}}/temp"`, `"fleet/+/temp"`, "groups[0].publish.topic", 17},
		{"seq in topic", `"fleet/{{.Index}}/temp"`, `"fleet/{{.Seq}}"`, "groups[0].publish.topic", 17},
		{"bad template", `"sensor-{{.Index}}"`, `"sensor-{{.Indx}}"`, "groups[0].client_id", 7},
		{"jitter over interval", "jitter: 1s", "jitter: 20s", "groups[0].publish.jitter", 15},
		{"interval duration", "interval: 10s", "interval: soon", "groups[0].publish.interval", 14},
		{"reconnect policy", "policy: exponential", "policy: sometimes", "groups[0].reconnect.policy", 20},
		{"reconnect cap", "max: 5s", "max: 10ms", "groups[0].reconnect.max", 20},
		{"rate and spread", "{rate: 500}", "{rate: 500, spread: 10s}", "groups[0].lifecycle.spread", 19},
		{"walk bounds", "min: -10, max: 50", "min: 10, max: 5", "groups[0].publish.payload.max", 18},
		{"will qos", `qos: 1}`, `qos: 5}`, "groups[0].will.qos", 9},
		{"protocol", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 6\n", "groups[0].protocol", 9},
		{"source address", "    keepalive: 30s\n", "    keepalive: 30s\n    source_addresses: [127.0.0.2, nope]\n", "groups[0].source_addresses[1]", 9},
		{"transport", "    keepalive: 30s\n", "    keepalive: 30s\n    transport: {kind: quic}\n", "groups[0].transport.kind", 9},
		{"v5 knob on 3.1.1", "    keepalive: 30s\n", "    keepalive: 30s\n    session_expiry: 1h\n", "groups[0].session_expiry", 9},
		{"user properties on 3.1.1", "    keepalive: 30s\n", "    keepalive: 30s\n    user_properties: [{name: a, value: b}]\n", "groups[0].user_properties", 9},
		{"session expiry word", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    session_expiry: forever\n", "groups[0].session_expiry", 10},
		{"session expiry fraction", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    session_expiry: 1500ms\n", "groups[0].session_expiry", 10},
		{"receive maximum range", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    receive_maximum: 70000\n", "groups[0].receive_maximum", 10},
		{"receive maximum fraction", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    receive_maximum: 1.5\n", "groups[0].receive_maximum", 10},
		{"user property name", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    user_properties:\n      - {value: x}\n", "groups[0].user_properties[0].name", 11},
		{"user property template", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    user_properties:\n      - {name: a, value: \"{{.Nope}}\"}\n", "groups[0].user_properties[0].value", 11},
		{"message expiry fraction", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    message_expiry: 2500ms\n", "groups[0].message_expiry", 10},
		{"message expiry duration", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    message_expiry: later\n", "groups[0].message_expiry", 10},
		{"response topic wildcard", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    response_topic: \"reply/+\"\n", "groups[0].response_topic", 10},
		{"topic alias on 3.1.1", "    keepalive: 30s\n", "    keepalive: 30s\n    topic_alias: true\n", "groups[0].topic_alias", 9},
		{"topic alias type", "    keepalive: 30s\n", "    keepalive: 30s\n    protocol: 5\n    topic_alias: sometimes\n", "groups[0].topic_alias", 10},
		{"content type on 3.1.1", "    keepalive: 30s\n", "    keepalive: 30s\n    content_type: text/plain\n", "groups[0].content_type", 9},
		{"tag the decoder cannot take", "    keepalive: 30s\n", "    keepalive: 30s\n    source_addresses: !x {a: 1}\n", "groups[0].source_addresses", 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(good, tc.replace, tc.with, 1)
			if src == good {
				t.Fatalf("replacement %q not found", tc.replace)
			}
			_, err := Parse([]byte(src))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("want *Error, got %v", err)
			}
			if pe.Field != tc.field || pe.Line != tc.line {
				t.Fatalf("got field %q line %d, want %q line %d (%v)", pe.Field, pe.Line, tc.field, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("message %q does not name the field", err)
			}
		})
	}
}

// TestParseV5 reads every MQTT 5 knob of a group.
func TestParseV5(t *testing.T) {
	src := strings.Replace(good, "    keepalive: 30s\n", `    keepalive: 30s
    protocol: 5
    session_expiry: never
    receive_maximum: 20
    user_properties:
      - {name: device, value: "{{.ClientID}}"}
      - {name: site, value: "s{{mod .Index 3}}"}
    message_expiry: 90s
    response_topic: "reply/{{.Index}}"
    content_type: application/json
    topic_alias: true
`, 1)
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	g := p.Groups[0]
	if s, ok := g.SessionExpirySeconds(); !ok || s != SessionExpiryNever {
		t.Errorf("session expiry = %d %v, want never", s, ok)
	}
	if g.ReceiveMaximum != 20 || g.MessageExpiry != 90*time.Second || g.ContentType != "application/json" || g.ResponseTopic != "reply/{{.Index}}" {
		t.Errorf("unexpected group: %+v", g)
	}
	if !g.TopicAlias {
		t.Errorf("topic_alias not read")
	}
	if len(g.UserProperties) != 2 || g.UserProperties[0] != (UserProperty{"device", "{{.ClientID}}"}) {
		t.Errorf("user properties = %+v", g.UserProperties)
	}
	p, err = Parse([]byte(strings.Replace(src, "session_expiry: never", "session_expiry: 10m", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := p.Groups[0].SessionExpirySeconds(); !ok || s != 600 {
		t.Errorf("session expiry = %d %v, want 600", s, ok)
	}
	// The PUBLISH knobs need a publish schedule.
	_, err = Parse([]byte("groups:\n  - count: 1\n    protocol: 5\n    message_expiry: 5s\n"))
	var pe *Error
	if !errors.As(err, &pe) || pe.Field != "groups[0].message_expiry" || pe.Line != 4 {
		t.Errorf("message_expiry without publish: %v", err)
	}
	_, err = Parse([]byte("groups:\n  - count: 1\n    protocol: 5\n    topic_alias: true\n"))
	if !errors.As(err, &pe) || pe.Field != "groups[0].topic_alias" || pe.Line != 4 {
		t.Errorf("topic_alias without publish: %v", err)
	}
}

func TestValidateGo(t *testing.T) {
	p := &Profile{Groups: []Group{{Count: 3, Publish: &Publish{Interval: time.Second, Topic: "t", QoS: 9}}}}
	err := p.Validate()
	var pe *Error
	if !errors.As(err, &pe) || pe.Field != "groups[0].publish.qos" || pe.Line != 0 {
		t.Fatalf("got %v", err)
	}
}

func TestGroupOf(t *testing.T) {
	p := &Profile{Groups: []Group{{Name: "a", Count: 2}, {Name: "b", Count: 3}}}
	for i, want := range []string{"a", "a", "b", "b", "b"} {
		g, _ := p.GroupOf(i)
		if g == nil || g.Name != want {
			t.Fatalf("device %d in %v, want %s", i, g, want)
		}
	}
	if g, _ := p.GroupOf(5); g != nil {
		t.Fatalf("device 5 should be out of range")
	}
}

// TestDocExample keeps the profile shown in docs/simulator.md valid.
func TestDocExample(t *testing.T) {
	p, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatalf("the documented example is refused: %v", err)
	}
	if p.Devices() != 10000 || p.Groups[0].Lifecycle.Churn.Mode != ChurnDrop {
		t.Fatalf("unexpected example: %+v", p.Groups[0])
	}
}

func TestLoadNamesFile(t *testing.T) {
	if _, err := Load("testdata/missing.yaml"); err == nil {
		t.Fatal("loaded a missing file")
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("groups:\n  - count: 5\n    publish: {interval: 1s, topic: t, qos: 7}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":3:") || !strings.Contains(err.Error(), "groups[0].publish.qos") {
		t.Fatalf("want %s:3:... groups[0].publish.qos, got %v", path, err)
	}
}

// TestDocExampleV5 keeps the MQTT 5 profile shown in docs/simulator.md valid.
func TestDocExampleV5(t *testing.T) {
	p, err := Load("testdata/v5.yaml")
	if err != nil {
		t.Fatalf("the documented MQTT 5 example is refused: %v", err)
	}
	g := p.Groups[0]
	if s, ok := g.SessionExpirySeconds(); !ok || s != 3600 || len(g.UserProperties) != 2 || g.MessageExpiry != 5*time.Minute || !g.TopicAlias {
		t.Fatalf("unexpected example: %+v", g)
	}
}

// TestBenchV5AliasProfile keeps the benchmark profile of docs/benchmarks.md
// (10,000 5.0 devices with topic aliases) valid and what it says it is.
func TestBenchV5AliasProfile(t *testing.T) {
	p, err := Load("../bench/v5-10k-alias.yaml")
	if err != nil {
		t.Fatalf("the benchmark profile is refused: %v", err)
	}
	g := p.Groups[0]
	if g.Count != 10000 || g.Protocol != 5 || !g.TopicAlias || g.Publish == nil || g.Publish.QoS != 1 {
		t.Fatalf("benchmark group is not 10,000 5.0 devices publishing QoS 1 with topic aliases: %+v", g)
	}
}
