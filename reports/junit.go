package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// The JUnit XML shape CI servers read (Jenkins, GitLab, GitHub actions that
// publish test reports): testsuites > testsuite > testcase, with failure,
// error or skipped in a case. Timestamps have no zone, as the common schema
// wants; they are UTC.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string      `xml:"name,attr"`
	Tests      int         `xml:"tests,attr"`
	Failures   int         `xml:"failures,attr"`
	Errors     int         `xml:"errors,attr"`
	Skipped    int         `xml:"skipped,attr"`
	Time       string      `xml:"time,attr"`
	Timestamp  string      `xml:"timestamp,attr,omitempty"`
	Hostname   string      `xml:"hostname,attr,omitempty"`
	Properties *junitProps `xml:"properties,omitempty"`
	Cases      []junitCase `xml:"testcase"`
	totalTime  time.Duration
}

type junitProps struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name       string        `xml:"name,attr"`
	Classname  string        `xml:"classname,attr"`
	Time       string        `xml:"time,attr"`
	Properties *junitProps   `xml:"properties,omitempty"`
	Failure    *junitProblem `xml:"failure,omitempty"`
	Error      *junitProblem `xml:"error,omitempty"`
	Skipped    *junitSkip    `xml:"skipped,omitempty"`
	SystemOut  *junitText    `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"` // CDATA keeps evidence lines readable in the raw file
}

type junitText struct {
	Text string `xml:",cdata"`
}

// text wraps s for system-out, nil when empty.
func text(s string) *junitText {
	if s == "" {
		return nil
	}
	return &junitText{Text: s}
}

