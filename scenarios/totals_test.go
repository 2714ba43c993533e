package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/internal/syncbuf"
	"github.com/mqttfleet/mqttfleet/reports"
)

// A subscriber whose link is blackholed loses QoS 1 messages (clean
// session: nothing is queued for it). The run's lost total must be the
// same non-zero figure in results.json, the HTML, Markdown and JUnit
// reports, and the `delivery` assertion — one accounting, not several.
const lossyScenario = `
name: lossy-subscriber
seed: 7
drain: 1s
groups:
  - name: pubs
    count: 2
    client_id: "pub-{{.Index}}"
    publish: {interval: 100ms, topic: "acc/{{.Index}}", qos: 1}
  - name: healthy
    count: 1
    client_id: "ok-{{.Index}}"
    subscriptions: [{filter: "acc/#", qos: 1}]
  - name: cut
    count: 1
    proxy: true
    keepalive: 1s
    client_id: "cut-{{.Index}}"
    subscriptions: [{filter: "acc/#", qos: 1}]
steps:
  - name: online
    do: wait
    connected: cut
    timeout: 20s
  - name: subscribers up
    do: wait
    connected: healthy
    timeout: 20s
  - name: blackhole
    delay: 500ms
    do: blackhole
    group: cut
    for: 2s
  - name: end
    delay: 3s
    do: mark
assertions:
  - name: every message reaches every subscriber
    expect: delivery
    from: {group: pubs}
    to: {kind: publish_received}
`

