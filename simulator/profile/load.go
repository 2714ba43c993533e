package profile

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/mqttfleet/mqttfleet/internal/yamlpos"
	"github.com/mqttfleet/mqttfleet/reports"
)

// Error is a refused profile: which field, where, and why.
type Error struct {
	File   string // empty for profiles built in Go or parsed from bytes
	Line   int    // 1-based; zero when the field has no source position
	Column int
	Field  string // path such as groups[0].publish.qos
	Msg    string
}

// Unwrap makes every refused profile an invalid input (exit 2).
func (e *Error) Unwrap() error { return reports.ErrInvalid }

// Error formats as "file:line:col: field: msg", or "line L:C: field: msg"
// without a file.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d:%d: ", e.Line, e.Column)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and validates a YAML profile file.
func Load(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	p, err := Parse(b)
	var pe *Error
	if errors.As(err, &pe) {
		pe.File = path
	}
	return p, err
}

// Parse decodes and validates a YAML profile. Unknown fields, wrong types and
// invalid values are refused with an *Error naming the field and its line.
func Parse(data []byte) (*Profile, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(err, nil)
	}
	pos := yamlpos.New(f)
	if n := pos.Documents(); n > 1 {
		// The decoder reads the first document and ignores the rest.
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("the file holds %d YAML documents (separated by ---); a profile holds one", n)}
	}
	// go-yaml truncates 2.5 into an int field: refuse what was written.
	if fr := pos.Fractions(map[string]bool{"count": true, "qos": true, "max_connecting": true, "size": true, "max_attempts": true, "protocol": true, "receive_maximum": true}); len(fr) > 0 {
		return nil, &Error{Field: fr[0].Path, Line: fr[0].Pos.Line, Column: fr[0].Pos.Column, Msg: fmt.Sprintf("must be a whole number, not %s", fr[0].Text)}
	}
	var p Profile
	if err := yamlpos.Unmarshal(data, &p, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(err, pos)
	}
	if err := p.validate(pos); err != nil {
		return nil, err
	}
	return &p, nil
}

// yamlError turns a go-yaml error into an *Error, naming the field whose key
// or value sits at the error's position (the innermost, so a list item's
// first key names that key).
func yamlError(err error, ix *yamlpos.Index) error {
	p, ok := yamlpos.Explain(err)
	if !ok {
		return unplaced(err, ix)
	}
	e := &Error{Line: p.Line, Column: p.Column, Msg: p.Msg}
	if paths := ix.PathsAt(p.Line, p.Column); len(paths) > 0 {
		e.Field = paths[len(paths)-1]
	}
	if p.Unknown && e.Field == "" {
		e.Field = p.Token
	}
	return e
}

// unplaced places an error go-yaml reported without a position (a bad
// duration, for one) by the quoted value it names.
func unplaced(err error, ix *yamlpos.Index) error {
	e := &Error{Msg: err.Error()}
	if path, _, ok := ix.Unplaced(e.Msg); ok {
		e.Field = path
		e.Line, e.Column = ix.At(path)
	}
	return e
}
