// Package yamlpos finds where the fields of a YAML document are written, so
// that a refusal of a decoded value can say "file:line:col: field: message"
// — the form editors jump to. It reads github.com/goccy/go-yaml's syntax
// tree and errors; the wording of each refusal stays with its caller.
//
// Field paths are written as in the file: keys joined by dots, list items
// by index, such as groups[0].publish.qos.
package yamlpos

import (
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Pos is a 1-based line and column in a YAML source.
type Pos struct{ Line, Column int }

// Index maps field paths to where they are written and back. A nil *Index
// knows no positions, so documents built in Go validate with the same code.
type Index struct {
	fractions []Fraction        // non-whole numbers, in file order
	docs      int               // YAML documents in the file
	byPath    map[string]Pos    // path -> position of its key (or list item)
	byPos     map[Pos][]string  // position of a key or value -> paths there, outermost first
	scalar    map[string]string // scalar value text -> path of its first use
}

// New indexes every mapping key, list item and value of a parsed file.
func New(f *ast.File) *Index {
	ix := &Index{byPath: map[string]Pos{}, byPos: map[Pos][]string{}, scalar: map[string]string{}}
	if f == nil {
		return ix
	}
	ix.docs = len(f.Docs)
	for _, d := range f.Docs {
		if d.Body != nil {
			ix.walk(d.Body, "")
		}
	}
	return ix
}

func (ix *Index) walk(n ast.Node, path string) {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, mv := range n.Values {
			ix.walkValue(mv, path)
		}
	case *ast.MappingValueNode:
		ix.walkValue(n, path)
	case *ast.FloatNode:
		if n.Value != float64(int64(n.Value)) {
			if at, ok := posOf(n); ok {
				ix.fractions = append(ix.fractions, Fraction{Path: path, Pos: at, Text: n.GetToken().Value})
			}
		}
	case *ast.SequenceNode:
		for i, v := range n.Values {
			p := path + "[" + strconv.Itoa(i) + "]"
			if at, ok := posOf(v); ok {
				ix.add(p, at)
			}
			ix.walk(v, p)
		}
	}
}

func (ix *Index) walkValue(mv *ast.MappingValueNode, path string) {
	p := mv.Key.String()
	if path != "" {
		p = path + "." + p
	}
	if at, ok := posOf(mv.Key); ok {
		ix.add(p, at)
	}
	if mv.Value == nil {
		return
	}
	if at, ok := posOf(mv.Value); ok {
		// A value's position names its key's path: decoding errors point
		// at the value, and the refusal should name the field.
		ix.byPos[at] = append(ix.byPos[at], p)
		if _, ok := ix.scalar[mv.Value.GetToken().Value]; !ok {
			ix.scalar[mv.Value.GetToken().Value] = p
		}
	}
	ix.walk(mv.Value, p)
}

func posOf(n ast.Node) (Pos, bool) {
	t := n.GetToken()
	if t == nil || t.Position == nil {
		return Pos{}, false
	}
	return Pos{t.Position.Line, t.Position.Column}, true
}

func (ix *Index) add(path string, at Pos) {
	if _, ok := ix.byPath[path]; !ok {
		ix.byPath[path] = at
	}
	ix.byPos[at] = append(ix.byPos[at], path)
}

// Has reports whether path is written in the file.
func (ix *Index) Has(path string) bool {
	if ix == nil {
		return false
	}
	_, ok := ix.byPath[path]
	return ok
}

// At returns the position of path, or of its nearest ancestor written in
// the file (a defaulted field has no line of its own); 0, 0 when none is.
func (ix *Index) At(path string) (line, col int) {
	if ix == nil {
		return 0, 0
	}
	for p := path; p != ""; {
		if at, ok := ix.byPath[p]; ok {
			return at.Line, at.Column
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0, 0
}

// PathsAt lists the paths whose key, list item or value starts at line:col,
// outermost first where nodes share a token. go-yaml's errors point at such
// a token: a wrong type at the value, an unknown field at its key.
func (ix *Index) PathsAt(line, col int) []string {
	if ix == nil {
		return nil
	}
	return ix.byPos[Pos{line, col}]
}

// KeysUnder lists the keys written directly under the mapping at path, in
// the order of the file.
func (ix *Index) KeysUnder(path string) []string {
	if ix == nil {
		return nil
	}
	var out []string
	prefix := path + "."
	for p := range ix.byPath {
		if rest, ok := strings.CutPrefix(p, prefix); ok && !strings.ContainsAny(rest, ".[") {
			out = append(out, rest)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return ix.byPath[prefix+out[i]].Line < ix.byPath[prefix+out[j]].Line
	})
	return out
}

// Problem is what a go-yaml decoding error says, taken apart.
type Problem struct {
	Line, Column int    // where the error points; 0 when go-yaml gave no position
	Msg          string // go-yaml's message, without position or source excerpt
	Token        string // text of the token the error points at
	Unknown      bool   // the error is an unknown field (yaml.DisallowUnknownField)
}

// Explain takes a go-yaml error apart. ok is false when the error carries no
// position: then Msg is err's whole text and Unplaced may still place it.
func Explain(err error) (p Problem, ok bool) {
	var e yaml.Error
	if !errors.As(err, &e) || e.GetToken() == nil || e.GetToken().Position == nil {
		return Problem{Msg: err.Error()}, false
	}
	t := e.GetToken()
	var uf *yaml.UnknownFieldError
	return Problem{Line: t.Position.Line, Column: t.Position.Column, Msg: e.GetMessage(), Token: t.Value,
		Unknown: errors.As(err, &uf)}, true
}

// Unplaced places an error go-yaml reported without a position — one from a
// value's own decoder, such as a duration without a unit — by the first
// quoted value in its message: the path of the field that value is first
// written under, and the index of the opening quote in msg. ok is false when
// no quoted value of the message is written in the file.
func (ix *Index) Unplaced(msg string) (path string, quote int, ok bool) {
	i := strings.Index(msg, `"`)
	if ix == nil || i < 0 {
		return "", 0, false
	}
	j := strings.Index(msg[i+1:], `"`)
	if j < 0 {
		return "", 0, false
	}
	path, ok = ix.scalar[msg[i+1:i+1+j]]
	return path, i, ok
}

// Fraction is a number with a fractional part, where it is written.
type Fraction struct {
	Path string // the field (list items end in [i])
	Pos  Pos
	Text string // as written
}

// Fractions returns the numbers with a fractional part whose field's last
// key is in keys, such as count: 2.5. go-yaml decodes them into an int
// field by truncation (2.5 becomes 2, 0.9 becomes 0) without a word, so a
// loader that wants whole numbers must look at how they were written.
func (ix *Index) Fractions(keys map[string]bool) []Fraction {
	if ix == nil {
		return nil
	}
	var out []Fraction
	for _, f := range ix.fractions {
		key := f.Path
		if i := strings.LastIndexByte(key, '['); i >= 0 && strings.HasSuffix(key, "]") {
			key = key[:i] // devices: [1.5] is a list of whole numbers
		}
		if i := strings.LastIndexByte(key, '.'); i >= 0 {
			key = key[i+1:]
		}
		if keys[key] {
			out = append(out, f)
		}
	}
	return out
}

// Documents returns how many YAML documents the file holds: a loader that
// decodes one must refuse the rest rather than ignore them.
func (ix *Index) Documents() int {
	if ix == nil {
		return 0
	}
	return ix.docs
}
