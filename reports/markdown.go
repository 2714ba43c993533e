package reports

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// maxMarkdownItems bounds lists in the Markdown summary: CI job summaries
// are read at a glance, the HTML report holds the rest.
const maxMarkdownItems = 15

// Markdown writes a short summary of r fit for a CI job summary (GitHub's
// $GITHUB_STEP_SUMMARY, GitLab notes): verdict line, key counters, latency
// percentiles, failing assertions and conformance coverage.
func Markdown(w io.Writer, r *Results) error {
	var b strings.Builder
	v := r.Verdict()
	icon := map[Verdict]string{Pass: "✅", Fail: "❌", Error: "⚠️"}[v]
	fmt.Fprintf(&b, "## %s %s — %s\n\n", icon, strings.ToUpper(string(v)), mdEsc(title(r)))
	var meta []string
	add := func(k, val string) {
		if val != "" {
			meta = append(meta, fmt.Sprintf("**%s** %s", k, mdEsc(val)))
		}
	}
	add("kind", string(r.Kind))
	for _, f := range runFacts(r, false) {
		add(f.label, f.value)
	}
	fmt.Fprintf(&b, "%s\n\n%s\n\n", strings.Join(meta, " · "), mdEsc(summaryLine(r)))

	if c := r.Counters; len(c) > 0 {
		b.WriteString("| fleet | |\n|---|---:|\n")
		if r.Series != nil {
			fmt.Fprintf(&b, "| peak connected | %s |\n", fmtInt(peak(r.Series.Columns[ColConnected])))
		}
		for _, row := range []struct{ label, key string }{
			{"connects", "connects"}, {"refused connects", "connect_failures"}, {"disconnects", "disconnects"},
			{"takeovers", "takeovers"}, {"takeovers (broker)", "broker_takeovers"}, {"messages sent", "publishes_sent"}, {"messages received", "publishes_received"},
			{"lost", "lost"}, {"duplicates", "duplicates"}, {"dropped", "dropped"}, {"keepalive expiries (broker)", "broker_keepalive_expired"},
			{"violations", "violations"}, {"fault windows", "faults_injected"},
			{"packets the link dropped (netem)", "netem_dropped"}, {"packets the link doubled (netem)", "netem_duplicated"},
			{"packets the link reordered (netem)", "netem_reordered"}, {"reads a forgotten NAT mapping dropped (netem)", "netem_nat_dropped"},
		} {
			if n, ok := c[row.key]; ok && (n != 0 || row.key == "lost" || row.key == "connects") {
				fmt.Fprintf(&b, "| %s | %s |\n", row.label, fmtInt(n))
			}
		}
		b.WriteString("\n")
	}
	if len(r.Disconnects) > 0 {
		var parts []string
		for _, k := range sortedByCount(r.Disconnects) {
			parts = append(parts, fmt.Sprintf("%s %s", mdEsc(k), fmtInt(r.Disconnects[k])))
		}
		fmt.Fprintf(&b, "Disconnect causes: %s.\n\n", strings.Join(parts, " · "))
	}
	if rcs := r.ReasonCodes(); len(rcs) > 0 {
		b.WriteString("| reason codes | code | meaning | count |\n|---|---|---|---:|\n")
		for _, rc := range rcs {
			fmt.Fprintf(&b, "| %s | `0x%02x` | %s | %s |\n", rc.Packet, rc.Code, mdEsc(ReasonName(rc.Packet, rc.Code)), fmtInt(rc.Count))
		}
		b.WriteString("\n")
	}
	if len(r.Histograms) > 0 {
		b.WriteString("| latency | samples | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
		names := make([]string, 0, len(r.Histograms))
		for n := range r.Histograms {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			h := r.Histograms[n]
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", strings.ReplaceAll(n, "_", " "), fmtInt(int64(h.Count())),
				fmtDur(h.Percentile(50)), fmtDur(h.Percentile(90)), fmtDur(h.Percentile(99)), fmtDur(h.Percentile(99.9)), fmtDur(h.Max()))
		}
		b.WriteString("\n")
	}
	mdGroups(&b, r)
	mdAssertions(&b, r)
	mdConformance(&b, r)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write Markdown summary: %w", err)
	}
	return nil
}

// mdAssertions lists the failing assertions, then the known deviations.
func mdAssertions(b *strings.Builder, r *Results) {
	var bad, devs []Assertion
	for _, a := range r.Assertions {
		switch a.Verdict {
		case Fail, Error:
			bad = append(bad, a)
		case Deviation:
			devs = append(devs, a)
		}
	}
	mdAssertionList(b, r, "Failing assertions", bad)
	mdAssertionList(b, r, "Known deviations", devs)
}

