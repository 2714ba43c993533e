package profile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Error is a refused profile: which field, where, and why.
type Error struct {
	File   string // empty for profiles built in Go or parsed from bytes
	Line   int    // 1-based; zero when the field has no source position
	Column int
	Field  string // path such as groups[0].publish.qos
	Msg    string
}

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

// positions maps field paths to their source position and back.
type positions struct {
	byPath map[string][2]int // path -> line, column of its key
	byLine map[[2]int]string // line, column of a key or value -> path
	scalar map[string]string // scalar value text -> path of its first use
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
	pos := &positions{byPath: map[string][2]int{}, byLine: map[[2]int]string{}, scalar: map[string]string{}}
	for _, d := range f.Docs {
		if d.Body != nil {
			pos.walk(d.Body, "")
		}
	}
	var p Profile
	if err := yaml.UnmarshalWithOptions(data, &p, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(err, pos)
	}
	if err := p.validate(pos); err != nil {
		return nil, err
	}
	return &p, nil
}

// walk records the position of every mapping key and sequence item.
func (ps *positions) walk(n ast.Node, path string) {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, mv := range n.Values {
			ps.walkValue(mv, path)
		}
	case *ast.MappingValueNode:
		ps.walkValue(n, path)
	case *ast.SequenceNode:
		for i, v := range n.Values {
			p := path + "[" + strconv.Itoa(i) + "]"
			if t := v.GetToken(); t != nil && t.Position != nil {
				ps.add(p, t.Position.Line, t.Position.Column)
			}
			ps.walk(v, p)
		}
	}
}

func (ps *positions) walkValue(mv *ast.MappingValueNode, path string) {
	key := mv.Key.String()
	p := key
	if path != "" {
		p = path + "." + key
	}
	if t := mv.Key.GetToken(); t != nil && t.Position != nil {
		ps.add(p, t.Position.Line, t.Position.Column)
	}
	if mv.Value != nil {
		if t := mv.Value.GetToken(); t != nil && t.Position != nil {
			ps.byLine[[2]int{t.Position.Line, t.Position.Column}] = p
			if _, ok := ps.scalar[t.Value]; !ok {
				ps.scalar[t.Value] = p
			}
		}
		ps.walk(mv.Value, p)
	}
}

func (ps *positions) add(path string, line, col int) {
	if _, ok := ps.byPath[path]; !ok {
		ps.byPath[path] = [2]int{line, col}
	}
	ps.byLine[[2]int{line, col}] = path
}

// at returns the position of path, or of its nearest ancestor present in the
// source (a defaulted field has no line of its own).
func (ps *positions) at(path string) (int, int) {
	if ps == nil {
		return 0, 0
	}
	for p := path; p != ""; {
		if lc, ok := ps.byPath[p]; ok {
			return lc[0], lc[1]
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0, 0
}

// yamlError turns a go-yaml error into an *Error, naming the field whose key
// or value sits at the error's position.
func yamlError(err error, pos *positions) error {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil || ye.GetToken().Position == nil {
		return pos.unplaced(err)
	}
	tp := ye.GetToken().Position
	e := &Error{Line: tp.Line, Column: tp.Column, Msg: ye.GetMessage()}
	if pos != nil {
		e.Field = pos.byLine[[2]int{tp.Line, tp.Column}]
	}
	var uf *yaml.UnknownFieldError
	if errors.As(err, &uf) && e.Field == "" {
		e.Field = ye.GetToken().Value
	}
	return e
}

// unplaced places an error go-yaml reported without a position (a bad
// duration, for one) by the quoted value it names.
func (ps *positions) unplaced(err error) error {
	e := &Error{Msg: err.Error()}
	msg := err.Error()
	i := strings.Index(msg, `"`)
	j := strings.LastIndex(msg, `"`)
	if ps == nil || i < 0 || j <= i {
		return e
	}
	if p, ok := ps.scalar[msg[i+1:j]]; ok {
		e.Field = p
		e.Line, e.Column = ps.at(p)
	}
	return e
}