type junitSkip struct {
	Message string `xml:"message,attr"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func (s *junitSuite) add(c junitCase, d time.Duration) {
	s.Tests++
	switch {
	case c.Failure != nil:
		s.Failures++
	case c.Error != nil:
		s.Errors++
	case c.Skipped != nil:
		s.Skipped++
	}
	s.totalTime += d
	s.Cases = append(s.Cases, c)
}

// JUnit writes r as JUnit XML: one suite for the run's assertions and one
// per conformance target, with a case per assertion and per (target,
// statement) cell. A deviation or a statement no test covers is a skipped
// case, so coverage stays visible in CI without failing the build.
func JUnit(w io.Writer, r *Results) error {
	name := title(r)
	ts := ""
	if !r.Run.Start.IsZero() {
		ts = r.Run.Start.UTC().Format("2006-01-02T15:04:05")
	}
	out := junitSuites{Name: "mqttfleet " + name}
	if len(r.Assertions) > 0 || r.Conformance == nil {
		s := junitSuite{Name: name, Timestamp: ts, Hostname: r.Run.Host, Properties: runProps(r)}
		class := "mqttfleet." + classPart(name)
		if c, ok := statusCase(r, class); ok {
			s.add(c, 0)
		}
		for _, a := range r.Assertions {
			c := junitCase{Name: a.Name, Classname: class, Time: seconds(a.Duration)}
			if a.Shard != "" {
				c.Name += " [shard " + a.Shard + "]"
			}
			body := assertionBody(a, r.Run.Start)
			switch a.Verdict {
			case Fail:
				c.Failure = &junitProblem{Message: a.Message, Type: "assertion", Body: body}
			case Error:
				c.Error = &junitProblem{Message: a.Message, Type: "error", Body: body}
			case Skipped:
				c.Skipped = &junitSkip{Message: a.Message}
			case Deviation:
				// Skipped, as conformance does: visible in CI, not a failure.
				c.Skipped = &junitSkip{Message: "deviation: " + a.Message}
				c.SystemOut = text(body)
			default:
				c.SystemOut = text(body)
			}
			c.Properties = deviationProps(a)
			s.add(c, a.Duration)
		}
		s.Time = seconds(s.totalTime)
		out.Suites = append(out.Suites, s)
	}
	if m := r.Conformance; m != nil {
		for _, t := range m.Targets {
			s := junitSuite{Name: "conformance " + t, Timestamp: ts, Hostname: r.Run.Host, Time: seconds(0),
				Properties: &junitProps{Props: []junitProp{{Name: "target", Value: t}}}}
			for _, st := range m.Statements {
				cell := m.Cell(t, st.ID)
				c := junitCase{
					Name:      st.ID + ": " + st.Summary,
					Classname: "conformance." + classPart(t) + "." + classPart(st.Section),
					Time:      seconds(0),
				}
				specs := ""
				if len(cell.Specs) > 0 {
					specs = "checked by: " + strings.Join(cell.Specs, ", ")
				}
				switch cell.Status {
				case CellFail:
					c.Failure = &junitProblem{Message: cell.Reason, Type: "conformance", Body: specs}
				case CellDeviation:
					c.Skipped = &junitSkip{Message: "deviation: " + cell.Reason}
				case CellSkipped:
					c.Skipped = &junitSkip{Message: cell.Reason}
				case CellNotCovered:
					c.Skipped = &junitSkip{Message: "not covered by any test"}
				default:
					c.SystemOut = text(specs)
				}
				s.add(c, 0)
			}
			out.Suites = append(out.Suites, s)
		}
	}
	var total time.Duration
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
		total += s.totalTime
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write JUnit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write JUnit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write JUnit: %w", err)
	}
	return nil
}

// runProps are the run metadata as suite properties.
func runProps(r *Results) *junitProps {
	p := &junitProps{}
	add := func(k, v string) {
		if v != "" {
			p.Props = append(p.Props, junitProp{Name: k, Value: v})
		}
	}
	add("kind", string(r.Kind))
	add("target", r.Run.Target)
	add("target_version", r.Run.TargetVersion)
	add("mqttfleet_version", r.Run.Version)
	add("seed", fmt.Sprint(r.Run.Seed))
	add("shard", r.Run.Shard.String())
	add("command", strings.Join(r.Run.Command, " "))
	add("run_id", r.Run.ID)
	add("status", string(r.Run.Status))
	if n := r.count(Deviation); n > 0 {
		add("deviations", fmt.Sprint(n))
	}
	// The run's delivery totals, from the same counters as the HTML and
	// Markdown reports, so a CI page shows the figures the verdicts used.
	for _, k := range junitTotals {
		if v, ok := r.Counters[k]; ok {
			add("totals."+k, fmt.Sprint(v))
		}
	}
	return p
}

// deviationProps names an assertion's verdict and the declared deviation
// behind it, so CI tools that read case properties can tell a deviation
// (or a strict failure on one) from any other skip or failure.
func deviationProps(a Assertion) *junitProps {
	if a.Deviation == nil {
		return nil
	}
	return &junitProps{Props: []junitProp{
		{Name: "verdict", Value: string(a.Verdict)},
		{Name: "deviation.statement", Value: a.Deviation.Statement},
		{Name: "deviation.reason", Value: a.Deviation.Reason},
		{Name: "deviation.doc", Value: a.Deviation.Doc},
	}}
}

// junitTotals are the counters JUnit carries as suite properties.
var junitTotals = []string{"devices", "connects", "connect_failures", "publishes_sent", "publishes_received",
	"publishes_acked", "expected", "lost", "duplicates", "out_of_order"}

// classPart makes a name safe as a dotted classname segment.
func classPart(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

// assertionBody is the message, cited statements and evidence as text.
func assertionBody(a Assertion, start time.Time) string {
	var b strings.Builder
	b.WriteString(a.Message)
	if len(a.Statements) > 0 {
		fmt.Fprintf(&b, "\nstatements: %s", strings.Join(a.Statements, ", "))
	}
	if len(a.Evidence) > 0 {
		fmt.Fprintf(&b, "\nevidence (%d events", len(a.Evidence))
		if a.EvidenceOmitted > 0 {
			fmt.Fprintf(&b, ", %d more omitted", a.EvidenceOmitted)
		}
		b.WriteString("):")
		for _, e := range a.Evidence {
			fmt.Fprintf(&b, "\n  %s", evidenceLine(e, start))
		}
	}
	return strings.TrimSpace(b.String())
}

func evidenceLine(e events.Event, start time.Time) string {
	at := e.Time.UTC().Format(time.RFC3339Nano)
	if !start.IsZero() {
		at = "+" + fmtDur(e.Time.Sub(start))
	}
	s := fmt.Sprintf("%s %s %s", at, e.Source, e.Kind)
	if e.ClientID != "" {
		s += " " + e.ClientID
	}
	if d := eventDetail(e); d != "" {
		s += " " + d
	}
	return s
}

// statusCase is an error case for a run that did not complete, so CI never
// shows a target that never started, or a run cut short, as all green.
func statusCase(r *Results, class string) (junitCase, bool) {
	var what string
	switch r.Run.Status {
	case StatusTargetUnavailable:
		what = "the target could not be reached or started"
	case StatusInterrupted:
		what = "the run was interrupted; results are partial"
	default:
		return junitCase{}, false
	}
	msg := what
	if r.Run.StatusReason != "" {
		msg += ": " + r.Run.StatusReason
	}
	return junitCase{Name: "run status: " + string(r.Run.Status), Classname: class, Time: seconds(0),
		Error: &junitProblem{Message: msg, Type: string(r.Run.Status), Body: msg}}, true
}
