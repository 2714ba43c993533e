package reports

import (
	"bytes"
	"strings"
	"testing"
)

// The published matrix shows each broker's departures and each scenario's
// verdict per broker, and the HTML page links every departure to its reason.
func TestBrokerMatrix(t *testing.T) {
	conf := &Results{SchemaVersion: SchemaVersion, Kind: KindConformance, Conformance: sampleMatrix(t)}
	scen := func(v Verdict) *Results {
		return &Results{SchemaVersion: SchemaVersion, Kind: KindScenario, Run: Run{Status: StatusCompleted},
			Assertions: []Assertion{{Name: "every reading once", Verdict: v, Message: "12 lost"}}}
	}
	bm := &BrokerMatrix{Conformance: conf, Scenarios: map[string]map[string]*Results{
		"reference":   {"half-open": scen(Pass), "retained": scen(Pass)},
		"nats-2.9.10": {"half-open": scen(Fail), "retained": scen(Skipped)},
	}}
	var md bytes.Buffer
	if err := bm.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{"| broker | tested", "| half-open | pass | fail |", "| retained | pass | skipped |", "FAIL", "deviation"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	var h bytes.Buffer
	if err := bm.HTML(&h); err != nil {
		t.Fatal(err)
	}
	page := h.String()
	for _, want := range []string{`class="fail"`, "expected CONNACK 0x01", "half-open on nats-2.9.10", "12 lost", `<a href="#d1">`} {
		if !strings.Contains(page, want) {
			t.Errorf("html lacks %q", want)
		}
	}
}
