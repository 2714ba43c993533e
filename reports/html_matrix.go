package reports

import (
	"fmt"
	"sort"
	"strings"
)

// matrix renders the conformance matrix: a coverage card per target, then
// statements × targets with status filters. The filters are radio inputs
// and CSS sibling rules (filterRule), so they work without script.
func matrix(b *strings.Builder, r *Results) {
	m := r.Conformance
	if m == nil || len(m.Statements) == 0 {
		return
	}
	if m.Coverage == nil {
		m.Summarise()
	}
	b.WriteString(`<h2>Conformance</h2><section class="cov">`)
	for _, t := range m.Targets {
		c := m.Coverage[t]
		pct := 0.0
		if c.Total > 0 {
			pct = 100 * float64(c.Tested) / float64(c.Total)
		}
		fmt.Fprintf(b, `<div class="card"><h3>%s</h3><div><span class="covpct">%.0f%%</span> <span class="covnums">tested (%d of %d statements)</span></div><div class="covbar">`,
			esc(t), pct, c.Tested, c.Total)
		for _, seg := range []struct {
			cls string
			n   int
		}{{"pass", c.Pass}, {"deviation", c.Deviation}, {"fail", c.Fail}, {"skipped", c.Skipped}} {
			if seg.n > 0 && c.Total > 0 {
				fmt.Fprintf(b, `<span class="%s" style="width:%.2f%%" title="%s: %d"></span>`, seg.cls, 100*float64(seg.n)/float64(c.Total), seg.cls, seg.n)
			}
		}
		fmt.Fprintf(b, `</div><div class="covnums">%d pass · %d fail · %d deviation · %d skipped · %d not covered</div>`,
			c.Pass, c.Fail, c.Deviation, c.Skipped, c.NotCovered)
		if v := c.V5; v != nil {
			fmt.Fprintf(b, `<div class="covnums">of which MQTT 5.0 (v5:): %d of %d tested · %d pass · %d fail · %d deviation · %d skipped · %d not covered</div>`,
				v.Tested, v.Total, v.Pass, v.Fail, v.Deviation, v.Skipped, v.NotCovered)
		}
		b.WriteString(`</div>`)
	}
	b.WriteString(`</section>`)

	// Which statuses each row holds, for the filters.
	rows := make([]map[CellStatus]bool, len(m.Statements))
	counts := map[CellStatus]int{}
	for i, s := range m.Statements {
		rows[i] = map[CellStatus]bool{}
		for _, t := range m.Targets {
			rows[i][m.Cell(t, s.ID).Status] = true
		}
		for st := range rows[i] {
			counts[st]++
		}
	}
	b.WriteString(`<section class="matrix">`)
	fmt.Fprintf(b, `<input type="radio" name="mf" id="mf-all" checked="checked"/>`)
	for _, st := range CellStatuses {
		fmt.Fprintf(b, `<input type="radio" name="mf" id="mf-%s"/>`, st)
	}
	fmt.Fprintf(b, `<div class="filters"><label for="mf-all">all statements (%d)</label>`, len(m.Statements))
	for _, st := range CellStatuses {
		fmt.Fprintf(b, `<label for="mf-%s">with %s (%d)</label>`, st, strings.ReplaceAll(string(st), "_", " "), counts[st])
	}
	b.WriteString(`</div><div class="card tablecard"><table><thead><tr><th>statement</th><th>summary</th>`)
	for _, t := range m.Targets {
		fmt.Fprintf(b, `<th class="tg">%s</th>`, esc(t))
	}
	b.WriteString(`</tr></thead><tbody>`)
	for i, s := range m.Statements {
		var cls []string
		for st := range rows[i] {
			cls = append(cls, "has-"+string(st))
		}
		sort.Strings(cls)
		fmt.Fprintf(b, `<tr class="%s"><td class="mono">%s</td><td>%s <span class="sec">§%s · %s</span></td>`,
			strings.Join(cls, " "), esc(s.ID), esc(s.Summary), esc(s.Section), esc(s.Role))
		for _, t := range m.Targets {
			c := m.Cell(t, s.ID)
			tip := string(c.Status)
			if c.Reason != "" {
				tip += ": " + c.Reason
			}
			if len(c.Specs) > 0 {
				tip += "\nchecked by: " + strings.Join(c.Specs, ", ")
			}
			label := map[CellStatus]string{CellPass: "pass", CellFail: "fail", CellDeviation: "deviation", CellSkipped: "skipped", CellNotCovered: "—"}[c.Status]
			fmt.Fprintf(b, `<td class="cell %s" title="%s"><span class="pill %s">%s</span>`, esc(string(c.Status)), esc(tip), esc(string(c.Status)), esc(label))
			if c.Reason != "" && (c.Status == CellFail || c.Status == CellDeviation) {
				fmt.Fprintf(b, `<span class="why">%s</span>`, esc(c.Reason))
			}
			b.WriteString(`</td>`)
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</tbody></table></div></section>`)
}

// eventsSection summarises the event stream and lists notable events.
func eventsSection(b *strings.Builder, r *Results) {
	ev := r.Events
	if ev.Total == 0 {
		return
	}
	fmt.Fprintf(b, `<h2>Events</h2><div class="two">`)
	countTable(b, "kind", ev.ByKind)
	countTable(b, "source", ev.BySource)
	b.WriteString(`</div>`)
	if len(ev.Notable) > 0 {
		fmt.Fprintf(b, `<div class="card" style="margin-top:14px"><details><summary>notable events: the first %d violations, wills, keepalive expiries, drops and takeovers</summary>`, len(ev.Notable))
		eventTable(b, ev.Notable, r.Run.Start)
		b.WriteString(`</details></div>`)
	}
}

func countTable(b *strings.Builder, what string, m map[string]int64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	fmt.Fprintf(b, `<div class="card tablecard"><table><thead><tr><th>events by %s</th><th class="num">count</th></tr></thead><tbody>`, esc(what))
	for _, k := range keys {
		fmt.Fprintf(b, `<tr><td>%s</td><td class="num">%s</td></tr>`, esc(k), fmtInt(m[k]))
	}
	b.WriteString(`</tbody></table></div>`)
}
