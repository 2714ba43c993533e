package conformance

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// WriteJSON writes the matrix as indented JSON.
func (m *Matrix) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("write matrix JSON: %w", err)
	}
	return nil
}

// CoverageLine is the coverage figure in one line, as printed after a run.
func (m *Matrix) CoverageLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conformance coverage: %d of %d server-side MQTT 3.1.1 statements covered by specs",
		m.Coverage.Covered, m.Coverage.ServerSide)
	for _, t := range m.Targets {
		fmt.Fprintf(&b, "; %s: %d verified", t, m.Coverage.Verified[t])
	}
	return b.String()
}

// counts returns the number of statements per status for a target.
func (m *Matrix) counts(target string) map[Status]int {
	c := map[Status]int{}
	for _, r := range m.Rows {
		c[r.Cells[target].Status]++
	}
	return c
}

var statusMark = map[Status]string{
	StatusPass: "pass", StatusFail: "FAIL", StatusSkipped: "skip", StatusDeviation: "deviation", StatusNotReproduced: "not reproduced",
	StatusNotCovered: "not covered", StatusNotApplicable: "n/a",
}

// WriteMarkdown writes a summary per target and the statement x target table.
func (m *Matrix) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# MQTT 3.1.1 conformance matrix\n\n%s.\n\n", m.CoverageLine())
	b.WriteString("| target | pass | fail | deviation | not reproduced | skipped | not covered |\n|---|---|---|---|---|---|---|\n")
	for _, t := range m.Targets {
		c := m.counts(t)
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d |\n", t, c[StatusPass], c[StatusFail], c[StatusDeviation], c[StatusNotReproduced], c[StatusSkipped], c[StatusNotCovered])
	}
	b.WriteString("\nServer-side statements (role server or both); client-only statements are left out.\n\n| statement | summary |")
	for _, t := range m.Targets {
		b.WriteString(" " + t + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(m.Targets)) + "\n")
	for _, r := range m.Rows {
		if !r.ServerSide() {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |", r.ID, mdEscape(r.Summary))
		for _, t := range m.Targets {
			c := r.Cells[t]
			cell := statusMark[c.Status]
			if c.Status == StatusSkipped || c.Status == StatusDeviation || c.Status == StatusFail {
				if reason := firstLine(c.Reason); reason != "" {
					cell += ": " + mdEscape(reason)
				}
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write matrix Markdown: %w", err)
	}
	return nil
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// WriteHTML writes a self-contained page: inline CSS, a small inline script
// for the status, area and section filters, no external URL.
func (m *Matrix) WriteHTML(w io.Writer) error {
	type cell struct {
		Status, Label, Title string
	}
	type row struct {
		ID, Section, Summary, Role string
		Statuses, Areas            string
		Cells                      []cell
	}
	var rows []row
	sections := []string{}
	seenSec := map[string]bool{}
	for _, r := range m.Rows {
		if !r.ServerSide() {
			continue
		}
		top := strings.SplitN(r.Section, ".", 2)[0]
		if !seenSec[top] {
			seenSec[top] = true
			sections = append(sections, top)
		}
		hr := row{ID: r.ID, Section: top, Summary: r.Summary, Role: r.Role, Areas: strings.Join(r.Areas, " ")}
		var sts []string
		for _, t := range m.Targets {
			c := r.Cells[t]
			title := c.Reason
			if len(c.Specs) > 0 {
				title = strings.TrimSpace(title + "\n\nspecs:\n- " + strings.Join(c.Specs, "\n- "))
			}
			hr.Cells = append(hr.Cells, cell{Status: string(c.Status), Label: statusMark[c.Status], Title: title})
			sts = append(sts, string(c.Status))
		}
		hr.Statuses = strings.Join(sts, " ")
		rows = append(rows, hr)
	}
	var specs []SpecResult
	for _, s := range m.Specs {
		if s.Status != StatusPass {
			specs = append(specs, s)
		}
	}
	data := map[string]any{"M": m, "Rows": rows, "Sections": sections, "Areas": Areas(), "Coverage": m.CoverageLine(), "Specs": specs,
		"Statuses": []Status{StatusPass, StatusFail, StatusDeviation, StatusNotReproduced, StatusSkipped, StatusNotCovered}}
	if err := htmlPage.Execute(w, data); err != nil {
		return fmt.Errorf("write matrix HTML: %w", err)
	}
	return nil
}

var htmlPage = template.Must(template.New("matrix").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MQTT 3.1.1 conformance matrix</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-top:1em}
th,td{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}
th{background:#f3f3f3;position:sticky;top:0}
td.s{white-space:nowrap;text-align:center;font-weight:600}
.pass{background:#d8f5d8}.fail{background:#f9c9c9}.deviation{background:#fde7b0}
.not-reproduced{background:#e3d7fb}.skipped{background:#eee;color:#666}.not-covered{background:#fff;color:#999}
.filters label{margin-right:1em}.sum{color:#555}
pre{white-space:pre-wrap;max-width:80em;font-size:12px;background:#fafafa;padding:4px}
</style></head><body>
<h1>MQTT 3.1.1 conformance matrix</h1>
<p class="sum">{{.Coverage}}. Generated {{.M.Generated.Format "2006-01-02 15:04:05 UTC"}}. Hover a cell for the reason and the specs citing the statement.</p>
<div class="filters">
Status: <select id="fs"><option value="">any</option>{{range .Statuses}}<option>{{.}}</option>{{end}}</select>
Area: <select id="fa"><option value="">any</option>{{range .Areas}}<option>{{.}}</option>{{end}}</select>
Section: <select id="fx"><option value="">any</option>{{range .Sections}}<option>{{.}}</option>{{end}}</select>
<label><input type="text" id="fq" placeholder="search statement or summary"></label>
</div>
<table id="m"><thead><tr><th>statement</th><th>role</th><th>area</th><th>summary</th>{{range .M.Targets}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr data-sec="{{.Section}}" data-st="{{.Statuses}}" data-area="{{.Areas}}"><td>{{.ID}}</td><td>{{.Role}}</td><td>{{.Areas}}</td><td>{{.Summary}}</td>{{range .Cells}}<td class="s {{.Status}}" title="{{.Title}}">{{.Label}}</td>{{end}}</tr>
{{end}}</tbody></table>
<h2>Specs not passed</h2>
<table><thead><tr><th>target</th><th>status</th><th>spec</th><th>statements</th><th>reason</th></tr></thead><tbody>
{{range .Specs}}<tr><td>{{.Target}}</td><td class="s {{.Status}}">{{.Status}}</td><td>{{.Text}}</td><td>{{range .Statements}}{{.}} {{end}}</td><td><pre>{{.Reason}}</pre></td></tr>
{{end}}</tbody></table>
<script>
(function(){
  var fs=document.getElementById('fs'),fa=document.getElementById('fa'),fx=document.getElementById('fx'),fq=document.getElementById('fq');
  function has(list,v){return (' '+list+' ').indexOf(' '+v+' ')>=0;}
  function apply(){
    var s=fs.value,a=fa.value,x=fx.value,q=fq.value.toLowerCase();
    document.querySelectorAll('#m tbody tr').forEach(function(tr){
      var ok=(!s||has(tr.dataset.st,s))&&(!a||has(tr.dataset.area,a))&&(!x||tr.dataset.sec===x)&&(!q||tr.textContent.toLowerCase().indexOf(q)>=0);
      tr.style.display=ok?'':'none';
    });
  }
  fs.onchange=apply;fa.onchange=apply;fx.onchange=apply;fq.oninput=apply;
})();
</script>
</body></html>
`))
