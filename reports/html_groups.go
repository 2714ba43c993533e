package reports

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// groupCounters are the per-group columns, in table order.
var groupCounters = []struct{ label, key string }{
	{"connects", "connects"}, {"refused", "connect_failures"}, {"disconnects", "disconnects"},
	{"sent", "publishes_sent"}, {"received", "publishes_received"}, {"expected", "expected"},
	{"lost", "lost"}, {"duplicates", "duplicates"}, {"out of order", "out_of_order"},
}

// groupsSection is the per-group view: a table of each group's totals and
// latency, and a bar chart of delivered, lost and duplicated per group, so
// a loss that hit one group stands out from the fleet's total.
func groupsSection(b *strings.Builder, r *Results) {
	if len(r.Groups) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(r.Groups))
	b.WriteString(`<h2 id="groups">Groups</h2><div class="card tablecard"><table class="groups"><thead><tr><th>group</th><th class="num">devices</th>`)
	for _, c := range groupCounters {
		fmt.Fprintf(b, `<th class="num">%s</th>`, esc(c.label))
	}
	b.WriteString(`<th class="num">e2e p50</th><th class="num">e2e p99</th></tr></thead><tbody>`)
	var rows []barRow
	for _, n := range names {
		g := r.Groups[n]
		cls := ""
		if g.Counters["lost"] > 0 || g.Counters["duplicates"] > 0 {
			cls = ` class="bad"`
		}
		fmt.Fprintf(b, `<tr%s data-group="%s"><td><b>%s</b></td><td class="num">%s</td>`, cls, esc(n), esc(n), fmtInt(int64(g.Devices)))
		for _, c := range groupCounters {
			fmt.Fprintf(b, `<td class="num">%s</td>`, fmtInt(g.Counters[c.key]))
		}
		p50, p99 := "–", "–"
		if g.E2E != nil && g.E2E.Count() > 0 {
			p50, p99 = fmtDur(g.E2E.Percentile(50)), fmtDur(g.E2E.Percentile(99))
		}
		fmt.Fprintf(b, `<td class="num">%s</td><td class="num">%s</td></tr>`, p50, p99)
		delivered := g.Counters["expected"] - g.Counters["lost"]
		rows = append(rows, barRow{label: n, values: []int64{max(delivered, 0), g.Counters["lost"], g.Counters["duplicates"]}})
	}
	b.WriteString(`</tbody></table></div>`)
	b.WriteString(`<section class="charts">`)
	barChart(b, "groups", "Deliveries per group", "Expected deliveries of each receiving group: delivered, lost and duplicated.",
		"deliveries", []string{"delivered", "lost", "duplicates"}, []string{colGreen, colRed, colOrange}, rows)
	b.WriteString(`</section>`)
}

// timelineAnchor is the id of a device's drill-down.
func timelineAnchor(device string) string {
	return "device-" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, device)
}

// drillLinks links a failed assertion to the timelines of the devices its
// evidence named.
func drillLinks(b *strings.Builder, r *Results, a Assertion) {
	var links []string
	for _, tl := range r.Timelines {
		if slices.Contains(tl.Assertions, a.Name) {
			links = append(links, fmt.Sprintf(`<a href="#%s">%s</a>`, timelineAnchor(tl.Device), esc(tl.Device)))
		}
	}
	if len(links) > 0 {
		fmt.Fprintf(b, `<div class="drill">devices: %s</div>`, strings.Join(links, ", "))
	}
}

// timelines is the drill-down: the event history of each device that
// failed an assertion.
func timelines(b *strings.Builder, r *Results) {
	if len(r.Timelines) == 0 {
		return
	}
	b.WriteString(`<h2 id="devices">Devices that failed an assertion</h2><div class="card tablecard">`)
	for _, tl := range r.Timelines {
		n := fmt.Sprint(len(tl.Events))
		if tl.Omitted > 0 {
			n += fmt.Sprintf(" of %d", len(tl.Events)+tl.Omitted)
		}
		fmt.Fprintf(b, `<div class="timeline" id="%s"><h3>%s</h3><p class="note">failed: %s · %s events</p>`,
			timelineAnchor(tl.Device), esc(tl.Device), esc(strings.Join(tl.Assertions, ", ")), n)
		eventTable(b, tl.Events, r.Run.Start)
		b.WriteString(`</div>`)
	}
	b.WriteString(`</div>`)
}
