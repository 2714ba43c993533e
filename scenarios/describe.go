package scenarios

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Describe writes the resolved scenario for a dry run: target, groups and
// clients with their defaults filled in, the timeline with each step's time
// (absolute where it is known before the run, else relative to what it
// waits for) and every assertion in words.
func Describe(w io.Writer, sc *Scenario) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s", sc.Name)
	if sc.File != "" {
		fmt.Fprintf(&b, " (%s)", sc.File)
	}
	b.WriteString("\n")
	if d := strings.TrimSpace(sc.Description); d != "" {
		for _, l := range strings.Split(d, "\n") {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	target := sc.Target.Kind
	if sc.Target.Address != "" {
		target += " " + sc.Target.Address
	}
	if sc.Target.Persistence {
		target += " (its persistence on)"
	}
	fmt.Fprintf(&b, "target: %s   seed: %d   timeout: %s   drain: %s\n", target, sc.Seed, sc.Timeout, sc.Drain)
	if len(sc.Requires) > 0 {
		fmt.Fprintf(&b, "requires: %s\n", strings.Join(sc.Requires, ", "))
	}
	if len(sc.Vars) > 0 {
		var ks []string
		for k := range sc.Vars {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var parts []string
		for _, k := range ks {
			parts = append(parts, fmt.Sprintf("%s=%v", k, sc.Vars[k]))
		}
		fmt.Fprintf(&b, "vars: %s\n", strings.Join(parts, " "))
	}
	upByStep := sc.startedByStep()
	if len(sc.Groups) > 0 {
		b.WriteString("groups:\n")
	}
	for _, g := range sc.Groups {
		fmt.Fprintf(&b, "  %-14s %d devices, client_id %q, keepalive %s, driver %s", g.Name, g.Count, g.ClientID, g.KeepAliveOrDefault(), g.Driver)
		if !g.IsClean() {
			b.WriteString(", persistent session")
		}
		if g.Will != nil {
			fmt.Fprintf(&b, ", will on %q qos %d", g.Will.Topic, g.Will.QoS)
		}
		if p := g.Publish; p != nil {
			fmt.Fprintf(&b, ", publishes %q qos %d every %s", p.Topic, p.QoS, p.Interval)
		}
		for _, s := range g.Subscriptions {
			fmt.Fprintf(&b, ", subscribes %q qos %d", s.Filter, s.QoS)
		}
		if g.Reconnect.Policy != "none" {
			fmt.Fprintf(&b, ", reconnect %s %s jitter %g", g.Reconnect.Policy, g.Reconnect.Delay, g.Reconnect.Jitter)
		}
		if g.Proxy {
			b.WriteString(", behind the fault proxy")
		}
		if upByStep["g:"+g.Name] {
			b.WriteString("; up at its step\n")
		} else {
			b.WriteString("; up at start\n")
		}
	}
	if len(sc.Clients) > 0 {
		b.WriteString("clients:\n")
	}
	for _, c := range sc.Clients {
		ka := 30 * time.Second
		if c.KeepAlive != nil {
			ka = *c.KeepAlive
		}
		fmt.Fprintf(&b, "  %-14s client_id %q, keepalive %s", c.Name, c.ClientID, ka)
		if c.Clean != nil && !*c.Clean {
			b.WriteString(", persistent session")
		}
		if c.Protocol == 5 {
			b.WriteString(", MQTT 5")
		}
		if c.SessionExpiry != nil {
			fmt.Fprintf(&b, ", session expiry %s", c.SessionExpiry)
		}
		if c.Will != nil {
			fmt.Fprintf(&b, ", will on %q qos %d", c.Will.Topic, c.Will.QoS)
			if c.Will.Delay > 0 {
				fmt.Fprintf(&b, " delayed %s", c.Will.Delay)
			}
		}
		for _, s := range c.Subscriptions {
			fmt.Fprintf(&b, ", subscribes %q qos %d", s.Filter, s.QoS)
		}
		if c.Proxy {
			b.WriteString(", behind the fault proxy")
		}
		if upByStep["c:"+c.Name] {
			b.WriteString("; connects at its step\n")
		} else {
			b.WriteString("; connects before the start\n")
		}
	}
	b.WriteString("timeline:\n")
	known := map[string]time.Duration{"start": 0} // steps whose time is known before the run
	prev, prevKnown := time.Duration(0), true
	prevName := "start"
	for _, s := range sc.Steps {
		var when string
		t, ok := time.Duration(0), false
		switch {
		case s.At != nil:
			t, ok = s.At.D(), true
		case s.After != "":
			if bt, k := known[s.After]; k {
				t, ok = bt+s.Delay.D(), true
			} else {
				when = after(s.Delay, s.After)
			}
		case s.When != nil:
			when = after(s.Delay, "first "+s.When.String()+" (following "+prevName+")")
		default:
			if prevKnown {
				t, ok = prev+s.Delay.D(), true
			} else {
				when = after(s.Delay, prevName)
			}
		}
		if ok {
			when = fmt.Sprintf("t=%s", t)
		}
		if ok && s.Do != DoWait {
			known[s.Name] = t
		}
		fmt.Fprintf(&b, "  line %-4d %-24s %-20s %s\n", s.line, when, s.Name, describe(&s))
		// A step that waits, or one whose time is unknown, makes the rest relative.
		prev, prevKnown, prevName = t, ok && s.Do != DoWait && !takesTime(s.Do), s.Name
	}
	b.WriteString("assertions:\n")
	for _, a := range sc.Assertions {
		fmt.Fprintf(&b, "  line %-4d %s\n            %s\n", a.line, a.Name, describeAssertion(&a))
		var ts []string
		for t := range a.PerTarget {
			ts = append(ts, t)
		}
		sort.Strings(ts)
		for _, t := range ts {
			o := a.PerTarget[t]
			d := "on " + t + ":"
			switch {
			case o.Skip:
				d += " skipped"
			case o.Record:
				d += " recorded, not checked"
			case o.Equals != nil || o.Min != nil || o.Max != nil:
				d += " want " + bounds{eq: o.Equals, min: o.Min, max: o.Max}.String(a.Expect == ExpectLatency)
			}
			if o.Within != nil {
				d += " every one " + describeWindow(o.Within)
			}
			if o.Note != "" {
				d += " — " + o.Note
			}
			fmt.Fprintf(&b, "            %s\n", d)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// after says "after X", with the delay when there is one.
func after(d Duration, what string) string {
	if d == 0 {
		return "after " + what
	}
	return "+" + d.String() + " after " + what
}

// takesTime reports whether an action lasts long enough that later steps
// cannot be placed on the clock before the run.
func takesTime(do string) bool {
	switch do {
	case DoDown, DoConnect, DoPublish, DoSubscribe, DoRestart, DoStopB, DoStartB:
		return true
	}
	return false
}

func describeWindow(w *Window) string {
	after := w.After
	if after == "" {
		after = "start"
	}
	s := fmt.Sprintf("from %s+%s", after, w.From)
	switch {
	case w.To != nil:
		s += fmt.Sprintf(" to %s+%s", after, *w.To)
	case w.Until != "":
		s += " to " + w.Until
	default:
		s += " to the end"
	}
	return s
}

func describeAssertion(a *Assertion) string {
	b := bounds{eq: a.Equals, min: a.Min, max: a.Max}
	var s string
	switch a.Expect {
	case ExpectCount:
		s = "count of " + a.Events.String()
		if a.Per != "" {
			s += " per " + a.Per
		}
		if a.Equals != nil || a.Min != nil || a.Max != nil {
			s += " " + b.String(false)
		}
		if a.Keys != nil {
			s += fmt.Sprintf(", %d %ss", *a.Keys, a.Per)
		}
		if a.Within != nil {
			s += ", every one " + describeWindow(a.Within)
		}
	case ExpectRate:
		s = "rate of " + a.Events.String() + " per second " + b.String(false)
		if a.For > 0 {
			s += " for " + a.For.String()
		}
	case ExpectLatency:
		s = fmt.Sprintf("p%g latency of %s %s", a.Percentile, a.Events, b.String(true))
	case ExpectDelivery:
		lost, dup := 0, 0
		if a.MaxLost != nil {
			lost = *a.MaxLost
		}
		if a.MaxDup != nil {
			dup = *a.MaxDup
		}
		s = fmt.Sprintf("delivery from %s to %s: lost <= %d, duplicates <= %d (basis %s)", a.From, a.To, lost, dup, a.Basis)
		s = describeOrder(a, s)
	case ExpectCounter:
		s = "counter " + a.Counter + " " + b.String(false)
	case ExpectRecord:
		s = "record " + a.Events.String()
		if a.Per != "" {
			s += " per " + a.Per
		}
	}
	if a.During != nil {
		s += ", during " + describeWindow(a.During)
	}
	return s
}

// startedByStep returns the groups ("g:name") and clients ("c:name") whose
// first step brings them up: everything else is up when the timeline starts.
func (sc *Scenario) startedByStep() map[string]bool {
	first := map[string]string{}
	for _, s := range sc.Steps {
		switch {
		case s.Group != "" && (s.Do == DoUp || s.Do == DoDown):
			if _, ok := first["g:"+s.Group]; !ok {
				first["g:"+s.Group] = s.Do
			}
		case s.Client != "":
			if _, ok := first["c:"+s.Client]; !ok {
				first["c:"+s.Client] = s.Do
			}
		}
	}
	out := map[string]bool{}
	for k, do := range first {
		out[k] = do == DoUp || do == DoConnect
	}
	return out
}
