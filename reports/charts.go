package reports

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"
)

// Charts are hand-written inline SVG so the report needs nothing but the
// file itself: no script, no font, no network. Each chart is a <figure>
// holding a title, an HTML legend and an <svg class="chart"> whose data
// paths carry class "series" (or "bar") — the test looks for those.

// Geometry of a time chart, in SVG user units (the SVG scales to its box).
const (
	chartW, chartH = 560.0, 230.0
	padL, padR     = 54.0, 14.0
	padT, padB     = 14.0, 36.0
	plotW          = chartW - padL - padR
	plotH          = chartH - padT - padB
	maxPoints      = 480 // longer series are bucketed to about one point per pixel
)

// agg says how seconds are folded when a series is longer than maxPoints.
type agg int

const (
	aggMean agg = iota // rates: mean over the bucket
	aggMax             // percentiles: worst in the bucket
	aggLast            // gauges: level at the end of the bucket
)

// line is one plotted series; NaN values are gaps.
type line struct {
	name   string
	color  string
	values []float64
	area   bool // fill under the line
	bars   bool // draw as bars instead of a line
	dashed bool
	under  bool // drawn wide and faint, so a line on top of it stays visible
	agg    agg
	format func(float64) string // tooltip value format
}

// timeChart is a chart of series over the seconds of a run.
type timeChart struct {
	id, title, unit string
	note            string // one line under the title
	n               int    // seconds
	start           time.Time
	lines           []line
	faults          []FaultWindow
	steps           []StepWindow
	yFormat         func(float64) string
}

func esc(s string) string { return html.EscapeString(s) }

// fold buckets a series down to at most maxPoints points.
func fold(v []float64, a agg, per int) []float64 {
	if per <= 1 {
		return v
	}
	out := make([]float64, 0, len(v)/per+1)
	for i := 0; i < len(v); i += per {
		end := min(i+per, len(v))
		acc, cnt := 0.0, 0
		last := math.NaN()
		for _, x := range v[i:end] {
			if math.IsNaN(x) {
				continue
			}
			cnt++
			last = x
			switch a {
			case aggMax:
				acc = math.Max(acc, x)
			default:
				acc += x
			}
		}
		switch {
		case cnt == 0:
			out = append(out, math.NaN())
		case a == aggMean:
			out = append(out, acc/float64(cnt))
		case a == aggLast:
			out = append(out, last)
		default:
			out = append(out, acc)
		}
	}
	return out
}

