package yamlpos

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

func index(t *testing.T, src string) *Index {
	t.Helper()
	f, err := parser.ParseBytes([]byte(src), 0)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	return New(f)
}

const fleet = `name: demo
groups:
  - name: sensors
    count: 3
    publish:
      qos: 1
  - name: direct
clients:
  - {name: watcher, subs: [a, b]}
`

// TestAt: a path's key (or list item) position, falling back to the nearest
// written ancestor, and 0:0 where nothing is written.
func TestAt(t *testing.T) {
	cases := []struct {
		src, path string
		line, col int
	}{
		{fleet, "name", 1, 1},
		{fleet, "groups", 2, 1},
		{fleet, "groups[0]", 3, 9}, // a block mapping item starts at its first colon
		{fleet, "groups[0].name", 3, 5},
		{fleet, "groups[0].count", 4, 5},
		{fleet, "groups[0].publish.qos", 6, 7},
		{fleet, "groups[1].name", 7, 5},
		{fleet, "groups[1].count", 7, 9},          // defaulted: its list item
		{fleet, "groups[0].publish.retain", 5, 5}, // defaulted: its mapping
		{fleet, "clients[0].name", 9, 6},
		{fleet, "clients[0]", 9, 5},
		{fleet, "clients[0].subs", 9, 21},
		{fleet, "clients[0].subs[1]", 9, 31},
		{fleet, "duration", 0, 0},
		{"a:\n  b:\n    c: x\n", "a.b.c", 3, 5},
		{"---\nk: v\n", "k", 2, 1},
		{"", "k", 0, 0},
	}
	for _, tc := range cases {
		ix := index(t, tc.src)
		line, col := ix.At(tc.path)
		if line != tc.line || col != tc.col {
			t.Errorf("%q in %q: at %d:%d, want %d:%d", tc.path, tc.src, line, col, tc.line, tc.col)
		}
		if got, want := ix.Has(tc.path), tc.line > 0 && ix.byPath[tc.path] == (Pos{tc.line, tc.col}); got != want {
			t.Errorf("%q in %q: Has %v, want %v", tc.path, tc.src, got, want)
		}
	}
}

// TestNilIndex: a document built in Go has no index and no positions.
func TestNilIndex(t *testing.T) {
	var ix *Index
	if l, c := ix.At("a"); l != 0 || c != 0 {
		t.Errorf("At %d:%d", l, c)
	}
	if ix.Has("a") || ix.PathsAt(1, 1) != nil || ix.KeysUnder("a") != nil {
		t.Error("nil index knows something")
	}
	if _, _, ok := ix.Unplaced(`x "y"`); ok {
		t.Error("nil index placed a message")
	}
}

// TestPathsAt: keys and values name their field; a list item and its first
// key share a position, outermost first.
func TestPathsAt(t *testing.T) {
	ix := index(t, fleet)
	cases := []struct {
		line, col int
		want      []string
	}{
		{1, 7, []string{"name"}},
		{3, 5, []string{"groups[0].name"}},
		{3, 9, []string{"groups[0]"}},
		{6, 10, []string{"groups[0].publish"}}, // a block mapping value starts at its first colon
		{4, 12, []string{"groups[0].count"}},
		{6, 12, []string{"groups[0].publish.qos"}},
		{9, 27, []string{"clients[0].subs"}},
		{9, 28, []string{"clients[0].subs[0]"}},
		{8, 3, nil},
	}
	for _, tc := range cases {
		if got := ix.PathsAt(tc.line, tc.col); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%d:%d: %q, want %q", tc.line, tc.col, got, tc.want)
		}
	}
}

