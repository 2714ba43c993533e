package reports

import (
	"sort"
	"strconv"
	"strings"
)

// CellStatus is how one target fared on one normative statement.
type CellStatus string

// Cell statuses, from best to worst news.
const (
	CellPass       CellStatus = "pass"
	CellDeviation  CellStatus = "deviation"   // the target knowingly departs from the statement (documented)
	CellSkipped    CellStatus = "skipped"     // a test exists but does not apply (capability missing)
	CellNotCovered CellStatus = "not_covered" // no test checks this statement
	CellFail       CellStatus = "fail"
)

// CellStatuses lists every status in display order.
var CellStatuses = []CellStatus{CellFail, CellDeviation, CellPass, CellSkipped, CellNotCovered}

// Matrix is the conformance matrix: normative statements by target.
type Matrix struct {
	Targets    []string    `json:"targets"`
	Statements []Statement `json:"statements"`
	// Cells[target][statement ID]; a missing cell reads as not_covered.
	Cells map[string]map[string]Cell `json:"cells"`
	// Coverage per target, derived by Summarise.
	Coverage map[string]Coverage `json:"coverage"`
}

// Statement is one normative statement of the MQTT specification.
type Statement struct {
	ID      string `json:"id"` // e.g. MQTT-3.1.2-24
	Section string `json:"section"`
	Role    string `json:"role"` // client, server or both
	Summary string `json:"summary"`
}

// Cell is the outcome for one (target, statement).
type Cell struct {
	Status CellStatus `json:"status"`
	Reason string     `json:"reason,omitempty"`
	Specs  []string   `json:"specs,omitempty"` // the tests that checked it
}

// Coverage counts a target's cells. Tested is pass + fail + deviation.
type Coverage struct {
	Tested     int `json:"tested"`
	Total      int `json:"total"`
	Pass       int `json:"pass"`
	Fail       int `json:"fail"`
	Deviation  int `json:"deviation"`
	Skipped    int `json:"skipped"`
	NotCovered int `json:"not_covered"`
	// V5 is the MQTT 5.0 statements' share of these counts (IDs with
	// V5Prefix), when the matrix has any; derived like the rest.
	V5 *Coverage `json:"v5,omitempty"`
}

// Cell returns the cell for (target, id), not_covered when absent.
func (m *Matrix) Cell(target, id string) Cell {
	if c, ok := m.Cells[target][id]; ok {
		return c
	}
	return Cell{Status: CellNotCovered}
}

// Set records the cell for (target, id), adding the target when new.
func (m *Matrix) Set(target, id string, c Cell) {
	if m.Cells == nil {
		m.Cells = map[string]map[string]Cell{}
	}
	if m.Cells[target] == nil {
		m.Cells[target] = map[string]Cell{}
		if !contains(m.Targets, target) {
			m.Targets = append(m.Targets, target)
		}
	}
	m.Cells[target][id] = c
}

// V5Prefix starts the ID of an MQTT 5.0 statement ("v5:MQTT-3.1.2-8"):
// 5.0 reuses 3.1.1's ID strings for other rules, so its statements are
// keyed apart. Unprefixed IDs are MQTT 3.1.1's.
const V5Prefix = "v5:"

// Summarise sorts statements by section (3.1.1's, then 5.0's) and
// recomputes Coverage: over every statement, with the 5.0 statements'
// share also in V5 when there are any.
func (m *Matrix) Summarise() {
	sort.SliceStable(m.Statements, func(i, j int) bool { return lessID(m.Statements[i].ID, m.Statements[j].ID) })
	m.Coverage = map[string]Coverage{}
	for _, t := range m.Targets {
		c := m.count(t, func(string) bool { return true })
		if v5 := m.count(t, func(id string) bool { return strings.HasPrefix(id, V5Prefix) }); v5.Total > 0 {
			c.V5 = &v5
		}
		m.Coverage[t] = c
	}
}

// count counts target's cells over the statements whose ID keep accepts.
func (m *Matrix) count(t string, keep func(string) bool) Coverage {
	var c Coverage
	for _, s := range m.Statements {
		if !keep(s.ID) {
			continue
		}
		c.Total++
		switch m.Cell(t, s.ID).Status {
		case CellPass:
			c.Pass++
		case CellFail:
			c.Fail++
		case CellDeviation:
			c.Deviation++
		case CellSkipped:
			c.Skipped++
		default:
			c.NotCovered++
		}
	}
	c.Tested = c.Pass + c.Fail + c.Deviation
	return c
}

// lessID orders statement IDs numerically: MQTT-3.1.2-9 before MQTT-3.1.2-10.
func lessID(a, b string) bool {
	pa, pb := idParts(a), idParts(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	if len(pa) != len(pb) {
		return len(pa) < len(pb)
	}
	return a < b
}

func idParts(id string) []int {
	v5, id := strings.HasPrefix(id, V5Prefix), strings.TrimPrefix(id, V5Prefix)
	id = strings.TrimPrefix(id, "MQTT-")
	var out []int
	for _, f := range strings.FieldsFunc(id, func(r rune) bool { return r == '.' || r == '-' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			n = 1 << 30
		}
		out = append(out, n)
	}
	// 3.1.1 statements first, then 5.0's, each in section order.
	protocol := 0
	if v5 {
		protocol = 1
	}
	return append([]int{protocol}, out...)
}

// rank orders statuses for merging: the worse news wins a conflict.
func rank(s CellStatus) int {
	switch s {
	case CellFail:
		return 4
	case CellDeviation:
		return 3
	case CellPass:
		return 2
	case CellSkipped:
		return 1
	}
	return 0
}

// mergeMatrices unions targets, statements and cells. Where two parts have
// a cell for the same (target, statement), the worse status wins and the
// specs are joined.
func mergeMatrices(parts []*Matrix) *Matrix {
	var out *Matrix
	seen := map[string]bool{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		if out == nil {
			out = &Matrix{}
		}
		for _, t := range p.Targets {
			if !contains(out.Targets, t) {
				out.Targets = append(out.Targets, t)
			}
		}
		for _, s := range p.Statements {
			if !seen[s.ID] {
				seen[s.ID] = true
				out.Statements = append(out.Statements, s)
			}
		}
		for t, row := range p.Cells {
			for id, c := range row {
				old, ok := out.Cells[t][id]
				if ok {
					if rank(old.Status) >= rank(c.Status) {
						old.Specs = union(old.Specs, c.Specs)
						c = old
					} else {
						c.Specs = union(c.Specs, old.Specs)
					}
				}
				out.Set(t, id, c)
			}
		}
	}
	if out != nil {
		out.Summarise()
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, v := range b {
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
