package reports

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// sampleResults is a realistic scenario result: the synthetic fleet run,
// assertions with evidence in every verdict, and a conformance matrix of
// three targets over the statements in testdata/statements.tsv.
func sampleResults(t testing.TB) *Results {
	t.Helper()
	evs := synthStream(7, synthDevices, synthSeconds)
	res := collect(evs, Run{
		Name: "half-open-keepalive", Target: "reference", TargetVersion: "0.1.0", Version: "0.1.0-dev",
		Seed: 7, Shard: Shard{Index: 0, Count: 1}, Devices: synthDevices,
		Command: []string{"mqttfleet", "run", "scenarios/half-open-keepalive.yaml"}, Host: "ci-runner-3",
	})
	res.Kind = KindScenario
	pick := func(k events.Kind, n int) []events.Event {
		var out []events.Event
		for _, e := range evs {
			if e.Kind == k {
				out = append(out, e)
			}
		}
		if len(out) > n {
			out = out[:n]
		}
		return out
	}
	res.AddAssertion(Assertion{Name: "broker drops silent clients within 1.5x keepalive", Verdict: Pass,
		Message:    "50 keepalive expiries, each 15.0 s after the last packet (limit 15 s + 1 s margin)",
		Statements: []string{"MQTT-3.1.2-24"}, Evidence: pick(events.KeepaliveExpired, 30), Duration: 45 * time.Second})
	res.AddAssertion(Assertion{Name: "no QoS 1 message lost across the fault", Verdict: Fail,
		Message:  "lost 750 messages sent during the half-open window <script>alert(1)</script>",
		Evidence: pick(events.PublishSent, 5), Duration: 60 * time.Second})
	res.AddAssertion(Assertion{Name: "takeover closes the old connection", Verdict: Pass,
		Statements: []string{"MQTT-3.1.4-2"}, Evidence: pick(events.Takeover, 3), Duration: 2 * time.Second})
	res.AddAssertion(Assertion{Name: "will is published on half-open link", Verdict: Skipped, Message: "scenario has no will configured"})
	res.AddAssertion(Assertion{Name: "p99 e2e latency under 50 ms", Verdict: Error, Message: "no latency samples in the window 50 s..53 s & after"})
	res.Conformance = sampleMatrix(t)
	return res
}

func sampleMatrix(t testing.TB) *Matrix {
	t.Helper()
	b, err := os.ReadFile("testdata/statements.tsv")
	if err != nil {
		t.Fatal(err)
	}
	m := &Matrix{}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if i == 0 || len(f) < 4 {
			continue
		}
		m.Statements = append(m.Statements, Statement{ID: f[0], Section: f[1], Role: f[2], Summary: f[3]})
	}
	targets := []string{"reference", "mosquitto-2.0.11", "nats-2.9.10"}
	for ti, tg := range targets {
		for si, s := range m.Statements {
			c := Cell{Status: CellPass, Specs: []string{"conformance/" + s.Section + " " + s.ID}}
			switch {
			case si%7 == 3:
				c = Cell{Status: CellNotCovered}
			case ti == 2 && si%5 == 1:
				c = Cell{Status: CellFail, Reason: "expected CONNACK 0x01, connection closed without CONNACK", Specs: c.Specs}
			case ti == 1 && si%6 == 2:
				c = Cell{Status: CellDeviation, Reason: "documented: keeps session on protocol error", Specs: c.Specs}
			case ti == 2 && si%4 == 0:
				c = Cell{Status: CellSkipped, Reason: "target lacks capability: qos2", Specs: c.Specs}
			}
			m.Set(tg, s.ID, c)
		}
	}
	m.Summarise()
	return m
}
