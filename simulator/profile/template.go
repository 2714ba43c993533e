package profile

import (
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Vars are what templates see. Index is the device's global index
// (0-based, the same in every shard); N is Index+1.
type Vars struct {
	Index      int
	N          int
	GroupIndex int // index within the group
	Group      string
	ClientID   string // empty while the client ID itself is rendered
	Seq        uint64 // payload templates only
	Time       time.Time
}

// funcs are the template helpers: arithmetic for ID schemes such as
// deliberate duplicates ("dev-{{mod .Index 100}}").
var funcs = template.FuncMap{
	"mod": func(a, b int) int {
		if b == 0 {
			return 0
		}
		return a % b
	},
	"div": func(a, b int) int {
		if b == 0 {
			return 0
		}
		return a / b
	},
	"add": func(a, b int) int { return a + b },
	"sub": func(a, b int) int { return a - b },
	"mul": func(a, b int) int { return a * b },
	"pad": func(width, v int) string { return fmt.Sprintf("%0*d", width, v) },
}

// Template is a compiled text template over Vars. Text without "{{" is used
// as is, so static topics cost nothing per device.
type Template struct {
	raw string
	t   *template.Template
}

// Compile parses text as a template.
func Compile(name, text string) (*Template, error) {
	if !strings.Contains(text, "{{") {
		return &Template{raw: text}, nil
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	// Execute once against zero Vars so that unknown fields are refused now,
	// not on device 7,342 in the middle of a run.
	if err := t.Execute(&strings.Builder{}, Vars{}); err != nil {
		return nil, fmt.Errorf("check template: %w", err)
	}
	return &Template{raw: text, t: t}, nil
}

// MustCompile is Compile for templates known to be valid.
func MustCompile(name, text string) *Template {
	t, err := Compile(name, text)
	if err != nil {
		panic(err)
	}
	return t
}

// Static reports whether the template renders the same text for every device.
func (t *Template) Static() bool { return t.t == nil }

// Raw returns the template's source text.
func (t *Template) Raw() string { return t.raw }

// Render executes the template for v. Execution errors cannot happen after
// Compile checked the template, so they render as the error text.
func (t *Template) Render(v Vars) string {
	if t == nil {
		return ""
	}
	if t.t == nil {
		return t.raw
	}
	var b strings.Builder
	if err := t.t.Execute(&b, v); err != nil {
		return "!" + err.Error()
	}
	return b.String()
}
