package conformance

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/mqttfleet/mqttfleet/reports"
)

// spec builds one spec report the way Define labels it.
func specReport(target, text string, state types.SpecState, labels []string, entries ...types.ReportEntry) types.SpecReport {
	return types.SpecReport{
		LeafNodeType:             types.NodeTypeIt,
		LeafNodeText:             text,
		LeafNodeLabels:           labels,
		ContainerHierarchyTexts:  []string{"target " + target},
		ContainerHierarchyLabels: [][]string{{TargetLabel(target)}},
		State:                    state,
		ReportEntries:            entries,
		RunTime:                  time.Millisecond,
	}
}

func entry(name, value string) types.ReportEntry {
	return types.ReportEntry{Name: name, Value: types.WrapEntryValue(value)}
}

func testReport() types.Report {
	return types.Report{
		SuiteDescription: "test",
		SpecReports: types.SpecReports{
			specReport("a", "connack", types.SpecStatePassed, []string{"connect", "MQTT-3.1.4-4", "MQTT-3.2.0-1"}),
			specReport("a", "first", types.SpecStateFailed, []string{"connect", "MQTT-3.2.0-1"}),
			specReport("b", "connack", types.SpecStatePassed, []string{"connect", "MQTT-3.1.4-4"}),
			specReport("b", "flags", types.SpecStateSkipped, []string{"malformed", "MQTT-2.2.2-2"},
				entry(EntryDeviation, "MQTT-2.2.2-2: ignores flags")),
			specReport("b", "keepalive", types.SpecStatePassed, []string{"keepalive", "MQTT-3.1.2-24"},
				entry(EntryNotReproduced, "MQTT-3.1.2-24: did not reproduce")),
			specReport("b", "ws", types.SpecStateSkipped, []string{"websocket", "MQTT-6.0.0-4", "needs=ws"}),
		},
	}
}

func TestBuildMatrixVerdicts(t *testing.T) {
	m := BuildMatrix(testReport())
	if got := strings.Join(m.Targets, ","); got != "a,b" {
		t.Fatalf("targets = %s, want a,b", got)
	}
	rows := map[string]Row{}
	for _, r := range m.Rows {
		rows[r.ID] = r
	}
	cases := []struct {
		id, target string
		want       Status
	}{
		{"MQTT-3.1.4-4", "a", StatusPass},
		{"MQTT-3.2.0-1", "a", StatusFail}, // the worst of its specs
		{"MQTT-2.2.2-2", "b", StatusDeviation},
		{"MQTT-3.1.2-24", "b", StatusNotReproduced},
		{"MQTT-6.0.0-4", "b", StatusSkipped},
		{"MQTT-3.1.0-1", "a", StatusNotApplicable}, // client-only
	}
	for _, c := range cases {
		if got := rows[c.id].Cells[c.target].Status; got != c.want {
			t.Errorf("%s on %s = %q, want %q", c.id, c.target, got, c.want)
		}
	}
	if m.Coverage.ServerSide != 108 {
		t.Errorf("server-side statements = %d, want 108", m.Coverage.ServerSide)
	}
	if m.Coverage.Verified["b"] != 3 {
		t.Errorf("verified on b = %d, want 3 (pass, deviation, not reproduced)", m.Coverage.Verified["b"])
	}
}

func TestStatementsList(t *testing.T) {
	if n := len(StatementsOf(Protocol311)); n != 141 {
		t.Fatalf("3.1.1 statements = %d, want 141", n)
	}
	v5 := StatementsOf(Protocol5)
	if len(v5) != 251 {
		t.Fatalf("5.0 statements = %d, want 251", len(v5))
	}
	for _, s := range v5 {
		if !strings.HasPrefix(s.ID, V5Prefix+"MQTT-") {
			t.Errorf("5.0 statement keyed %q, want the %s prefix", s.ID, V5Prefix)
		}
	}
	ids := map[string]bool{}
	for _, s := range Statements() {
		if ids[s.ID] {
			t.Errorf("duplicate statement %s", s.ID)
		}
		ids[s.ID] = true
		if s.Role != "server" && s.Role != "client" && s.Role != "both" {
			t.Errorf("%s: role %q", s.ID, s.Role)
		}
	}
}

func TestRegistryCoverage(t *testing.T) {
	cited := map[string]bool{}
	for _, d := range registry {
		for _, id := range d.Statements {
			cited[id] = true
		}
	}
	n := 0
	for _, s := range Statements() {
		if s.ServerSide() && cited[s.ID] {
			n++
		}
	}
	// The floor; the README records the current figure.
	if n < 90 {
		t.Errorf("specs cite %d server-side statements, want at least 90", n)
	}
	// 5.0 statements are counted apart: their IDs are keyed v5:, so one
	// never counts for the 3.1.1 statement with the same number.
	n5 := 0
	for _, s := range StatementsOf(Protocol5) {
		if s.ServerSide() && cited[s.ID] {
			n5++
		}
	}
	if n5 < 180 {
		t.Errorf("5.0 specs cite %d server-side 5.0 statements, want at least 180 (issue #15)", n5)
	}
	// Every server-side 5.0 statement is either cited or listed in
	// UnobservableV5 with the reason the wire does not show it (issue #15).
	listed := map[string]bool{}
	for _, u := range UnobservableV5 {
		listed[u.ID] = true
	}
	for _, s := range StatementsOf(Protocol5) {
		if s.ServerSide() && !cited[s.ID] && !listed[s.ID] {
			t.Errorf("%s (%s) is neither cited by a spec nor listed in UnobservableV5 with a reason", s.ID, s.Summary)
		}
	}
}

