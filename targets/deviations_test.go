package targets

import (
	"os"
	"strings"
	"testing"
)

// TestDeviationDocs: every declared deviation points at a write-up that
// exists, so a report's link is never dead.
func TestDeviationDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/deviations.md")
	if err != nil {
		t.Fatal(err)
	}
	for target, ds := range Deviations {
		if target == "inprocess" {
			t.Error("the reference broker must declare no deviation: its failures are bugs")
		}
		for _, d := range ds {
			if d.ID == "" || !strings.Contains(string(doc), `<a id="`+d.ID+`"></a>`) {
				t.Errorf("%s %s: no anchor %q in docs/deviations.md", target, d.Statement, d.ID)
			}
			if !strings.Contains(string(doc), d.Statement) {
				t.Errorf("%s: docs/deviations.md does not mention %s", target, d.Statement)
			}
		}
	}
}

// TestExplains: a deviation with With explains only checks citing both
// statements.
func TestExplains(t *testing.T) {
	if _, ok := Explains("mosquitto", []string{"MQTT-3.1.2-8"}); ok {
		t.Error("MQTT-3.1.2-8 alone (a will missing for any reason) was explained")
	}
	if d, ok := Explains("mosquitto", []string{"MQTT-3.1.0-2", "MQTT-3.1.2-8"}); !ok || d.ID != "mosquitto-no-will-after-second-connect" {
		t.Errorf("second-CONNECT will: %+v %v", d, ok)
	}
	if _, ok := Explains("inprocess", []string{"MQTT-3.1.2-24"}); ok {
		t.Error("the reference broker has a deviation")
	}
	if err := DeviationTable("mosquito"); err == nil || !strings.Contains(err.Error(), "mosquitto") {
		t.Errorf("unknown table: %v", err)
	}
}
