package reports

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/histogram"
)

// TestChartMarkers: every time chart marks the scenario's steps and
// faults, as a span for what lasted and a tick for an instant — an instant
// fault such as a reset used to vanish, since its window has no width.
func TestChartMarkers(t *testing.T) {
	res := sampleResults(t)
	t0 := res.Series.Start
	res.Faults = []FaultWindow{
		{Start: t0.Add(10 * time.Second), End: t0.Add(20 * time.Second), Target: "sensors", Kind: "half_open"},
		{Start: t0.Add(30 * time.Second), End: t0.Add(30 * time.Second), Target: "sensors", Kind: "reset"},
	}
	res.Steps = []StepWindow{
		{Name: "cut", Start: t0.Add(10 * time.Second), End: t0.Add(20 * time.Second)},
		{Name: "wave", Start: t0.Add(30 * time.Second)},
	}
	page := string(renderHTML(t, res))
	charts := strings.Count(page, `<svg class="chart" data-chart=`) - strings.Count(page, `data-chart="disconnects"`)
	if charts < 4 {
		t.Fatalf("%d time charts, want at least 4", charts)
	}
	for _, want := range []string{`<g class="fault span">`, `<g class="fault tick">`, `<g class="step span" data-step="cut">`, `<g class="step tick" data-step="wave">`} {
		if n := strings.Count(page, want); n != 4 {
			t.Errorf("%q on %d charts, want all 4 time charts", want, n)
		}
	}
	if !strings.Contains(page, "reset on sensors") {
		t.Error("the instant fault's tooltip does not say what it was")
	}
}

// TestEmptyChartSaysNoData: a run that measured no latency still shows the
// latency chart, saying "no data" rather than an empty frame.
func TestEmptyChartSaysNoData(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var evs []events.Event
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Second)
		evs = append(evs, events.Event{Time: at, Kind: events.PublishSent, Source: events.SourceClient, ClientID: "d1"})
	}
	res := collect(evs, Run{Name: "silent", Shard: Shard{Index: 0, Count: 1}})
	page := string(renderHTML(t, res))
	i := strings.Index(page, `data-chart="latency"`)
	if i < 0 {
		t.Fatal("no latency chart for a run without latency samples")
	}
	end := strings.Index(page[i:], "</svg>")
	if !strings.Contains(page[i:i+end], `class="none nodata"`) || !strings.Contains(page[i:i+end], ">no data<") {
		t.Error(`the empty latency chart does not say "no data"`)
	}
	j := strings.Index(page, `data-chart="messages"`)
	if strings.Contains(page[j:j+strings.Index(page[j:], "</svg>")], "no data") {
		t.Error(`the messages chart, which has data, says "no data"`)
	}
}

func TestGroupsAndDrillDown(t *testing.T) {
	res := sampleResults(t)
	h := histogram.New()
	h.Record(3 * time.Millisecond)
	res.Groups = map[string]*Group{
		"sensors": {Devices: 40, Counters: map[string]int64{"expected": 400, "lost": 25, "publishes_sent": 400}, E2E: h},
		"gateway": {Devices: 2, Counters: map[string]int64{"expected": 20}},
	}
	failed := res.Assertions[1].Name // "no QoS 1 message lost across the fault"
	res.Timelines = []Timeline{{Device: "dev-7", Assertions: []string{failed},
		Events: []events.Event{{Time: res.Run.Start.Add(time.Second), Kind: events.Disconnect, ClientID: "dev-7", Cause: events.CauseKeepalive}}}}
	page := string(renderHTML(t, res))
	for _, want := range []string{
		`<tr class="bad" data-group="sensors"><td><b>sensors</b></td><td class="num">40</td>`,
		`<tr data-group="gateway">`,
		`data-chart="groups"`,
		`<a href="#device-dev-7">dev-7</a>`,
		`<div class="timeline" id="device-dev-7">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	els, style := parseXHTML(t, []byte(page))
	checkSelfContained(t, els, style)
}

// TestMarkerLabelsDoNotOverlap: steps that start together (a scenario's
// burst of instant steps) get their labels in separate rows, and once the
// rows are full the rest keep their marker and tooltip but print no text,
// so no two labels are drawn over each other.
func TestMarkerLabelsDoNotOverlap(t *testing.T) {
	res := sampleResults(t)
	t0 := res.Series.Start
	res.Faults = nil
	for _, n := range []string{"socket-close", "clean-disconnect", "keepalive-silence", "mark#3", "violation"} {
		res.Steps = append(res.Steps, StepWindow{Name: n, Start: t0.Add(2 * time.Second)})
	}
	res.Steps = append(res.Steps, StepWindow{Name: "later", Start: t0.Add(40 * time.Second)})
	page := string(renderHTML(t, res))
	i := strings.Index(page, `<svg class="chart"`)
	chart := page[i : i+strings.Index(page[i:], `</svg>`)]
	labels := map[string]bool{}
	ys := map[string]bool{}
	for _, m := range regexp.MustCompile(`<text x="([0-9.]+)" y="([0-9.]+)">([^<]+)</text></g>`).FindAllStringSubmatch(chart, -1) {
		labels[m[3]] = true
		if m[3] != "later" {
			if ys[m[2]] {
				t.Errorf("two labels of steps at the same time share row y=%s", m[2])
			}
			ys[m[2]] = true
		}
	}
	if len(ys) != labelRowsMax || !labels["later"] {
		t.Errorf("labels drawn: %v; want %d of the 5 simultaneous steps (one per row) and the later one", labels, labelRowsMax)
	}
	for _, n := range []string{"mark#3", "violation"} {
		if !strings.Contains(chart, `data-step="`+n+`"`) {
			t.Errorf("step %s lost its marker", n)
		}
	}
}
