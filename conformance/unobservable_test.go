package conformance

import (
	"os"
	"strings"
	"testing"
)

// The markers around the generated table in docs/conformance.md.
const (
	unobservableStart = "<!-- unobservable-v5: generated from conformance/unobservable.go -->\n"
	unobservableEnd   = "<!-- end unobservable-v5 -->"
)

// TestUnobservable: every entry of UnobservableV5 is a server-side 5.0
// statement, listed once, and cited by no spec; docs/conformance.md shows
// the table as rendered (MQTTFLEET_UPDATE_DOCS=1 rewrites it there).
func TestUnobservable(t *testing.T) {
	idx := statementIndex()
	cited := map[string]bool{}
	for _, d := range registry {
		for _, id := range d.Statements {
			cited[id] = true
		}
	}
	seen := map[string]bool{}
	for _, u := range UnobservableV5 {
		st, ok := idx[u.ID]
		switch {
		case !ok:
			t.Errorf("%s: no such statement", u.ID)
		case st.Protocol != Protocol5 || !st.ServerSide():
			t.Errorf("%s: not a server-side 5.0 statement (%s, role %s)", u.ID, st.Protocol, st.Role)
		case cited[u.ID]:
			t.Errorf("%s: listed as unobservable but cited by a spec", u.ID)
		case seen[u.ID]:
			t.Errorf("%s: listed twice", u.ID)
		case strings.TrimSpace(u.Reason) == "":
			t.Errorf("%s: no reason given", u.ID)
		}
		seen[u.ID] = true
	}

	const path = "../docs/conformance.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, unobservableStart)
	end := strings.Index(doc, unobservableEnd)
	if start < 0 || end < start {
		t.Fatalf("%s: no generated table between %q and %q", path, strings.TrimSpace(unobservableStart), unobservableEnd)
	}
	want := doc[:start+len(unobservableStart)] + UnobservableMarkdown() + doc[end:]
	if want == doc {
		return
	}
	if os.Getenv("MQTTFLEET_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the table of unobservable 5.0 statements is out of date; run MQTTFLEET_UPDATE_DOCS=1 go test -run TestUnobservable ./conformance/", path)
}