// niceStep returns a round tick step giving about n ticks up to max.
func niceStep(maxV float64, n int) float64 {
	if maxV <= 0 {
		return 1
	}
	raw := maxV / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

// timeStep picks a round tick interval in seconds for a span.
func timeStep(span int) int {
	for _, s := range []int{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400} {
		if span/s <= 8 {
			return s
		}
	}
	return 86400
}

// clock formats seconds since the start as m:ss or h:mm:ss.
func clock(sec int) string {
	if sec >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

// render writes the chart's <figure>.
func (c *timeChart) render(b *strings.Builder) {
	per := 1
	if c.n > maxPoints {
		per = (c.n + maxPoints - 1) / maxPoints
	}
	folded := make([][]float64, len(c.lines))
	maxV := 0.0
	for i, l := range c.lines {
		folded[i] = fold(l.values, l.agg, per)
		for _, v := range folded[i] {
			if !math.IsNaN(v) {
				maxV = math.Max(maxV, v)
			}
		}
	}
	points := (c.n + per - 1) / per
	step := niceStep(maxV, 4)
	top := math.Max(step, math.Ceil(maxV/step)*step)
	x := func(sec float64) float64 { return padL + sec/float64(max(c.n, 1))*plotW }
	y := func(v float64) float64 { return padT + plotH - v/top*plotH }
	yf := c.yFormat
	if yf == nil {
		yf = func(v float64) string { return trimFloat(v) }
	}

	fmt.Fprintf(b, `<figure class="card chart-card" id="chart-%s"><figcaption><h3>%s</h3>`, esc(c.id), esc(c.title))
	if c.note != "" {
		fmt.Fprintf(b, `<p class="note">%s</p>`, esc(c.note))
	}
	b.WriteString(`<ul class="legend">`)
	for _, l := range c.lines {
		cls := "sw"
		if l.dashed {
			cls += " dashed"
		}
		if l.bars || l.area {
			cls += " block"
		}
		fmt.Fprintf(b, `<li><span class="%s" style="--c:%s"></span>%s</li>`, cls, l.color, esc(l.name))
	}
	if len(c.faults) > 0 {
		b.WriteString(`<li><span class="sw block fault"></span>fault (span: held; tick: instant)</li>`)
	}
	if len(c.steps) > 0 {
		b.WriteString(`<li><span class="sw step"></span>scenario step</li>`)
	}
	b.WriteString(`</ul></figcaption>`)
	fmt.Fprintf(b, `<svg class="chart" data-chart="%s" viewBox="0 0 %g %g" role="img" aria-label="%s">`,
		esc(c.id), chartW, chartH, esc(c.title))

	// Grid and y axis.
	b.WriteString(`<g class="axis">`)
	for v := 0.0; v <= top+step/2; v += step {
		fmt.Fprintf(b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f"/><text class="yt" x="%g" y="%.1f">%s</text>`,
			padL, padL+plotW, y(v), y(v), padL-6, y(v)+3.5, esc(yf(v)))
	}
	ts := timeStep(c.n)
	for s := 0; s <= c.n; s += ts {
		fmt.Fprintf(b, `<line class="xg" x1="%.1f" x2="%.1f" y1="%g" y2="%g"/><text class="xt" x="%.1f" y="%g">%s</text>`,
			x(float64(s)), x(float64(s)), padT+plotH, padT+plotH+4, x(float64(s)), padT+plotH+15, clock(s))
	}
	fmt.Fprintf(b, `<text class="al" x="%g" y="%g">time since start (m:ss)</text>`, padL+plotW/2, chartH-4)
	fmt.Fprintf(b, `<text class="al" transform="translate(12 %g) rotate(-90)">%s</text>`, padT+plotH/2, esc(c.unit))
	b.WriteString(`</g>`)

	// Data: areas, then fault windows, then bars and lines.
	barW := plotW / float64(max(points, 1))
	paths := make([]string, len(c.lines))
	npts := make([]int, len(c.lines))
	for i, l := range c.lines {
		if l.bars {
			continue
		}
		paths[i], npts[i] = linePath(folded[i], per, x, y)
		if l.area && npts[i] > 0 {
			fmt.Fprintf(b, `<path class="area" d="%sL%.1f %.1fL%.1f %.1fZ" fill="%s"/>`,
				paths[i], x(float64(c.n)-float64(per)/2), y(0), x(float64(per)/2), y(0), l.color)
		}
	}
	c.markers(b, x)
	for i, l := range c.lines {
		v := folded[i]
		if l.bars {
			// data-points counts zero seconds too: an all-zero takeover
			// chart is data, not a missing chart.
			fmt.Fprintf(b, `<g class="bars" fill="%s" data-points="%d">`, l.color, countValues(v))
			for j, val := range v {
				if math.IsNaN(val) || val <= 0 {
					continue
				}
				fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.2f" height="%.1f"/>`,
					padL+float64(j)*barW+barW*0.1, y(val), math.Max(barW*0.8, 0.8), y(0)-y(val))
			}
			b.WriteString(`</g>`)
			continue
		}
		if npts[i] == 0 {
			continue
		}
		extra := ""
		if l.dashed {
			extra = ` stroke-dasharray="5 3"`
		}
		if l.under {
			extra += ` style="stroke-width:4;stroke-opacity:.45"`
		}
		fmt.Fprintf(b, `<path class="series" data-points="%d" d="%s" stroke="%s"%s/>`, npts[i], paths[i], l.color, extra)
	}

	data := 0
	for i, l := range c.lines {
		if l.bars {
			data += countValues(folded[i])
		} else {
			data += npts[i]
		}
	}
	switch {
	case data == 0:
		// Nothing was measured: an empty frame would look like a broken page.
		fmt.Fprintf(b, `<text class="none nodata" x="%g" y="%g">no data</text>`, padL+plotW/2, padT+plotH/2)
	case maxV == 0:
		// An all-zero chart is an answer ("none"), say so rather than look broken.
		fmt.Fprintf(b, `<text class="none" x="%g" y="%g">none in this run</text>`, padL+plotW/2, padT+plotH/2)
	}

	// Hover targets: one transparent column per point with its values.
	b.WriteString(`<g class="hits">`)
	for j := range points {
		var tip strings.Builder
		tip.WriteString(clock(j * per))
		for i, l := range c.lines {
			val := folded[i][j]
			f := l.format
			if f == nil {
				f = yf
			}
			s := "–"
			if !math.IsNaN(val) {
				s = f(val)
			}
			fmt.Fprintf(&tip, "\n%s: %s", l.name, s)
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%g" width="%.2f" height="%g"><title>%s</title></rect>`,
			padL+float64(j)*barW, padT, barW, plotH, esc(tip.String()))
	}
	b.WriteString(`</g></svg></figure>`)
}

// linePath returns the SVG path of a series (NaN breaks the line) and how
// many points it has.
func linePath(v []float64, per int, x, y func(float64) float64) (string, int) {
	var d strings.Builder
	pen := false
	n := 0
	for j, val := range v {
		if math.IsNaN(val) {
			pen = false
			continue
		}
		op := "L"
		if !pen {
			op, pen = "M", true
		}
		fmt.Fprintf(&d, "%s%.1f %.1f", op, x(float64(j*per)+float64(per)/2), y(val))
		n++
	}
	return d.String(), n
}

// markers draws the fault windows and scenario steps over the grid, under
// the lines: a shaded span for what lasted (a held fault, a step with a
// duration), a tick for what happened at an instant (a reset, a mark), so
// an instantaneous fault is as visible as a long one. Fault labels sit at
// the top, step labels at the bottom, each in the first of a few rows
// where it does not run into the label before it; a label that fits in no
// row is left out (its marker and tooltip stay), so markers close together
// never print over each other.
func (c *timeChart) markers(b *strings.Builder, x func(float64) float64) {
	clamp := func(t time.Time) float64 {
		return math.Max(0, math.Min(float64(c.n), t.Sub(c.start).Seconds()))
	}
	top, bottom := newLabelRows(), newLabelRows()
	text := func(rows *labelRows, at float64, s string, y func(row int) float64) string {
		row, ok := rows.place(at, s)
		if !ok {
			return ""
		}
		return fmt.Sprintf(`<text x="%.1f" y="%.1f">%s</text>`, at, y(row), esc(s))
	}
	topY := func(row int) float64 { return padT + 10 + float64(row)*11 }
	bottomY := func(row int) float64 { return padT + plotH - 4 - float64(row)*11 }
	// Left to right, so each label only has to clear the ones before it.
	faults := slices.SortedStableFunc(slices.Values(c.faults), func(a, b FaultWindow) int { return a.Start.Compare(b.Start) })
	steps := slices.SortedStableFunc(slices.Values(c.steps), func(a, b StepWindow) int { return a.Start.Compare(b.Start) })
	for _, f := range faults {
		s0, s1 := clamp(f.Start), clamp(f.End)
		label := text(top, x(s0)+3, string(f.Kind), topY)
		if f.End.After(f.Start) && s1 > s0 {
			fmt.Fprintf(b, `<g class="fault span"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>%s</g>`,
				x(s0), padT, x(s1)-x(s0), plotH, esc(faultLabel(f, c.start)), label)
			continue
		}
		fmt.Fprintf(b, `<g class="fault tick"><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"><title>%s</title></line>%s</g>`,
			x(s0), x(s0), padT, padT+plotH, esc(faultLabel(f, c.start)), label)
	}
	for _, st := range steps {
		s0, s1 := clamp(st.Start), clamp(st.End)
		tip := fmt.Sprintf("step %s at %s", st.Name, clock(int(st.Start.Sub(c.start).Seconds())))
		if st.End.After(st.Start) && s1 > s0 {
			tip += fmt.Sprintf(" – %s", clock(int(st.End.Sub(c.start).Seconds())))
			fmt.Fprintf(b, `<g class="step span" data-step="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>`,
				esc(st.Name), x(s0), padT, x(s1)-x(s0), plotH, esc(tip))
		} else {
			fmt.Fprintf(b, `<g class="step tick" data-step="%s">`, esc(st.Name))
		}
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"><title>%s</title></line>%s</g>`,
			x(s0), x(s0), padT, padT+plotH, esc(tip), text(bottom, x(s0)+3, st.Name, bottomY))
	}
}

