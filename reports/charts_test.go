package reports

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/histogram"
)

func TestFormatters(t *testing.T) {
	durs := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"}, {850, "850 ns"}, {4240 * time.Microsecond, "4.24 ms"}, {38400 * time.Microsecond, "38.4 ms"},
		{129 * time.Millisecond, "129 ms"}, {15 * time.Second, "15.0 s"}, {90 * time.Second, "1m30s"},
	}
	for _, tc := range durs {
		if got := fmtDur(tc.d); got != tc.want {
			t.Errorf("fmtDur(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	nums := []struct {
		v    float64
		want string
	}{{0, "0"}, {2.5, "2.5"}, {0.25, "0.25"}, {12.5, "12.5"}, {150, "150"}, {12000, "12k"}, {2500000, "2.5M"}}
	for _, tc := range nums {
		if got := trimFloat(tc.v); got != tc.want {
			t.Errorf("trimFloat(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if got := fmtInt(-1234567); got != "-1,234,567" {
		t.Errorf("fmtInt = %q", got)
	}
	for _, tc := range []struct {
		max  float64
		want float64
	}{{400, 100}, {600, 200}, {20, 5}, {1, 0.25}, {0, 1}} {
		if got := niceStep(tc.max, 4); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.max, got, tc.want)
		}
	}
}

// TestLongRunIsFolded: a two-hour run draws at most maxPoints points per
// series and a handful of time ticks, keeping the page small.
func TestLongRunIsFolded(t *testing.T) {
	const n = 7200
	s := &Series{Start: synthStart, StepSeconds: 1, Len: n, Columns: map[string][]int64{}, Latency: map[string][]*histogram.Histogram{}}
	for _, c := range columnOrder {
		s.Columns[c] = make([]int64, n)
	}
	hs := make([]*histogram.Histogram, n)
	for i := range n {
		s.Columns[ColConnected][i] = int64(1000 + 500*math.Sin(float64(i)/600))
		s.Columns[ColSent][i] = int64(i % 300)
		s.Columns[ColReceived][i] = int64(i % 300)
		hs[i] = histogram.New()
		hs[i].Record(time.Duration(1+i%50) * time.Millisecond)
	}
	s.Latency["e2e_latency"] = hs
	s.derive()
	res := &Results{SchemaVersion: 1, Kind: KindSimulate, Run: Run{Name: "soak", Start: synthStart, End: synthStart.Add(n * time.Second)},
		Counters: map[string]int64{"connects": 1}, Series: s,
		Faults: []FaultWindow{{Start: synthStart.Add(time.Hour), End: synthStart.Add(70 * time.Minute), Target: "all", Kind: "latency"}}}
	page := renderHTML(t, res)
	els, style := parseXHTML(t, page)
	checkSelfContained(t, els, style)
	for _, e := range els {
		if e.attrs["class"] == "series" {
			if n, _ := strconv.Atoi(e.attrs["data-points"]); n == 0 || n > maxPoints {
				t.Errorf("chart %s draws %d points", e.chart, n)
			}
		}
	}
	if ticks := strings.Count(string(page), `class="xt"`); ticks > 4*10 {
		t.Errorf("%d time ticks over 4 charts", ticks)
	}
	if len(page) > 1<<20 {
		t.Errorf("page is %d bytes", len(page))
	}
}