// A 5.0 spec's statements land in 5.0 rows and the 5.0 coverage only,
// though the 3.1.1 list has the same ID strings.
func TestBuildMatrixV5Apart(t *testing.T) {
	r := types.Report{SuiteDescription: "test", SpecReports: types.SpecReports{
		specReport("a", "MQTT 5.0: takeover", types.SpecStatePassed, []string{"session", "v5:MQTT-3.1.4-3", "protocol=5.0", "needs=mqtt5"}),
		specReport("a", "takeover", types.SpecStateFailed, []string{"session", "MQTT-3.1.4-2", "protocol=3.1.1"}),
	}}
	m := BuildMatrix(r)
	rows := map[string]Row{}
	for _, row := range m.Rows {
		rows[row.ID] = row
	}
	if got := rows["v5:MQTT-3.1.4-3"].Cells["a"].Status; got != StatusPass {
		t.Errorf("v5:MQTT-3.1.4-3 = %q, want pass", got)
	}
	if got := rows["MQTT-3.1.4-3"].Cells["a"].Status; got == StatusPass {
		t.Errorf("3.1.1 MQTT-3.1.4-3 = %q: a 5.0 spec counted for it", got)
	}
	if got := rows["v5:MQTT-3.1.4-3"].Protocol; got != Protocol5 {
		t.Errorf("protocol of v5:MQTT-3.1.4-3 = %q", got)
	}
	if m.Coverage.V5 == nil || m.Coverage.V5.ServerSide != 203 || m.Coverage.V5.Verified["a"] != 1 {
		t.Errorf("5.0 coverage = %+v, want 203 server-side, 1 verified on a", m.Coverage.V5)
	}
	if m.Coverage.ServerSide != 108 || m.Coverage.Verified["a"] != 1 {
		t.Errorf("3.1.1 coverage = %d server-side, %d verified, want 108 and 1", m.Coverage.ServerSide, m.Coverage.Verified["a"])
	}
	if m.Specs[0].Protocol != Protocol5 {
		t.Errorf("spec protocol = %q, want %s", m.Specs[0].Protocol, Protocol5)
	}
	res := m.Results(time.Now(), time.Now())
	if c := res.Conformance.Cell("a", "v5:MQTT-3.1.4-3"); c.Status != reports.CellPass {
		t.Errorf("results cell v5:MQTT-3.1.4-3 = %q, want pass", c.Status)
	}
}

// The matrix renders through the results model every command shares: the
// results file reads back, and the HTML, Markdown and JUnit renderers show
// the statement x target cells with their deviation notes.
func TestRenderings(t *testing.T) {
	m := BuildMatrix(testReport())
	res := m.Results(time.Unix(1_700_000_000, 0), time.Unix(1_700_000_010, 0))
	path := filepath.Join(t.TempDir(), "results.json")
	if err := res.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := reports.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Kind != reports.KindConformance || back.Conformance == nil || len(back.Conformance.Statements) == 0 {
		t.Fatalf("results file lost the matrix: kind %s, matrix %v", back.Kind, back.Conformance)
	}
	for _, target := range m.Targets {
		if back.Conformance.Cell(target, "MQTT-3.1.4-4").Status == reports.CellNotCovered && m.Rows[0].Cells[target].Status != StatusNotCovered {
			t.Errorf("%s: MQTT-3.1.4-4 cell lost", target)
		}
	}
	var md, html, junit bytes.Buffer
	if err := reports.Markdown(&md, back); err != nil {
		t.Fatal(err)
	}
	if err := reports.HTML(&html, back); err != nil {
		t.Fatal(err)
	}
	if err := reports.JUnit(&junit, back); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	// Self-containment of the page is reports' own test (html_test.go).
	for _, want := range []string{"MQTT-3.1.4-4", "MQTT-2.2.2-2", "ignores flags"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if !strings.Contains(md.String(), "### Conformance") {
		t.Errorf("Markdown lacks the conformance table:\n%s", md.String())
	}
	if !strings.Contains(junit.String(), "MQTT-2.2.2-2") {
		t.Errorf("JUnit lacks the statement cases")
	}
}

func TestDeviationFor(t *testing.T) {
	d := specDef{Text: "closes the connection on a PINGREQ with a reserved flag bit set", Statements: []string{"MQTT-2.2.2-2"}}
	if _, ok := deviationFor("mosquitto", d); !ok {
		t.Error("mosquitto PINGREQ flags deviation not found")
	}
	d.Text = "closes the connection on a PUBREL with flags 0000 instead of 0010"
	if _, ok := deviationFor("mosquitto", d); ok {
		t.Error("a deviation restricted to PINGREQ matched the PUBREL spec")
	}
	if _, ok := deviationFor("inprocess", d); ok {
		t.Error("the reference broker must have no declared deviation")
	}
}