// labelRows places marker labels left to right in a few rows without
// overlap. Widths are estimated (10px text, about 5.6px a character): the
// SVG is rendered by the browser, so the layout cannot measure it.
type labelRows struct{ end []float64 } // per row: x where its last label ends

const (
	labelRowsMax = 3
	labelCharW   = 5.6
	labelGap     = 4.0
)

func newLabelRows() *labelRows {
	r := &labelRows{end: make([]float64, labelRowsMax)}
	for i := range r.end {
		r.end[i] = math.Inf(-1)
	}
	return r
}

// place returns the first row where a label s starting at x fits, and
// reserves it; ok is false when none does. Labels must come in order of x.
func (r *labelRows) place(x float64, s string) (row int, ok bool) {
	for i, end := range r.end {
		if x >= end+labelGap {
			r.end[i] = x + float64(len([]rune(s)))*labelCharW
			return i, true
		}
	}
	return 0, false
}

func faultLabel(f FaultWindow, start time.Time) string {
	s := fmt.Sprintf("%s on %s", f.Kind, f.Target)
	if f.Direction != "" {
		s += " (" + f.Direction + ")"
	}
	s += fmt.Sprintf(", %s – %s", clock(int(f.Start.Sub(start).Seconds())), clock(int(f.End.Sub(start).Seconds())))
	if f.Open {
		s += " (never removed)"
	}
	if f.Shard != "" {
		s += ", shard " + f.Shard
	}
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// trimFloat formats a number compactly: 1200 -> 1.2k, 2.50 -> 2.5.
func trimFloat(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", v/1e6), "0"), ".0") + "M"
	case a >= 1e4:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "k"
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// barRow is one category of a bar chart, with a value per group.
type barRow struct {
	label  string
	values []int64
}

// barChart renders horizontal grouped bars: one row per category.
func barChart(b *strings.Builder, id, title, note, unit string, groups []string, colors []string, rows []barRow) {
	const labelW, rowH, barH, w = 150.0, 30.0, 10.0, 560.0
	h := padT + float64(len(rows))*rowH + 30
	var maxV int64 = 1
	for _, r := range rows {
		for _, v := range r.values {
			maxV = max(maxV, v)
		}
	}
	fmt.Fprintf(b, `<figure class="card chart-card" id="chart-%s"><figcaption><h3>%s</h3>`, esc(id), esc(title))
	if note != "" {
		fmt.Fprintf(b, `<p class="note">%s</p>`, esc(note))
	}
	b.WriteString(`<ul class="legend">`)
	for i, g := range groups {
		fmt.Fprintf(b, `<li><span class="sw block" style="--c:%s"></span>%s</li>`, colors[i], esc(g))
	}
	b.WriteString(`</ul></figcaption>`)
	fmt.Fprintf(b, `<svg class="chart" data-chart="%s" viewBox="0 0 %g %g" role="img" aria-label="%s">`, esc(id), w, h, esc(title))
	span := w - labelW - 70
	b.WriteString(`<g class="axis">`)
	fmt.Fprintf(b, `<line x1="%g" x2="%g" y1="%g" y2="%g"/>`, labelW, labelW, padT-4, padT+float64(len(rows))*rowH)
	fmt.Fprintf(b, `<text class="al" x="%g" y="%g">%s</text>`, labelW+span/2, h-6, esc(unit))
	b.WriteString(`</g>`)
	for i, r := range rows {
		y0 := padT + float64(i)*rowH
		fmt.Fprintf(b, `<text class="cat" x="%g" y="%.1f">%s</text>`, labelW-8, y0+rowH/2+1, esc(r.label))
		for g, v := range r.values {
			by := y0 + (rowH-barH*float64(len(r.values)))/2 + float64(g)*barH
			bw := float64(v) / float64(maxV) * span
			if v > 0 {
				bw = math.Max(bw, 1.5)
			}
			fmt.Fprintf(b, `<rect class="bar" x="%g" y="%.1f" width="%.1f" height="%g" fill="%s"><title>%s, %s: %d</title></rect>`,
				labelW, by, bw, barH-1.5, colors[g], esc(r.label), esc(groups[g]), v)
			fmt.Fprintf(b, `<text class="val" x="%.1f" y="%.1f">%s</text>`, labelW+bw+4, by+barH-2.5, esc(trimFloat(float64(v))))
		}
	}
	b.WriteString(`</svg></figure>`)
}

func countValues(v []float64) int {
	n := 0
	for _, x := range v {
		if !math.IsNaN(x) {
			n++
		}
	}
	return n
}
