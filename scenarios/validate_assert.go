package scenarios

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mqttfleet/mqttfleet/reports"
)

// scenarioCounters are the counters a scenario run adds to the Collector's:
// the delivery ledger's totals (see totals) and the step count.
var scenarioCounters = []string{"expected", "lost", "duplicates", "out_of_order", "scenario_steps"}

// assertionFields lists, per kind, the fields it reads besides name, expect,
// statements, per_target and note.
var assertionFields = map[string][]string{
	ExpectCount:   {"events", "per", "keys", "during", "within", "equals", "min", "max"},
	ExpectRate:    {"events", "during", "min", "max", "for"},
	ExpectLatency: {"events", "during", "min", "max", "percentile"},
	ExpectDelivery: {"from", "to", "during", "max_lost", "max_duplicates", "basis", "min_messages", "share_group",
		"order", "max_out_of_order", "min_out_of_order", "min_lost", "min_duplicates"},
	ExpectRecord:  {"events", "per", "during"},
	ExpectCounter: {"counter", "equals", "min", "max"},
}

var commonAssertionFields = []string{"name", "expect", "statements", "per_target", "note"}

func (sc *Scenario) validateAssertion(c *checker, a *Assertion, f string) {
	kinds := make([]string, 0, len(assertionFields))
	for k := range assertionFields {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	allowed, ok := assertionFields[a.Expect]
	if !ok {
		c.fail(f+".expect", "unknown check %q%s; checks: %s", a.Expect, suggest(a.Expect, kinds), strings.Join(kinds, ", "))
		return
	}
	a.line, _ = c.pos.at(f)
	for _, k := range c.pos.keysUnder(f) {
		if !oneOf(k, commonAssertionFields) && !oneOf(k, allowed) {
			c.fail(f+"."+k, "expect: %s does not use %s (it uses: %s)", a.Expect, k, strings.Join(allowed, ", "))
		}
	}
	if a.Expect != ExpectDelivery && a.Expect != ExpectCounter {
		if a.Events == nil {
			c.fail(f+".events", "expect: %s needs events: a matcher such as {kind: publish_received, client: watcher}", a.Expect)
		} else {
			sc.validateMatcher(c, a.Events, f+".events")
		}
	}
	if a.Per != "" && !oneOf(a.Per, perKeys) {
		c.fail(f+".per", "per must be one of %s, not %q%s", strings.Join(perKeys, ", "), a.Per, suggest(a.Per, perKeys))
	}
	sc.validateWindow(c, a.During, f+".during")
	sc.validateWindow(c, a.Within, f+".within")
	bounds := func(pf string, eq, mn, mx *Value) {
		parse := (*Value).parseNumber
		if a.Expect == ExpectLatency {
			parse = (*Value).parseDuration
		}
		for _, b := range []struct {
			name string
			v    *Value
		}{{"equals", eq}, {"min", mn}, {"max", mx}} {
			if b.v == nil {
				continue
			}
			if err := parse(b.v); err != nil {
				c.fail(pf+b.name, "%v", err)
			}
		}
		if eq != nil && (mn != nil || mx != nil) {
			c.fail(pf+"equals", "give equals, or min and/or max, not both")
		}
		// Counts, rates and latencies are never negative: a negative bound
		// is a typo, and min above max is a check nothing can pass.
		for _, b := range []struct {
			name string
			v    *Value
		}{{"equals", eq}, {"min", mn}, {"max", mx}} {
			if b.v != nil && parse(b.v) == nil && (b.v.num < 0 || b.v.dur < 0) {
				c.fail(pf+b.name, "must not be negative, got %s", b.v.Text)
			}
		}
		if mn != nil && mx != nil && parse(mn) == nil && parse(mx) == nil && (mn.num > mx.num || mn.dur > mx.dur) {
			c.fail(pf+"min", "min %s is greater than max %s: nothing could pass", mn.Text, mx.Text)
		}
	}
	bounds(f+".", a.Equals, a.Min, a.Max)
	switch a.Expect {
	case ExpectCount:
		if a.Equals == nil && a.Min == nil && a.Max == nil && a.Within == nil {
			c.fail(f, "expect: count needs equals, min or max (or within)")
		}
		if a.Keys != nil && a.Per == "" {
			c.fail(f+".keys", "keys counts the distinct values of per: add per")
		}
	case ExpectCounter:
		if a.Counter == "" {
			c.fail(f+".counter", "expect: counter needs counter: a results counter such as dropped, takeovers or keepalive_expired")
		} else if !reports.IsCollectorCounter(a.Counter) && !oneOf(a.Counter, scenarioCounters) && !sc.isNetemGroupCounter(a.Counter) {
			known := append(reports.CollectorCounters(), scenarioCounters...)
			c.fail(f+".counter", "no counter %q in a scenario's results%s; counters: %s, and reason codes as <packet>_rc_0x<2 lowercase hex digits> for packet %s (e.g. connack_rc_0x00)",
				a.Counter, suggest(a.Counter, known), strings.Join(known, ", "), strings.Join(reports.RCPackets, ", "))
		}
		if a.Equals == nil && a.Min == nil && a.Max == nil {
			c.fail(f, "expect: counter needs equals, min or max")
		}
	case ExpectRate:
		if a.Min == nil && a.Max == nil {
			c.fail(f, "expect: rate needs min (events per second to sustain) or max (a ceiling)")
		}
		if a.For < 0 || (a.For > 0 && a.Min == nil) {
			c.fail(f+".for", "for is how long the rate must stay at least min: add min")
		}
	case ExpectLatency:
		if a.Min == nil && a.Max == nil {
			c.fail(f, "expect: latency needs max (or min), such as max: 200ms")
		}
		if a.Percentile == 0 {
			a.Percentile = 99
		}
		if a.Percentile <= 0 || a.Percentile > 100 {
			c.fail(f+".percentile", "must be in (0, 100], got %g", a.Percentile)
		}
	case ExpectDelivery:
		if a.From == nil {
			c.fail(f+".from", "expect: delivery needs from: the publishers, such as {group: sensors}")
		} else {
			sc.validateMatcher(c, a.From, f+".from")
		}
		if a.To == nil {
			c.fail(f+".to", "expect: delivery needs to: the receivers, such as {client: watcher}")
		} else {
			sc.validateMatcher(c, a.To, f+".to")
		}
		validateOrder(c, a, f)
		switch a.Basis {
		case "":
			a.Basis = "sent"
		case "sent", "acked":
		default:
			c.fail(f+".basis", "basis must be sent or acked, not %q", a.Basis)
		}
	}
	for name, o := range a.PerTarget {
		pf := f + ".per_target." + name + "."
		if !oneOf(name, targetKinds) {
			c.fail(f+".per_target."+name, "unknown target %q%s; targets: %s", name, suggest(name, targetKinds), strings.Join(targetKinds, ", "))
		}
		bounds(pf, o.Equals, o.Min, o.Max)
		sc.validateWindow(c, o.Within, pf+"within")
		if o.Within != nil && a.Within == nil {
			c.fail(pf+"within", "the assertion has no within: window to replace")
		}
		a.PerTarget[name] = o
	}
}

func (sc *Scenario) validateWindow(c *checker, w *Window, f string) {
	if w == nil {
		return
	}
	for _, ref := range []struct{ field, name string }{{"after", w.After}, {"until", w.Until}} {
		if ref.name == "" || ref.name == "start" || ref.name == "end" {
			continue
		}
		if sc.stepIndex(ref.name) < 0 {
			c.fail(f+"."+ref.field, "no step named %q (steps: %s)", ref.name, sc.stepNames())
		}
	}
	if w.From < 0 {
		c.fail(f+".from", "must not be negative")
	}
	if w.To != nil && *w.To <= w.From {
		c.fail(f+".to", "must be after from (%s), got %s", w.From, *w.To)
	}
	if w.To != nil && w.Until != "" {
		c.fail(f+".until", "give to or until, not both")
	}
}

func (sc *Scenario) stepIndex(name string) int {
	for i := range sc.Steps {
		if sc.Steps[i].Name == name {
			return i
		}
	}
	return -1
}

func (sc *Scenario) stepNames() string {
	var out []string
	for _, s := range sc.Steps {
		out = append(out, s.Name)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// String describes a matcher compactly, for the dry run and messages.
func (m *Matcher) String() string {
	if m == nil {
		return "{}"
	}
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("kind", strings.Join(m.Kind, "|"))
	add("source", m.Source)
	add("client", m.Client)
	add("group", m.Group)
	add("topic", m.Topic)
	add("cause", strings.Join(m.Cause, "|"))
	if m.QoS != nil {
		add("qos", fmt.Sprint(*m.QoS))
	}
	if m.Retain != nil {
		add("retain", fmt.Sprint(*m.Retain))
	}
	if m.Dup != nil {
		add("dup", fmt.Sprint(*m.Dup))
	}
	if m.Payload != nil {
		add("payload", fmt.Sprintf("%q", *m.Payload))
	}
	if m.Code != nil {
		add("code", fmt.Sprint(*m.Code))
	}
	if m.SessionPresent != nil {
		add("session_present", fmt.Sprint(*m.SessionPresent))
	}
	add("statement", m.Statement)
	add("fault", m.Fault)
	return "{" + strings.Join(parts, " ") + "}"
}