func mdAssertionList(b *strings.Builder, r *Results, heading string, list []Assertion) {
	if len(list) == 0 {
		return
	}
	fmt.Fprintf(b, "### %s\n\n", heading)
	for i, a := range list {
		if i == maxMarkdownItems {
			fmt.Fprintf(b, "- … and %d more\n", len(list)-i)
			break
		}
		icon := map[Verdict]string{Fail: "❌", Error: "⚠️ error:", Deviation: "🟡 deviation:"}[a.Verdict]
		fmt.Fprintf(b, "- %s **%s**", icon, mdEsc(a.Name))
		if len(a.Statements) > 0 {
			fmt.Fprintf(b, " (%s)", mdEsc(strings.Join(a.Statements, ", ")))
		}
		if a.Shard != "" {
			fmt.Fprintf(b, " [shard %s]", a.Shard)
		}
		if a.Message != "" {
			fmt.Fprintf(b, " — %s", mdEsc(a.Message))
		}
		if d := a.Deviation; d != nil {
			fmt.Fprintf(b, " — known deviation from %s: %s (%s)", mdEsc(d.Statement), mdEsc(d.Reason), mdEsc(d.Doc))
		}
		b.WriteString("\n")
		if len(a.Evidence) > 0 {
			b.WriteString("  ```\n")
			for j, e := range a.Evidence {
				if j == 5 {
					fmt.Fprintf(b, "  … %d more events\n", len(a.Evidence)-j+a.EvidenceOmitted)
					break
				}
				fmt.Fprintf(b, "  %s\n", strings.ReplaceAll(evidenceLine(e, r.Run.Start), "`", "'"))
			}
			b.WriteString("  ```\n")
		}
	}
	b.WriteString("\n")
}

func mdConformance(b *strings.Builder, r *Results) {
	m := r.Conformance
	if m == nil || len(m.Targets) == 0 {
		return
	}
	if m.Coverage == nil {
		m.Summarise()
	}
	b.WriteString("### Conformance\n\n| target | tested | pass | fail | deviation | skipped | not covered |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range m.Targets {
		c := m.Coverage[t]
		pct := 0
		if c.Total > 0 {
			pct = 100 * c.Tested / c.Total
		}
		fmt.Fprintf(b, "| %s | %d of %d (%d%%) | %d | %d | %d | %d | %d |\n", mdEsc(t), c.Tested, c.Total, pct, c.Pass, c.Fail, c.Deviation, c.Skipped, c.NotCovered)
		if v := c.V5; v != nil {
			fmt.Fprintf(b, "| %s, of which MQTT 5.0 | %d of %d | %d | %d | %d | %d | %d |\n", mdEsc(t), v.Tested, v.Total, v.Pass, v.Fail, v.Deviation, v.Skipped, v.NotCovered)
		}
	}
	b.WriteString("\n")
	n := 0
	for _, s := range m.Statements {
		for _, t := range m.Targets {
			c := m.Cell(t, s.ID)
			if c.Status != CellFail {
				continue
			}
			if n == 0 {
				b.WriteString("Failing statements:\n\n")
			}
			n++
			if n > maxMarkdownItems {
				continue
			}
			fmt.Fprintf(b, "- `%s` on **%s**: %s\n", s.ID, mdEsc(t), mdEsc(c.Reason))
		}
	}
	if n > maxMarkdownItems {
		fmt.Fprintf(b, "- … and %d more\n", n-maxMarkdownItems)
	}
	if n > 0 {
		b.WriteString("\n")
	}
}

// mdEsc keeps text from being read as Markdown or HTML (job summaries
// render HTML) or from breaking a table cell.
func mdEsc(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "|", `\|`, "*", `\*`, "_", `\_`, "`", "'", "[", `\[`, "]", `\]`, "\n", " ")
	return r.Replace(s)
}

func sortedByCount(m map[string]int64) []string {
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
	return keys
}

// mdGroups is the per-group table: each group's delivery totals.
func mdGroups(b *strings.Builder, r *Results) {
	if len(r.Groups) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(r.Groups))
	b.WriteString("| group | devices | sent | received | expected | lost | duplicates |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range names {
		g := r.Groups[n]
		c := g.Counters
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", mdEsc(n), fmtInt(int64(g.Devices)), fmtInt(c["publishes_sent"]),
			fmtInt(c["publishes_received"]), fmtInt(c["expected"]), fmtInt(c["lost"]), fmtInt(c["duplicates"]))
	}
	b.WriteString("\n")
}