func TestLostTotalsAgreeEverywhere(t *testing.T) {
	prog := &syncbuf.Buffer{}
	res := runText(t, lossyScenario, Options{Progress: prog, ProgressEvery: 250 * time.Millisecond})
	// The live progress line reads the same counters as the results file:
	// what it last said was sent is non-zero and never more than the total.
	lines := regexp.MustCompile(`sent (\d+)  recv (\d+)`).FindAllStringSubmatch(prog.String(), -1)
	if len(lines) == 0 {
		t.Fatalf("no progress line with sent/recv in %q", prog.String())
	}
	last := lines[len(lines)-1]
	if sent, _ := strconv.ParseInt(last[1], 10, 64); sent <= 0 || sent > res.Counters["publishes_sent"] {
		t.Errorf("progress said sent %d; the results say %d", sent, res.Counters["publishes_sent"])
	}
	lost := res.Counters["lost"]
	if lost <= 0 {
		t.Fatalf("counters lost = %d, want > 0 after a 2 s blackhole on a QoS 1 subscriber (counters %v)", lost, res.Counters)
	}
	// Every counter a run writes can be asserted on: validation knows each
	// (an unknown name is refused at load, so a missing one would make a
	// real counter unusable in expect: counter).
	for name := range res.Counters {
		clients := "[{name: w}]"
		if _, who, ok := strings.Cut(name, ":"); ok {
			// Link fault counters per group or client name one behind the proxy.
			clients = "[{name: w}, {name: " + who + ", proxy: true}]"
		}
		text := "name: c\nclients: " + clients + "\nsteps: [{do: mark}]\nassertions:\n  - {name: c, expect: counter, counter: \"" + name + "\", min: 0}\n"
		if _, err := Parse([]byte(text), nil); err != nil {
			t.Errorf("counter %q is in the results but expect: counter refuses it: %v", name, err)
		}
	}
	var delivery *reports.Assertion
	for i := range res.Assertions {
		if res.Assertions[i].Name == "every message reaches every subscriber" {
			delivery = &res.Assertions[i]
		}
	}
	if delivery == nil {
		t.Fatalf("no delivery assertion in %+v", res.Assertions)
	}
	m := regexp.MustCompile(`(\d+) lost`).FindStringSubmatch(delivery.Message)
	if m == nil {
		t.Fatalf("delivery message %q has no lost figure", delivery.Message)
	}
	if n, _ := strconv.ParseInt(m[1], 10, 64); n != lost || delivery.Verdict != reports.Fail {
		t.Fatalf("delivery says %s lost (%s), counters say %d", m[1], delivery.Verdict, lost)
	}
	var charted int64
	for _, n := range res.Series.Columns[reports.ColLost] {
		charted += n
	}
	if charted != lost {
		t.Fatalf("the lost series sums to %d, the counter says %d", charted, lost)
	}
	if g := res.Groups["cut"]; g == nil || g.Counters["lost"] != lost {
		t.Fatalf("group cut totals %+v, want all %d lost there", g, lost)
	}
	if g := res.Groups["healthy"]; g == nil || g.Counters["lost"] != 0 || g.Counters["expected"] == 0 {
		t.Fatalf("group healthy totals %+v, want 0 lost of a non-zero expected", g)
	}

	// The results file, read back, and every renderer show the same figure.
	path := filepath.Join(t.TempDir(), "results.json")
	if err := res.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := reports.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Counters["lost"] != lost {
		t.Fatalf("results.json lost = %d, want %d", back.Counters["lost"], lost)
	}
	want := fmt.Sprint(lost)
	render := func(f func(w *bytes.Buffer) error) string {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	html := render(func(w *bytes.Buffer) error { return reports.HTML(w, back) })
	if !strings.Contains(html, `<div class="l">lost</div><div class="v">`+want+`</div>`) {
		t.Errorf("report.html does not show lost %s in its lost tile", want)
	}
	md := render(func(w *bytes.Buffer) error { return reports.Markdown(w, back) })
	if !strings.Contains(md, "| lost | "+want+" |") {
		t.Errorf("report.md does not show | lost | %s |:\n%s", want, md)
	}
	junit := render(func(w *bytes.Buffer) error { return reports.JUnit(w, back) })
	if !strings.Contains(junit, `<property name="totals.lost" value="`+want+`">`) {
		t.Errorf("junit.xml does not carry totals.lost %s", want)
	}

	// The report marks the timeline's steps and drills into the devices the
	// failed assertion names.
	var cut *reports.StepWindow
	for i := range back.Steps {
		if back.Steps[i].Name == "blackhole" {
			cut = &back.Steps[i]
		}
	}
	if cut == nil || cut.End.Sub(cut.Start) != 2*time.Second {
		t.Fatalf("steps %+v: want the blackhole step as a 2 s window", back.Steps)
	}
	if len(back.Timelines) == 0 || !slices.Contains(back.Timelines[0].Assertions, delivery.Name) || len(back.Timelines[0].Events) == 0 {
		t.Fatalf("timelines %+v: want the devices named by the failed delivery check, with their events", back.Timelines)
	}
	if !strings.Contains(html, `data-step="blackhole"`) || !strings.Contains(html, `href="#device-`) {
		t.Error("report.html lacks the blackhole step marker or the drill-down links")
	}
	showInChromium(t, html, "blackhole")
}

// showInChromium loads page in headless Chromium, as a person would see
// it: the DOM Chromium builds must hold the step's marker on every time
// chart, and a screenshot must come out. Skips where Chromium is missing.
func showInChromium(t *testing.T, page, step string) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Log("chromium not installed (Debian package chromium): the page is checked as text only")
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chrome := func(args ...string) []byte {
		args = append([]string{"--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
			"--user-data-dir=" + filepath.Join(dir, "profile")}, args...)
		out, err := exec.CommandContext(ctx, bin, append(args, "file://"+path)...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return out
	}
	dom := string(chrome("--dump-dom"))
	charts := strings.Count(dom, `<svg class="chart" data-chart="`) - strings.Count(dom, `data-chart="disconnects"`) - strings.Count(dom, `data-chart="groups"`)
	if n := strings.Count(dom, `data-step="`+step+`"`); n == 0 || n != charts {
		t.Errorf("Chromium's DOM has the %s marker on %d of %d time charts", step, n, charts)
	}
	shot := filepath.Join(dir, "report.png")
	chrome("--screenshot="+shot, "--window-size=1280,2400")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Errorf("no screenshot of the report: %v", err)
	}
}
