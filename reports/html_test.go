package reports

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// element is one parsed element of the report, with the chart it is in.
type element struct {
	name  string
	attrs map[string]string
	chart string // data-chart of the enclosing <svg class="chart">, if any
}

// parseXHTML parses the page as strict XML (the report is written to be
// well-formed) and returns its elements and the text of its <style>s.
func parseXHTML(t *testing.T, page []byte) (els []element, style string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	var stack []string
	chart := ""
	chartDepth := -1
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("report is not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			if e.name == "svg" && e.attrs["class"] == "chart" {
				chart, chartDepth = e.attrs["data-chart"], len(stack)
			}
			e.chart = chart
			els = append(els, e)
			stack = append(stack, e.name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if len(stack) == chartDepth {
				chart, chartDepth = "", -1
			}
		case xml.CharData:
			if len(stack) > 0 && stack[len(stack)-1] == "style" {
				style += string(tok)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed elements: %v", stack)
	}
	return els, style
}

// external matches a URL that would leave the file: any scheme but data:,
// or a scheme-relative //host.
var external = regexp.MustCompile(`(?i)^\s*([a-z][a-z0-9+.-]*:|//)`)

func checkSelfContained(t *testing.T, els []element, style string) {
	t.Helper()
	for _, p := range outsideRefs(els, style) {
		t.Error(p)
	}
}

// outsideRefs lists what in a page would load something from outside it.
func outsideRefs(els []element, style string) []string {
	var out []string
	for _, e := range els {
		switch e.name {
		case "script", "iframe", "object", "embed", "base":
			out = append(out, fmt.Sprintf("report has a <%s> element", e.name))
		}
		for _, a := range []string{"src", "href", "action", "srcset", "poster", "data", "formaction", "background"} {
			v, ok := e.attrs[a]
			if ok && external.MatchString(v) && !strings.HasPrefix(strings.TrimSpace(v), "data:") {
				out = append(out, fmt.Sprintf("<%s %s=%q> points outside the file", e.name, a, v))
			}
		}
		if s := e.attrs["style"]; strings.Contains(s, "url(") {
			out = append(out, fmt.Sprintf("<%s style=%q> loads a resource", e.name, s))
		}
	}
	if strings.Contains(style, "url(") || strings.Contains(style, "@import") || strings.Contains(style, "@font-face") {
		out = append(out, "stylesheet loads a resource")
	}
	return out
}

// TestCheckerCatches makes sure the self-containment check is not vacuous.
func TestCheckerCatches(t *testing.T) {
	cases := []struct{ name, page string }{
		{"script", `<html><script>1</script></html>`},
		{"https img", `<html><img src="https://example.com/x.png"/></html>`},
		{"scheme-relative link", `<html><link rel="stylesheet" href="//cdn.example/x.css"/></html>`},
		{"css url", `<html><style>body{background:url(x.png)}</style></html>`},
		{"font", `<html><style>@font-face{font-family:x}</style></html>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			els, style := parseXHTML(t, []byte(tc.page))
			if len(outsideRefs(els, style)) == 0 {
				t.Fatal("not caught")
			}
		})
	}
	els, _ := parseXHTML(t, []byte(`<html><svg class="chart" data-chart="x"><path class="series" data-points="0" d=""/></svg></html>`))
	if n := chartData(els)["x"]; n != 0 {
		t.Fatalf("empty chart counted %d points", n)
	}
}

// chartData returns, per chart, how many data points its series carry.
func chartData(els []element) map[string]int {
	out := map[string]int{}
	for _, e := range els {
		if e.chart == "" {
			continue
		}
		if _, ok := out[e.chart]; !ok {
			out[e.chart] = 0
		}
		cls := e.attrs["class"]
		switch {
		case cls == "series" || cls == "bars":
			n, _ := strconv.Atoi(e.attrs["data-points"])
			if cls == "series" && !strings.HasPrefix(e.attrs["d"], "M") {
				n = 0
			}
			out[e.chart] += n
		case cls == "bar":
			if h, _ := strconv.ParseFloat(e.attrs["height"], 64); h > 0 {
				out[e.chart]++
			}
		}
	}
	return out
}

func renderHTML(t *testing.T, r *Results) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := HTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestHTMLWellFormedSelfContained(t *testing.T) {
	sample := sampleResults(t)
	merged := mergedSample(t)
	conf := &Results{SchemaVersion: 1, Kind: KindConformance, Run: Run{Name: "conformance"}, Conformance: sampleMatrix(t)}
	cases := []struct {
		name   string
		res    *Results
		charts []string
	}{
		{"scenario", sample, []string{"connected", "messages", "latency", "takeovers", "disconnects"}},
		{"merged shards", merged, []string{"connected", "messages", "latency", "takeovers", "disconnects"}},
		{"conformance only", conf, nil},
		{"empty", &Results{SchemaVersion: 1}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page := renderHTML(t, tc.res)
			els, style := parseXHTML(t, page)
			checkSelfContained(t, els, style)
			data := chartData(els)
			if len(data) != len(tc.charts) {
				t.Errorf("charts %v, want %v", data, tc.charts)
			}
			for _, c := range tc.charts {
				if data[c] == 0 {
					t.Errorf("chart %q has no data (%v)", c, data)
				}
			}
			if bytes.Contains(page, []byte("<script>alert")) {
				t.Error("assertion message was not escaped")
			}
		})
	}
}

func TestHTMLContent(t *testing.T) {
	page := string(renderHTML(t, sampleResults(t)))
	for _, want := range []string{
		`<div class="verdict fail">FAIL</div>`,
		`class="fault span"`,         // fault windows shaded
		`<details><summary>evidence`, // expandable evidence
		`id="mf-fail"`,               // matrix filters
		`MQTT-3.1.2-24`,
		// The CSS filters need the radios and the table card to be siblings.
		`<section class="matrix"><input type="radio"`,
		`</label></div><div class="card tablecard"><table>`,
		`#mf-fail:checked~.tablecard tbody tr:not(.has-fail){display:none}`,
		`&lt;script&gt;alert(1)&lt;/script&gt;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Every time chart shades the fault window.
	if n := strings.Count(page, `<g class="fault span">`); n != 4 {
		t.Errorf("%d shaded fault windows, want one on each of the 4 time charts", n)
	}
}

func mergedSample(t *testing.T) *Results {
	t.Helper()
	evs := synthStream(11, synthDevices, synthSeconds)
	var parts []*Results
	groups := make([][]int, 4)
	for i, e := range evs {
		s := shardOf(e, synthDevices, 4)
		groups[s] = append(groups[s], i)
	}
	for s, idx := range groups {
		c := NewCollector(KindSimulate, Run{Name: "fleet-soak", Target: "reference", Shard: Shard{Index: s, Count: 4}, Devices: synthDevices / 4})
		c.TrackSequences(true)
		for _, i := range idx {
			c.Emit(evs[i])
		}
		parts = append(parts, c.Results())
	}
	m, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// chromium returns the path of a Chromium binary, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestHTMLInChromium loads the synthetic report in headless Chromium.
func TestHTMLInChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("chromium not installed (Debian package chromium)")
	}
	loadInChromium(t, bin, renderHTML(t, sampleResults(t)), 5)
}

// loadInChromium opens page in headless Chromium and fails on any console
// message (a page error shows as an INFO:CONSOLE log line) or when the DOM
// Chromium built lacks the charts.
func loadInChromium(t *testing.T, bin string, page []byte, charts int) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--disable-gpu", "--no-sandbox",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
		"--dump-dom", "file://"+path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, ":CONSOLE") || strings.Contains(l, "Uncaught") {
			t.Errorf("console output: %s", l)
		}
	}
	if n := strings.Count(stdout.String(), `class="chart"`); n != charts {
		t.Errorf("Chromium's DOM has %d charts, want %d", n, charts)
	}
}
