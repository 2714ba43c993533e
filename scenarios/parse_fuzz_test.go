package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no scenario text makes the loader or its validation panic, and
// every refusal is an *Error or Errors (so the CLI can print file:line) or,
// for text that is not YAML at all, an error that says so. Seeds are the
// library's scenarios, the demo and the base of the bad-scenario cases.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("library/*.yaml")
	paths = append(paths, "demo.yaml")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(base)
	f.Add("groups: !x {a: 1}") // go-yaml v1.19.2 panicked on a tagged mapping where a list goes
	f.Fuzz(func(t *testing.T, text string) {
		sc, err := Parse([]byte(text), nil)
		if err == nil {
			if sc == nil {
				t.Fatal("no scenario and no error")
			}
			return
		}
		var one *Error
		var many Errors
		if !errors.As(err, &one) && !errors.As(err, &many) {
			t.Fatalf("refusal is %T, not a placed scenario error: %v", err, err)
		}
		if strings.TrimSpace(err.Error()) == "" {
			t.Fatal("empty error message")
		}
	})
}