func TestKeysUnder(t *testing.T) {
	ix := index(t, fleet)
	cases := map[string][]string{
		"groups[0]":         {"name", "count", "publish"},
		"groups[0].publish": {"qos"},
		"groups[1]":         {"name"},
		"nothing":           nil,
	}
	for path, want := range cases {
		if got := ix.KeysUnder(path); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

// TestExplain: go-yaml's errors taken apart into position, message and token.
func TestExplain(t *testing.T) {
	type doc struct {
		Name  string `yaml:"name"`
		Count int    `yaml:"count"`
	}
	cases := []struct {
		name, src string
		line, col int
		token     string
		unknown   bool
	}{
		{"wrong type", "name: a\ncount: many\n", 2, 8, "many", false},
		{"unknown field", "name: a\ncont: 3\n", 2, 1, "cont", true},
		{"syntax", "name: [a\ncount: 1\n", 2, 1, "count", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := yaml.UnmarshalWithOptions([]byte(tc.src), &d, yaml.Strict(), yaml.DisallowUnknownField())
			if err == nil {
				t.Fatal("decoded")
			}
			p, ok := Explain(err)
			if !ok || p.Line != tc.line || p.Column != tc.col || p.Token != tc.token || p.Unknown != tc.unknown || p.Msg == "" {
				t.Errorf("%+v ok=%v, want %d:%d token %q unknown %v", p, ok, tc.line, tc.col, tc.token, tc.unknown)
			}
		})
	}
	p, ok := Explain(errors.New("plain"))
	if ok || p.Msg != "plain" || p.Line != 0 {
		t.Errorf("plain error: %+v ok=%v", p, ok)
	}
}

// seconds is a value with its own decoder, whose errors go-yaml passes on
// without a position.
type seconds int

func (s *seconds) UnmarshalText(b []byte) error {
	return fmt.Errorf("not a duration: %q", b)
}

// TestUnplaced: an error without a position is placed by the value it quotes.
func TestUnplaced(t *testing.T) {
	src := "a:\n  every: 5\n  for: 5\nb: later\n"
	var d struct {
		A struct {
			Every seconds `yaml:"every"`
		} `yaml:"a"`
	}
	err := yaml.Unmarshal([]byte(src), &d)
	if err == nil {
		t.Fatal("decoded")
	}
	if p, ok := Explain(err); ok {
		t.Fatalf("go-yaml placed its own decoder's error at %d:%d; Unplaced is not needed", p.Line, p.Column)
	}
	ix := index(t, src)
	cases := []struct {
		msg   string
		path  string
		quote int
		ok    bool
	}{
		{err.Error(), "a.every", strings.Index(err.Error(), `"`), true}, // the first use of the value
		{`no step "later" or "5"`, "b", 8, true},                        // the first quoted value
		{`unknown "nowhere"`, "", 0, false},
		{`no quote`, "", 0, false},
		{`one " quote`, "", 0, false},
	}
	for _, tc := range cases {
		path, quote, ok := ix.Unplaced(tc.msg)
		if path != tc.path || ok != tc.ok || (ok && quote != tc.quote) {
			t.Errorf("%q: %q at %d ok=%v, want %q at %d ok=%v", tc.msg, path, quote, ok, tc.path, tc.quote, tc.ok)
		}
	}
}

// TestUnmarshalDecoderPanic: go-yaml panics on a tagged scalar where a list
// is expected; Unmarshal returns an error placed at the tag instead.
func TestUnmarshalDecoderPanic(t *testing.T) {
	var v struct {
		Items []struct{ Name string } `yaml:"items"`
	}
	for _, src := range []string{"items: !x {a: 1}", "name: x\nitems: !x {a: 1}"} {
		err := Unmarshal([]byte(src), &v)
		if err == nil {
			t.Fatalf("%q: no error", src)
		}
		p, ok := Explain(err)
		if !ok || p.Line != strings.Count(src, "\n")+1 || !strings.Contains(p.Msg, "remove the tag") {
			t.Fatalf("%q: %+v, ok=%v (err %v)", src, p, ok, err)
		}
	}
	if err := Unmarshal([]byte("items: [{name: a}]"), &v); err != nil || len(v.Items) != 1 {
		t.Fatalf("good input: %v %+v", err, v)
	}
}
