package reports

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// Chart colours, one meaning each across the page.
const (
	colBlue   = "#2563eb"
	colGreen  = "#16a34a"
	colRed    = "#dc2626"
	colPurple = "#7c3aed"
	colOrange = "#ea580c"
	colTeal   = "#0d9488"
	colGrey   = "#98a2b3"
)

// HTML writes a self-contained report page for r: inline CSS and SVG only,
// no script, font or URL to fetch, so it can be attached to a bug and
// opened anywhere. The markup is also well-formed XML.
func HTML(w io.Writer, r *Results) error {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>` + "\n")
	fmt.Fprintf(&b, `<html lang="en"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/>`+
		`<link rel="icon" href="data:,"/><title>%s — mqttfleet %s</title><style>%s`, esc(title(r)), esc(string(r.Verdict())), css)
	for _, s := range CellStatuses {
		fmt.Fprintf(&b, filterRule, s)
	}
	fmt.Fprintf(&b, filterRule, "all")
	b.WriteString(`</style></head><body><main>`)
	header(&b, r)
	kpis(&b, r)
	charts(&b, r)
	latencyTable(&b, r)
	reasonTable(&b, r)
	assertions(&b, r)
	groupsSection(&b, r)
	timelines(&b, r)
	matrix(&b, r)
	eventsSection(&b, r)
	fmt.Fprintf(&b, `<footer>mqttfleet %s · results schema v%d · %s</footer>`, esc(r.Run.Version), r.SchemaVersion, esc(string(r.Kind)))
	b.WriteString("</main></body></html>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

func title(r *Results) string {
	if r.Run.Name != "" {
		return r.Run.Name
	}
	return string(r.Kind) + " run"
}

// fact is one labelled line of run metadata.
type fact struct{ label, value string }

// runFacts lists the run's metadata shared by the HTML header and the
// Markdown summary, in display order; empty values are left to the caller's
// filter. withStart adds the start time after the target.
func runFacts(r *Results, withStart bool) []fact {
	target := r.Run.Target
	if r.Run.TargetVersion != "" {
		target += " " + r.Run.TargetVersion
	}
	fs := []fact{{"target", target}}
	if st := r.Run.Status; st != "" && st != StatusCompleted {
		// A run that did not complete says so first, with why.
		fs = append(fs, fact{"status", strings.TrimSpace(strings.ReplaceAll(string(st), "_", " ") + " " + r.Run.StatusReason)})
	}
	if len(r.Run.MissingShards) > 0 {
		fs = append(fs, fact{"missing shards", fmt.Sprint(r.Run.MissingShards)})
	}
	if withStart && !r.Run.Start.IsZero() {
		fs = append(fs, fact{"started", r.Run.Start.UTC().Format("2006-01-02 15:04:05 MST")})
	}
	if d := r.Run.Duration(); d > 0 {
		fs = append(fs, fact{"duration", d.Round(time.Second).String()})
	}
	if r.Run.Devices > 0 {
		fs = append(fs, fact{"devices", fmtInt(int64(r.Run.Devices))})
	}
	fs = append(fs, fact{"seed", fmt.Sprint(r.Run.Seed)})
	if len(r.Run.Shards) > 0 {
		fs = append(fs, fact{"merged shards", fmt.Sprint(len(r.Run.Shards))})
	} else if r.Run.Shard.Count > 1 {
		fs = append(fs, fact{"shard", r.Run.Shard.String()})
	}
	return append(fs, fact{"mqttfleet", r.Run.Version})
}

func header(b *strings.Builder, r *Results) {
	v := r.Verdict()
	fmt.Fprintf(b, `<header class="card"><div class="title"><h1>%s<span class="kind">%s</span></h1><div class="meta">`, esc(title(r)), esc(string(r.Kind)))
	var meta []string
	add := func(label, val string) {
		if val != "" {
			meta = append(meta, fmt.Sprintf(`%s <b>%s</b>`, esc(label), esc(val)))
		}
	}
	for _, f := range runFacts(r, true) {
		add(f.label, f.value)
	}
	add("host", r.Run.Host)
	b.WriteString(strings.Join(meta, " · "))
	if len(r.Run.Command) > 0 {
		fmt.Fprintf(b, `<br/><code>%s</code>`, esc(strings.Join(r.Run.Command, " ")))
	}
	fmt.Fprintf(b, `</div></div><div class="verdict %s">%s</div></header>`, v, strings.ToUpper(string(v)))
	fmt.Fprintf(b, `<p class="summary">%s</p>`, esc(summaryLine(r)))
}

// summaryLine says in one sentence what the verdict rests on.
func summaryLine(r *Results) string {
	var parts []string
	if n := len(r.Assertions); n > 0 {
		c := map[Verdict]int{}
		for _, a := range r.Assertions {
			c[a.Verdict]++
		}
		s := fmt.Sprintf("%d of %d assertions passed", c[Pass], n)
		for _, v := range []Verdict{Fail, Deviation, Error, Skipped} {
			if c[v] > 0 {
				label := string(v)
				if v == Deviation && c[v] > 1 {
					label += "s"
				}
				s += fmt.Sprintf(", %d %s", c[v], label)
			}
		}
		parts = append(parts, s)
	}
	if m := r.Conformance; m != nil {
		fails := 0
		for _, t := range m.Targets {
			fails += m.Coverage[t].Fail
		}
		parts = append(parts, fmt.Sprintf("conformance: %d statements × %d targets, %d failing cells", len(m.Statements), len(m.Targets), fails))
	}
	if len(r.Faults) > 0 {
		parts = append(parts, plural(len(r.Faults), "fault window")+" injected")
	}
	if len(parts) == 0 {
		return "No assertions were checked in this run."
	}
	return strings.Join(parts, " · ") + "."
}

func kpis(b *strings.Builder, r *Results) {
	c := r.Counters
	if len(c) == 0 {
		return
	}
	b.WriteString(`<section class="kpis">`)
	tile := func(label, val, sub string, bad bool) {
		cls := "card kpi"
		if bad {
			cls += " bad"
		}
		fmt.Fprintf(b, `<div class="%s"><div class="l">%s</div><div class="v">%s</div><div class="s">%s</div></div>`, cls, esc(label), esc(val), esc(sub))
	}
	if r.Series != nil {
		sub := ""
		if r.Run.Devices > 0 {
			sub = fmt.Sprintf("%s devices", fmtInt(int64(r.Run.Devices)))
		}
		tile("peak connected", fmtInt(peak(r.Series.Columns[ColConnected])), sub, false)
	}
	tile("connects", fmtInt(c["connects"]), fmt.Sprintf("%s refused", fmtInt(c["connect_failures"])), false)
	tile("messages sent", fmtInt(c["publishes_sent"]), fmt.Sprintf("%s received", fmtInt(c["publishes_received"])), false)
	tile("lost", fmtInt(c["lost"]), fmt.Sprintf("%s duplicates", fmtInt(c["duplicates"])), c["lost"] > 0)
	if d, u, o, n := c["netem_dropped"], c["netem_duplicated"], c["netem_reordered"], c["netem_nat_dropped"]; d+u+o+n > 0 {
		// What the fault proxy did to the packets, beside what the messages suffered.
		tile("link dropped", fmtInt(d), fmt.Sprintf("%s doubled · %s reordered · %s NAT drops", fmtInt(u), fmtInt(o), fmtInt(n)), false)
	}
	if h := r.Histograms["e2e_latency"]; h != nil {
		tile("e2e latency p50", fmtDur(h.Percentile(50)), "mean "+fmtDur(h.Mean()), false)
		tile("e2e latency p99", fmtDur(h.Percentile(99)), "max "+fmtDur(h.Max()), false)
	}
	if h := r.Histograms["connect_latency"]; h != nil {
		tile("connect p99", fmtDur(h.Percentile(99)), "p50 "+fmtDur(h.Percentile(50)), false)
	}
	top := ""
	if k, n := topCause(r.Disconnects); n > 0 {
		top = fmt.Sprintf("top: %s", k)
	}
	tile("disconnects", fmtInt(c["disconnects"]), top, false)
	// The fleet's figure; the broker's own count (broker_takeovers) is kept
	// apart and named only when it tells a different story, e.g. plain
	// clients that cannot tell a takeover from a dropped link.
	sub := plural(len(r.Faults), "fault window")
	if n, ok := c["broker_takeovers"]; ok && n != c["takeovers"] {
		sub = fmt.Sprintf("broker saw %s · %s", fmtInt(n), sub)
	}
	tile("takeovers", fmtInt(c["takeovers"]), sub, c["takeovers"] > 0)
	b.WriteString(`</section>`)
}

func topCause(m map[string]int64) (string, int64) {
	var k string
	var n int64
	for c, v := range m {
		if v > n || (v == n && c < k) {
			k, n = c, v
		}
	}
	return k, n
}

// column returns a Series column as floats, or nil when absent.
func column(s *Series, name string) []float64 {
	c, ok := s.Columns[name]
	if !ok {
		return nil
	}
	out := make([]float64, len(c))
	for i, v := range c {
		out[i] = float64(v)
	}
	return out
}

// percentileMS returns a per-second percentile series in milliseconds,
// NaN where the second had no sample.
func percentileMS(s *Series, name string, p99 bool) []float64 {
	ps, ok := s.Percentiles[name]
	if !ok {
		return nil
	}
	src := ps.P50
	if p99 {
		src = ps.P99
	}
	out := make([]float64, len(src))
	for i, v := range src {
		out[i] = math.NaN()
		if v > 0 {
			out[i] = float64(v) / 1e6
		}
	}
	return out
}

func charts(b *strings.Builder, r *Results) {
	s := r.Series
	if s == nil || s.Len == 0 {
		if len(r.Disconnects) == 0 {
			return
		}
	}
	b.WriteString(`<h2>Over time</h2><section class="charts">`)
	if s != nil && s.Len > 0 {
		base := timeChart{n: s.Len, start: s.Start, faults: r.Faults, steps: r.Steps}
		ch := base
		ch.id, ch.title, ch.unit = "connected", "Connected devices", "connections"
		ch.note = "Live fleet connections at the end of each second."
		ch.lines = []line{{name: "connected", color: colBlue, values: column(s, ColConnected), area: true, agg: aggLast}}
		ch.render(b)

		ch = base
		ch.id, ch.title, ch.unit = "messages", "Messages per second", "messages / s"
		ch.note = "PUBLISH packets written and read by the fleet; lost = expected deliveries never received, at the second they were sent."
		ch.lines = []line{
			{name: "sent", color: colBlue, values: column(s, ColSent), under: true},
			{name: "received", color: colGreen, values: column(s, ColReceived)},
			{name: "lost", color: colRed, values: column(s, ColLost), bars: true},
		}
		ch.render(b)

		ch = base
		ch.id, ch.title, ch.unit = "latency", "Latency percentiles", "milliseconds"
		ch.note = "Per-second percentiles; end to end is publish to delivery at the subscriber."
		ch.yFormat = trimFloat
		for _, l := range []struct {
			name, hist, color string
			p99, dashed       bool
		}{
			{"e2e p50", "e2e_latency", colPurple, false, false},
			{"e2e p99", "e2e_latency", colOrange, true, false},
			{"ack p99", "publish_ack_latency", colTeal, true, true},
			{"connect p99", "connect_latency", colGrey, true, true},
		} {
			if v := percentileMS(s, l.hist, l.p99); v != nil && hasValue(v) {
				ch.lines = append(ch.lines, line{name: l.name, color: l.color, values: v, dashed: l.dashed, agg: aggMax})
			}
		}
		if len(ch.lines) == 0 {
			// No latency was measured: the chart still shows, saying so.
			ch.lines = []line{{name: "e2e p50", color: colPurple, values: percentileMS(s, "e2e_latency", false), agg: aggMax}}
		}
		ch.render(b)

		ch = base
		ch.id, ch.title, ch.unit = "takeovers", "Takeovers over time", "per second"
		ch.note = "A takeover closes a connection because another one arrived with its client ID; refused = CONNACK with a non-zero code."
		ch.lines = []line{
			{name: "takeovers", color: colRed, values: column(s, ColTakeovers), bars: true},
			{name: "refused connects", color: colOrange, values: column(s, ColConnectFailures), bars: true},
		}
		ch.render(b)
		kafkaCharts(b, base, s)
	}
	disconnectChart(b, r)
	faultTable(b, r)
	b.WriteString(`</section>`)
}

// faultTable lists the fault windows next to the charts they shade.
func faultTable(b *strings.Builder, r *Results) {
	if len(r.Faults) == 0 {
		return
	}
	b.WriteString(`<figure class="card chart-card" id="faults"><figcaption><h3>Fault windows</h3><p class="note">Faults netem held on links; shaded on every chart above.</p></figcaption>`)
	b.WriteString(`<table><thead><tr><th>fault</th><th>on</th><th>direction</th><th>from</th><th>to</th><th class="num">lasted</th></tr></thead><tbody>`)
	// Times are from the same origin as the charts' x axis.
	origin := r.Run.Start
	if r.Series != nil && r.Series.Len > 0 {
		origin = r.Series.Start
	}
	for _, f := range r.Faults {
		end := clock(int(f.End.Sub(origin).Seconds()))
		if f.Open {
			end += " (still on)"
		}
		on := f.Target
		if f.Shard != "" {
			on += " · shard " + f.Shard
		}
		fmt.Fprintf(b, `<tr title="%s"><td><b>%s</b></td><td class="mono">%s</td><td>%s</td><td class="mono">%s</td><td class="mono">%s</td><td class="num">%s</td></tr>`,
			esc(f.Detail), esc(f.Kind), esc(on), esc(f.Direction), clock(int(f.Start.Sub(origin).Seconds())), esc(end), fmtDur(f.End.Sub(f.Start)))
	}
	b.WriteString(`</tbody></table></figure>`)
}

func hasValue(v []float64) bool {
	return slices.ContainsFunc(v, func(x float64) bool { return !math.IsNaN(x) })
}

func disconnectChart(b *strings.Builder, r *Results) {
	causes := map[string]bool{}
	for k := range r.Disconnects {
		causes[k] = true
	}
	for k := range r.BrokerDisconnects {
		causes[k] = true
	}
	if len(causes) == 0 {
		return
	}
	groups, colors := []string{"seen by devices"}, []string{colBlue}
	if len(r.BrokerDisconnects) > 0 {
		groups, colors = append(groups, "broker's view"), append(colors, colOrange)
	}
	var rows []barRow
	for k := range causes {
		row := barRow{label: k, values: []int64{r.Disconnects[k]}}
		if len(groups) > 1 {
			row.values = append(row.values, r.BrokerDisconnects[k])
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		si, sj := sum(rows[i].values), sum(rows[j].values)
		if si != sj {
			return si > sj
		}
		return rows[i].label < rows[j].label
	})
	barChart(b, "disconnects", "Disconnect causes", "Why connections ended, over the whole run.", "connections ended", groups, colors, rows)
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

func latencyTable(b *strings.Builder, r *Results) {
	if len(r.Histograms) == 0 {
		return
	}
	names := make([]string, 0, len(r.Histograms))
	for n := range r.Histograms {
		names = append(names, n)
	}
	sort.Strings(names)
	b.WriteString(`<h2>Latency</h2><div class="card tablecard"><table><thead><tr><th>measure</th><th class="num">samples</th><th class="num">min</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">p99.9</th><th class="num">max</th><th class="num">mean</th></tr></thead><tbody>`)
	for _, n := range names {
		h := r.Histograms[n]
		fmt.Fprintf(b, `<tr><td>%s</td><td class="num">%s</td>`, esc(strings.ReplaceAll(n, "_", " ")), fmtInt(int64(h.Count())))
		for _, d := range []time.Duration{h.Min(), h.Percentile(50), h.Percentile(90), h.Percentile(99), h.Percentile(99.9), h.Max(), h.Mean()} {
			fmt.Fprintf(b, `<td class="num">%s</td>`, fmtDur(d))
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</tbody></table></div>`)
}

func assertions(b *strings.Builder, r *Results) {
	if len(r.Assertions) == 0 {
		return
	}
	b.WriteString(`<h2>Assertions</h2><div class="card tablecard"><table><thead><tr><th>verdict</th><th>assertion</th><th>message and evidence</th><th class="num">took</th></tr></thead><tbody>`)
	order := map[Verdict]int{Fail: 0, Error: 1, Deviation: 2, Pass: 3, Skipped: 4}
	as := slices.Clone(r.Assertions)
	sort.SliceStable(as, func(i, j int) bool { return order[as[i].Verdict] < order[as[j].Verdict] })
	for _, a := range as {
		fmt.Fprintf(b, `<tr class="a-%s"><td><span class="pill %s">%s</span></td><td><b>%s</b><br/>`, esc(string(a.Verdict)), esc(string(a.Verdict)), esc(string(a.Verdict)), esc(a.Name))
		for _, s := range a.Statements {
			fmt.Fprintf(b, `<span class="stmt">%s</span>`, esc(s))
		}
		if a.Shard != "" {
			fmt.Fprintf(b, `<span class="stmt">shard %s</span>`, esc(a.Shard))
		}
		fmt.Fprintf(b, `</td><td><div class="msg">%s</div>`, esc(a.Message))
		if d := a.Deviation; d != nil {
			what := "known deviation"
			if d.Strict {
				what = "known deviation, counted as a failure (--strict)"
			}
			fmt.Fprintf(b, `<div class="msg">%s from <b>%s</b>: %s (<code>%s</code>)</div>`, what, esc(d.Statement), esc(d.Reason), esc(d.Doc))
		}
		drillLinks(b, r, a)
		if len(a.Evidence) > 0 {
			n := fmt.Sprint(len(a.Evidence))
			if a.EvidenceOmitted > 0 {
				n += fmt.Sprintf(" of %d", len(a.Evidence)+a.EvidenceOmitted)
			}
			fmt.Fprintf(b, `<details><summary>evidence: %s events</summary>`, n)
			eventTable(b, a.Evidence, r.Run.Start)
			b.WriteString(`</details>`)
		}
		fmt.Fprintf(b, `</td><td class="num">%s</td></tr>`, fmtDur(a.Duration))
	}
	b.WriteString(`</tbody></table></div>`)
}

// eventTable lists events with their time relative to the run start.
func eventTable(b *strings.Builder, evs []events.Event, start time.Time) {
	b.WriteString(`<table><thead><tr><th>at</th><th>kind</th><th>source</th><th>client</th><th>detail</th></tr></thead><tbody>`)
	for _, e := range evs {
		at := e.Time.UTC().Format("15:04:05.000")
		if !start.IsZero() {
			at = "+" + fmtDur(e.Time.Sub(start))
		}
		fmt.Fprintf(b, `<tr><td class="mono">%s</td><td>%s</td><td>%s</td><td class="mono">%s</td><td>%s</td></tr>`,
			esc(at), esc(string(e.Kind)), esc(string(e.Source)), esc(e.ClientID), esc(eventDetail(e)))
	}
	b.WriteString(`</tbody></table>`)
}

// eventDetail is the one-line gist of the fields an event's kind fills.
func eventDetail(e events.Event) string {
	var p []string
	add := func(k, v string) {
		if v != "" {
			p = append(p, k+"="+v)
		}
	}
	add("topic", e.Topic)
	if e.Kind == events.PublishSent || e.Kind == events.PublishReceived || e.Kind == events.PublishAcked {
		add("qos", fmt.Sprint(e.QoS))
	}
	if e.Seq > 0 {
		add("seq", fmt.Sprint(e.Seq))
	}
	if e.Code != 0 {
		add("code", fmt.Sprintf("0x%02x", e.Code))
	}
	add("cause", string(e.Cause))
	add("statement", e.Statement)
	add("link", e.Link)
	add("group", e.Group)
	add("fault", e.Fault)
	add("direction", e.Direction)
	if e.Latency > 0 {
		add("latency", fmtDur(e.Latency))
	}
	add("remote", e.Remote)
	if e.Detail != "" {
		p = append(p, e.Detail)
	}
	return strings.Join(p, " ")
}

// fmtDur formats a duration with three significant digits and a unit.
func fmtDur(d time.Duration) string {
	a := math.Abs(float64(d))
	switch {
	case d == 0:
		return "0"
	case a < 1e3:
		return fmt.Sprintf("%d ns", d)
	case a < 1e6:
		return sig(float64(d)/1e3) + " µs"
	case a < 1e9:
		return sig(float64(d)/1e6) + " ms"
	case a < 60e9:
		return sig(float64(d)/1e9) + " s"
	}
	return d.Round(time.Second).String()
}

func sig(v float64) string {
	switch {
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// fmtInt formats an integer with thousands separators.
func fmtInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// plural formats a count and a noun that takes an s.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// peak returns the largest value of a column, 0 when empty.
func peak(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// reasonTable lists the reason-code counters (CONNACK, PUBACK, SUBACK,
// DISCONNECT codes the fleet received), when there is any.
func reasonTable(b *strings.Builder, r *Results) {
	rcs := r.ReasonCodes()
	if len(rcs) == 0 {
		return
	}
	b.WriteString(`<h2>Reason codes</h2><div class="card tablecard"><table><thead><tr><th>packet</th><th>code</th><th>meaning</th><th class="num">count</th></tr></thead><tbody>`)
	for _, rc := range rcs {
		fmt.Fprintf(b, `<tr><td>%s</td><td><code>0x%02x</code></td><td>%s</td><td class="num">%s</td></tr>`,
			esc(rc.Packet), rc.Code, esc(ReasonName(rc.Packet, rc.Code)), fmtInt(rc.Count))
	}
	b.WriteString(`</tbody></table></div>`)
}

// kafkaCharts draws the Kafka leg (device -> MQTT -> bridge -> Kafka ->
// watcher) when the run had one: records per second, the slowest watcher's
// lag, and device -> Kafka latency. Runs without a Kafka leg show none.
func kafkaCharts(b *strings.Builder, base timeChart, s *Series) {
	seen := false
	for _, name := range []string{ColKafkaProduced, ColKafkaConsumed, ColKafkaFailed} {
		for _, v := range s.Columns[name] {
			seen = seen || v > 0
		}
	}
	if !seen {
		return
	}
	ch := base
	ch.id, ch.title, ch.unit = "kafka-records", "Kafka leg: records per second", "records / s"
	ch.note = "Records the MQTT -> Kafka bridge produced (acknowledged by Kafka) and gave up on, and records the Kafka watchers read."
	ch.lines = []line{
		{name: "produced", color: colBlue, values: column(s, ColKafkaProduced), under: true},
		{name: "read by watchers", color: colGreen, values: column(s, ColKafkaConsumed)},
		{name: "failed", color: colRed, values: column(s, ColKafkaFailed), bars: true},
	}
	ch.render(b)

	ch = base
	ch.id, ch.title, ch.unit = "kafka-lag", "Kafka leg: consumer lag", "records"
	ch.note = "Records produced and not yet read by the slowest watcher, at the end of each second: a growing lag is a consumer falling behind (or a stalled watcher)."
	ch.lines = []line{{name: "lag", color: colOrange, values: column(s, ColKafkaLag), area: true, agg: aggLast}}
	ch.render(b)

	ch = base
	ch.id, ch.title, ch.unit = "kafka-latency", "Kafka leg: device -> Kafka latency", "milliseconds"
	ch.note = "Per-second percentiles from the device's publish to the watcher reading the record (the payload's send time)."
	ch.yFormat = trimFloat
	ch.lines = []line{
		{name: "p50", color: colPurple, values: percentileMS(s, "kafka_latency", false), agg: aggMax},
		{name: "p99", color: colOrange, values: percentileMS(s, "kafka_latency", true), agg: aggMax},
	}
	ch.render(b)
}
