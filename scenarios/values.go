package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as in Go: "1.5s", "200ms", "2m".
// A bare 0 is allowed; any other bare number is refused, because "5"
// seconds or milliseconds is exactly the ambiguity that breaks a test.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads "1.5s".
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return fmt.Errorf("%q is not a duration: write a number with a unit, such as 1.5s or 200ms", x)
		}
		*d = Duration(p)
		return nil
	case uint64, int64, int:
		if fmt.Sprint(x) == "0" {
			*d = 0
			return nil
		}
	}
	return fmt.Errorf("%q is not a duration: write a number with a unit, such as 1.5s or 200ms", fmt.Sprint(v))
}

// List is one string or a list of strings.
type List []string

// UnmarshalYAML reads "a" or [a, b].
func (l *List) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		*l = List{x}
		return nil
	case []any:
		out := make(List, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("want a list of names, got %v", e)
			}
			out = append(out, s)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("want a name or a list of names, got %v", v)
}

// Has reports whether l is empty or holds s.
func (l List) Has(s string) bool {
	if len(l) == 0 {
		return true
	}
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Value is a bound whose type depends on the assertion: a number for count
// and rate, a duration for latency. It keeps the text until validation.
type Value struct {
	Text string
	num  float64
	dur  time.Duration
}

// UnmarshalYAML keeps the scalar's text.
func (v *Value) UnmarshalYAML(unmarshal func(any) error) error {
	var x any
	if err := unmarshal(&x); err != nil {
		return err
	}
	switch x.(type) {
	case map[string]any, []any, nil:
		return fmt.Errorf("want a number or a duration, got %v", x)
	}
	v.Text = fmt.Sprint(x)
	return nil
}

// parseNumber reads the text as a number.
func (v *Value) parseNumber() error {
	f, err := strconv.ParseFloat(strings.TrimSpace(v.Text), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", v.Text)
	}
	v.num = f
	return nil
}

// parseDuration reads the text as a duration.
func (v *Value) parseDuration() error {
	d, err := time.ParseDuration(strings.TrimSpace(v.Text))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write a number with a unit, such as 200ms", v.Text)
	}
	v.dur = d
	return nil
}
