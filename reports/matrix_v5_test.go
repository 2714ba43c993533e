package reports

import (
	"strings"
	"testing"
)

// 5.0 statements (v5: IDs) sort after 3.1.1's, each in section order, and
// their share of the coverage is counted apart; a matrix without them (any
// results file written before 5.0 specs existed) reads as before.
func TestMatrixV5Apart(t *testing.T) {
	m := &Matrix{Statements: []Statement{{ID: "v5:MQTT-3.1.2-10"}, {ID: "MQTT-3.1.2-10"}, {ID: "v5:MQTT-3.1.2-9"}, {ID: "MQTT-4.1.0-1"}}}
	m.Set("a", "v5:MQTT-3.1.2-9", Cell{Status: CellPass})
	m.Set("a", "v5:MQTT-3.1.2-10", Cell{Status: CellDeviation})
	m.Set("a", "MQTT-3.1.2-10", Cell{Status: CellFail})
	m.Summarise()
	var ids []string
	for _, s := range m.Statements {
		ids = append(ids, s.ID)
	}
	if got := strings.Join(ids, " "); got != "MQTT-3.1.2-10 MQTT-4.1.0-1 v5:MQTT-3.1.2-9 v5:MQTT-3.1.2-10" {
		t.Errorf("order = %s", got)
	}
	c := m.Coverage["a"]
	if c.Total != 4 || c.Tested != 3 || c.V5 == nil || c.V5.Total != 2 || c.V5.Pass != 1 || c.V5.Deviation != 1 {
		t.Errorf("coverage = %+v, v5 = %+v", c, c.V5)
	}
	old := &Matrix{Statements: []Statement{{ID: "MQTT-3.1.2-10"}}}
	old.Set("a", "MQTT-3.1.2-10", Cell{Status: CellPass})
	old.Summarise()
	if old.Coverage["a"].V5 != nil {
		t.Errorf("a 3.1.1-only matrix got 5.0 coverage %+v", old.Coverage["a"].V5)
	}
}
