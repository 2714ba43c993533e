package reports

import (
	"strings"
	"testing"
)

// TestDeviationVerdict: a deviation neither passes nor fails an assertion,
// does not fail the run, and every renderer names it with its statement
// and write-up; the same miss in a strict run is a failure that still
// names the deviation.
func TestDeviationVerdict(t *testing.T) {
	dev := &KnownDeviation{Statement: "MQTT-3.1.2-24", Reason: "checks keepalives every 5 s", Doc: "docs/deviations.md#mosquitto-keepalive-granularity"}
	r := &Results{Kind: KindScenario, Assertions: []Assertion{
		{Name: "ok", Verdict: Pass},
		{Name: "late close", Verdict: Deviation, Message: "1 of 1 events outside", Statements: []string{"MQTT-3.1.2-24"}, Deviation: dev},
	}}
	if v, code := r.Verdict(), ExitCode(r, nil); v != Pass || code != ExitPass {
		t.Fatalf("a run with a deviation: verdict %s, exit %d; want pass, 0", v, code)
	}
	if s := summaryLine(r); !strings.Contains(s, "1 of 2 assertions passed, 1 deviation") {
		t.Errorf("summary %q does not count the deviation", s)
	}
	var html, md, junit strings.Builder
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := JUnit(&junit, r); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"HTML":     {`<span class="pill deviation">deviation</span>`, `tr.a-deviation`, "known deviation from <b>MQTT-3.1.2-24</b>", dev.Doc},
		"Markdown": {"### Known deviations", "🟡 deviation: **late close**", dev.Doc},
		"JUnit":    {`<property name="deviations" value="1">`, `<skipped message="deviation: 1 of 1 events outside">`, `<property name="deviation.statement" value="MQTT-3.1.2-24">`},
	} {
		out := map[string]string{"HTML": html.String(), "Markdown": md.String(), "JUnit": junit.String()}[name]
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
	if strings.Contains(md.String(), "### Failing assertions") {
		t.Error("Markdown lists a deviation as failing")
	}

	strict := *dev
	strict.Strict = true
	r.Assertions[1].Verdict, r.Assertions[1].Deviation = Fail, &strict
	if v, code := r.Verdict(), ExitCode(r, nil); v != Fail || code != ExitFail {
		t.Fatalf("a strict run with a deviation: verdict %s, exit %d; want fail, 1", v, code)
	}
	html.Reset()
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "counted as a failure (--strict)") {
		t.Error("HTML does not say the strict failure is a known deviation")
	}
}
