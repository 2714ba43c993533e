package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/mqttfleet/mqttfleet/internal/yamlpos"
	"github.com/mqttfleet/mqttfleet/reports"
)

// Error is a refused scenario file: where, which field, and why. It formats
// as "file:line:col: field: message", the form editors jump to.
type Error struct {
	File   string
	Line   int // 1-based; 0 when the field is not in the file
	Column int
	Field  string // path such as steps[2].group
	Msg    string
}

// Error formats the position, the field and the message.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every refused scenario an invalid input (exit 2).
func (e *Error) Unwrap() error { return reports.ErrInvalid }

// Errors is every problem validation found in one file, in file order.
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	if len(es) > 1 {
		return fmt.Sprintf("%d problems:\n%s", len(es), strings.Join(lines, "\n"))
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so errors.As finds the first *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// orNil sorts the problems by position and returns nil when there is none.
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	return es
}

// Load reads, substitutes variables in, decodes and validates a scenario
// file. vars override the file's own vars (mqttfleet run -set name=value).
// Every refusal is an *Error naming the file, line and field.
func Load(path string, vars map[string]string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := Parse(data, vars)
	var es Errors
	var se *Error
	switch {
	case errors.As(err, &es):
		for _, e := range es {
			e.File = path
		}
	case errors.As(err, &se):
		se.File = path
	}
	if err != nil {
		return nil, err
	}
	sc.File = path
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return sc, nil
}

// typeMismatch is go-yaml's wording for a value of the wrong type.
var typeMismatch = regexp.MustCompile(`cannot unmarshal (\S+) into Go .* of type (\S+)`)

func friendlyType(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return t
}

// varRef is a ${name} reference.
var varRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// varName is what a variable may be called.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Parse decodes and validates a scenario from bytes; see Load.
func Parse(data []byte, overrides map[string]string) (*Scenario, error) {
	if _, err := parser.ParseBytes(data, 0); err != nil {
		return nil, yamlError(err, nil)
	}
	vars, err := readVars(data, overrides)
	if err != nil {
		return nil, err
	}
	data, err = substitute(data, vars)
	if err != nil {
		return nil, err
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(err, nil)
	}
	pos := &positions{ix: yamlpos.New(f)}
	if n := pos.ix.Documents(); n > 1 {
		// The decoder reads the first document and ignores the rest.
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("the file holds %d YAML documents (separated by ---); a scenario file holds one", n)}
	}
	var sc Scenario
	if err := yamlpos.Unmarshal(data, &sc, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(err, pos)
	}
	sc.pos = pos
	for k, v := range vars {
		if sc.Vars == nil {
			sc.Vars = map[string]any{}
		}
		sc.Vars[k] = v
	}
	if err := sc.validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// readVars returns the file's vars with the overrides applied. Overrides
// must name a variable the file declares, so a typo on the command line
// cannot silently do nothing.
func readVars(data []byte, overrides map[string]string) (map[string]string, error) {
	var head struct {
		Vars map[string]any `yaml:"vars"`
	}
	if err := yamlpos.Unmarshal(data, &head); err != nil {
		return nil, yamlError(err, nil)
	}
	vars := map[string]string{}
	for k, v := range head.Vars {
		if !varName.MatchString(k) {
			return nil, &Error{Field: "vars." + k, Line: lineOf(data, k+":"), Column: 1,
				Msg: "a variable name is letters, digits and _, not starting with a digit"}
		}
		switch v.(type) {
		case map[string]any, []any:
			return nil, &Error{Field: "vars." + k, Line: lineOf(data, k+":"), Column: 1, Msg: "a variable is a single value"}
		}
		vars[k] = fmt.Sprint(v)
	}
	names := make([]string, 0, len(overrides))
	for k := range overrides {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := vars[k]; !ok {
			return nil, &Error{Field: "vars", Msg: fmt.Sprintf("-set %s: the scenario has no variable %q (declared: %s)", k, k, keys(vars))}
		}
		vars[k] = overrides[k]
	}
	return vars, nil
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	if len(ks) == 0 {
		return "none"
	}
	return strings.Join(ks, ", ")
}

// lineOf returns the 1-based line of the first occurrence of s, or 0.
func lineOf(data []byte, s string) int {
	i := strings.Index(string(data), s)
	if i < 0 {
		return 0
	}
	return strings.Count(string(data[:i]), "\n") + 1
}

// substitute replaces ${name} with its value. Substitution is textual and
// stays on its line, so positions in later errors are still right.
func substitute(data []byte, vars map[string]string) ([]byte, error) {
	var err error
	out := varRef.ReplaceAllFunc(data, func(m []byte) []byte {
		name := string(m[2 : len(m)-1])
		if v, ok := vars[name]; ok {
			return []byte(v)
		}
		if err == nil {
			i := strings.Index(string(data), string(m))
			line := strings.Count(string(data[:i]), "\n") + 1
			col := i - strings.LastIndex(string(data[:i]), "\n")
			err = &Error{Line: line, Column: col, Field: "${" + name + "}",
				Msg: fmt.Sprintf("unknown variable %q: declare it under vars: (declared: %s)", name, keys(vars))}
		}
		return m
	})
	return out, err
}

// positions is where the scenario's fields are written; nil for a
// scenario built in Go.
type positions struct{ ix *yamlpos.Index }

// keysUnder lists the keys written directly under path (a mapping).
func (ps *positions) keysUnder(path string) []string {
	if ps == nil {
		return nil
	}
	return ps.ix.KeysUnder(path)
}

// at returns the position of path, or of its nearest ancestor in the file.
func (ps *positions) at(path string) (int, int) {
	if ps == nil {
		return 0, 0
	}
	return ps.ix.At(path)
}

// yamlError turns a go-yaml error into an *Error naming the field whose key
// or value sits at the error's position (the outermost, so a list item's
// first key names the item).
func yamlError(err error, pos *positions) error {
	var ix *yamlpos.Index
	if pos != nil {
		ix = pos.ix
	}
	p, ok := yamlpos.Explain(err)
	if !ok {
		return unplaced(err, ix)
	}
	e := &Error{Line: p.Line, Column: p.Column, Msg: p.Msg}
	if m := typeMismatch.FindStringSubmatch(e.Msg); m != nil {
		e.Msg = fmt.Sprintf("want %s, got %s %q", friendlyType(m[2]), m[1], p.Token)
	}
	if paths := ix.PathsAt(p.Line, p.Column); len(paths) > 0 {
		e.Field = paths[0]
	}
	if p.Unknown {
		e.Msg = fmt.Sprintf("unknown field %q (see docs/scenarios.md for the fields of each section)", p.Token)
		if e.Field == "" {
			e.Field = p.Token
		}
	}
	return e
}

// unplaced places an error go-yaml reported without a position (one from a
// value's own decoder, such as a duration without a unit) by the quoted
// value it names.
func unplaced(err error, ix *yamlpos.Index) error {
	msg := err.Error()
	path, quote, ok := ix.Unplaced(msg)
	if !ok {
		return &Error{Msg: msg}
	}
	line, col := ix.At(path)
	return &Error{Field: path, Line: line, Column: col, Msg: msg[quote:]}
}
