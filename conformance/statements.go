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

// statementsV5TSV is the same list for MQTT 5.0 (Appendix B of the 5.0
// standard). 5.0 reuses many 3.1.1 ID strings with other meanings, so its
// statements are keyed with V5Prefix everywhere the suite shows them.
//
//go:embed testdata/mqtt-v5-statements.tsv
var statementsV5TSV string

// V5Prefix keys a 5.0 statement in labels, the matrix and results files:
// "v5:MQTT-3.1.2-8" is 5.0's MQTT-3.1.2-8, "MQTT-3.1.2-8" stays 3.1.1's.
// 3.1.1 keys are unprefixed, so results files written before 5.0 specs
// existed read as they did.
const V5Prefix = "v5:"

// Protocols of statements (Statement.Protocol).
const (
	Protocol311 = "3.1.1"
	Protocol5   = "5.0"
)

// Statement is one normative statement of MQTT 3.1.1 or 5.0.
type Statement struct {
	ID       string `json:"id"`                 // "MQTT-3.1.2-24", or "v5:MQTT-3.1.2-24" for 5.0
	Section  string `json:"section"`            // "3.1.2"
	Role     string `json:"role"`               // "server", "client" or "both"
	Summary  string `json:"summary"`            // our paraphrase
	Protocol string `json:"protocol,omitempty"` // Protocol311 or Protocol5
}

// ServerSide reports whether the statement binds a server (role server or both):
// those are the statements a broker conformance suite can aim at.
func (s Statement) ServerSide() bool { return s.Role == "server" || s.Role == "both" }

// Statements returns every statement, 3.1.1's then 5.0's, each list in the
// standard's order.
func Statements() []Statement {
	return append(parseStatements(statementsTSV, "", Protocol311), parseStatements(statementsV5TSV, V5Prefix, Protocol5)...)
}

// StatementsOf returns the statements of one protocol (Protocol311 or Protocol5).
func StatementsOf(protocol string) []Statement {
	var out []Statement
	for _, s := range Statements() {
		if s.Protocol == protocol {
			out = append(out, s)
		}
	}
	return out
}

func parseStatements(tsv, prefix, protocol string) []Statement {
	var out []Statement
	for i, line := range strings.Split(strings.TrimSpace(tsv), "\n") {
		if i == 0 || strings.TrimSpace(line) == "" {
			continue // header
		}
		f := strings.SplitN(strings.TrimRight(line, "\r"), "\t", 4)
		if len(f) != 4 {
			panic(fmt.Sprintf("conformance: %s statements line %d: want 4 tab-separated fields, got %d", protocol, i+1, len(f)))
		}
		out = append(out, Statement{ID: prefix + f[0], Section: f[1], Role: f[2], Summary: f[3], Protocol: protocol})
	}
	return out
}

// statementIndex maps a key (ID, prefixed for 5.0) to its statement.
func statementIndex() map[string]Statement {
	m := map[string]Statement{}
	for _, s := range Statements() {
		m[s.ID] = s
	}
	return m
}
