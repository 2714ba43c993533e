package reports

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Types a JUnit consumer reads, written independently of junit.go's so the
// test checks the document, not the writer's structs.
type consumerSuites struct {
	XMLName  xml.Name        `xml:"testsuites"`
	Tests    *int            `xml:"tests,attr"`
	Failures *int            `xml:"failures,attr"`
	Suites   []consumerSuite `xml:"testsuite"`
}

type consumerSuite struct {
	Name      *string        `xml:"name,attr"`
	Tests     *int           `xml:"tests,attr"`
	Failures  int            `xml:"failures,attr"`
	Errors    int            `xml:"errors,attr"`
	Skipped   int            `xml:"skipped,attr"`
	Time      string         `xml:"time,attr"`
	Timestamp string         `xml:"timestamp,attr"`
	Cases     []consumerCase `xml:"testcase"`
}

type consumerCase struct {
	Name      *string `xml:"name,attr"`
	Classname *string `xml:"classname,attr"`
	Time      string  `xml:"time,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Body    string `xml:",chardata"`
	} `xml:"failure"`
	Error *struct {
		Message string `xml:"message,attr"`
	} `xml:"error"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

var isoNoZone = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$`)

func TestJUnitShape(t *testing.T) {
	res := sampleResults(t)
	var buf bytes.Buffer
	if err := JUnit(&buf, res); err != nil {
		t.Fatal(err)
	}
	var doc consumerSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit output does not parse: %v", err)
	}
	m := res.Conformance
	wantSuites := 1 + len(m.Targets)
	if len(doc.Suites) != wantSuites {
		t.Fatalf("%d suites, want %d (assertions + one per target)", len(doc.Suites), wantSuites)
	}
	total, failures := 0, 0
	for _, s := range doc.Suites {
		if s.Name == nil || *s.Name == "" || s.Tests == nil {
			t.Fatalf("suite without name or tests: %+v", s)
		}
		if *s.Tests != len(s.Cases) {
			t.Errorf("suite %s says tests=%d, has %d cases", *s.Name, *s.Tests, len(s.Cases))
		}
		if s.Timestamp != "" && !isoNoZone.MatchString(s.Timestamp) {
			t.Errorf("suite %s timestamp %q is not ISO 8601 without zone", *s.Name, s.Timestamp)
		}
		if v, err := strconv.ParseFloat(s.Time, 64); err != nil || v < 0 {
			t.Errorf("suite %s time %q", *s.Name, s.Time)
		}
		f, e, sk := 0, 0, 0
		for _, c := range s.Cases {
			if c.Name == nil || *c.Name == "" || c.Classname == nil || *c.Classname == "" {
				t.Fatalf("case without name or classname in %s", *s.Name)
			}
			n := 0
			if c.Failure != nil {
				f++
				n++
			}
			if c.Error != nil {
				e++
				n++
			}
			if c.Skipped != nil {
				sk++
				n++
			}
			if n > 1 {
				t.Errorf("case %s has more than one outcome", *c.Name)
			}
		}
		if f != s.Failures || e != s.Errors || sk != s.Skipped {
			t.Errorf("suite %s counts f/e/s %d/%d/%d, cases have %d/%d/%d", *s.Name, s.Failures, s.Errors, s.Skipped, f, e, sk)
		}
		total += len(s.Cases)
		failures += f
	}
	if want := len(res.Assertions) + len(m.Targets)*len(m.Statements); total != want {
		t.Errorf("%d cases, want %d (one per assertion and per cell)", total, want)
	}
	if doc.Tests == nil || *doc.Tests != total || doc.Failures == nil || *doc.Failures != failures {
		t.Errorf("testsuites totals do not match the suites")
	}
	// The failing assertion carries its evidence.
	a := doc.Suites[0].Cases
	found := false
	for _, c := range a {
		if c.Failure != nil && bytes.Contains([]byte(c.Failure.Body), []byte("evidence (5 events)")) {
			found = true
		}
	}
	if !found {
		t.Error("the failing assertion's failure element lacks its evidence")
	}
}

// TestJUnitSchema validates the output against testdata/junit.xsd with
// xmllint (Debian package libxml2-utils).
func TestJUnitSchema(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not installed (Debian package libxml2-utils)")
	}
	cases := []struct {
		name string
		res  *Results
	}{
		{"scenario with conformance", sampleResults(t)},
		{"merged shards", mergedSample(t)},
		{"empty", &Results{SchemaVersion: 1}},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strconv.Itoa(i)+".xml")
			var buf bytes.Buffer
			if err := JUnit(&buf, tc.res); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, xmllint, "--noout", "--schema", "testdata/junit.xsd", path).CombinedOutput()
			if err != nil {
				t.Fatalf("xmllint rejects the JUnit output: %v\n%s", err, out)
			}
		})
	}
}
