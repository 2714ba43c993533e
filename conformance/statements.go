package conformance

import (
	_ "embed"
	"fmt"
	"strings"
)

// statementsTSV is our own paraphrase list of the numbered normative
// statements of MQTT 3.1.1 (Appendix B): id, section, role, summary.
//
//go:embed testdata/mqtt-v311-statements.tsv
var statementsTSV string

// Statement is one normative statement of MQTT 3.1.1.
type Statement struct {
	ID      string `json:"id"`      // "MQTT-3.1.2-24"
	Section string `json:"section"` // "3.1.2"
	Role    string `json:"role"`    // "server", "client" or "both"
	Summary string `json:"summary"` // our paraphrase
}

// ServerSide reports whether the statement binds a server (role server or both):
// those are the statements a broker conformance suite can aim at.
func (s Statement) ServerSide() bool { return s.Role == "server" || s.Role == "both" }

// Statements returns every statement of the list, in the standard's order.
func Statements() []Statement {
	var out []Statement
	for i, line := range strings.Split(strings.TrimSpace(statementsTSV), "\n") {
		if i == 0 || strings.TrimSpace(line) == "" {
			continue // header
		}
		f := strings.SplitN(strings.TrimRight(line, "\r"), "\t", 4)
		if len(f) != 4 {
			panic(fmt.Sprintf("conformance: statements line %d: want 4 tab-separated fields, got %d", i+1, len(f)))
		}
		out = append(out, Statement{ID: f[0], Section: f[1], Role: f[2], Summary: f[3]})
	}
	return out
}

// statementIndex maps an ID to its statement.
func statementIndex() map[string]Statement {
	m := map[string]Statement{}
	for _, s := range Statements() {
		m[s.ID] = s
	}
	return m
}
