package scenarios

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/netem"
	"github.com/mqttfleet/mqttfleet/reports"
)

// The link faults of real IoT links, in the fault proxy (docs/netem.md):
// loss and duplication of whole MQTT packets, reordering, bursty
// (Gilbert-Elliott) loss, a NAT that forgets an idle link and one that
// rebinds the device's flow to a new source port.
const (
	DoLoss      = "loss"
	DoDuplicate = "duplicate"
	DoReorder   = "reorder"
	DoNATIdle   = "nat_idle"
	DoNATRebind = "nat_rebind"
)

func init() {
	// Kept apart from the table in validate.go so the actions read as one addition.
	actionFields[DoLoss] = append([]string{"for", "probability", "p", "r", "loss_bad", "loss_good", "packets"}, faultFields...)
	actionFields[DoDuplicate] = append([]string{"for", "probability", "packets"}, faultFields...)
	actionFields[DoReorder] = append([]string{"for", "window", "hold", "packets"}, faultFields...)
	actionFields[DoNATIdle] = append([]string{"for", "idle"}, faultFields...)
	actionFields[DoNATRebind] = append([]string{"every", "for"}, faultFields...)
	actionFields[DoBandwidth] = append(actionFields[DoBandwidth], "burst")
}

// isLinkFault says whether do is one of the actions of this file.
func isLinkFault(do string) bool {
	switch do {
	case DoLoss, DoDuplicate, DoReorder, DoNATIdle, DoNATRebind:
		return true
	}
	return false
}

// validateLinkFault checks a link fault's own parameters.
func validateLinkFault(c *checker, s *Step, f string) {
	for j, p := range s.Packets {
		if !oneOf(p, netem.PacketTypes()) {
			c.fail(fmt.Sprintf("%s.packets[%d]", f, j), "unknown MQTT packet type %q%s; types: %s", p,
				suggest(p, netem.PacketTypes()), strings.Join(netem.PacketTypes(), ", "))
		}
	}
	prob := func(field string, v float64) {
		if v < 0 || v > 1 {
			c.fail(f+"."+field, "must be a probability between 0 and 1, not %g", v)
		}
	}
	switch s.Do {
	case DoLoss:
		prob("probability", s.Probability)
		prob("p", s.P)
		prob("r", s.R)
		prob("loss_bad", s.LossBad)
		prob("loss_good", s.LossGood)
		switch {
		case s.P > 0 && s.Probability > 0:
			c.fail(f, "do: loss takes probability (random loss) or p and r (Gilbert-Elliott bursts), not both")
		case s.P > 0 && s.R <= 0:
			c.fail(f+".r", "Gilbert-Elliott loss needs r, the chance per packet to leave the bad state")
		case s.P == 0 && (s.R > 0 || s.LossBad > 0 || s.LossGood > 0):
			c.fail(f+".p", "r, loss_bad and loss_good need p, the chance per packet to enter the bad state")
		case s.P == 0 && s.Probability <= 0:
			c.fail(f+".probability", "do: loss needs a probability (such as 0.05) or p and r")
		}
	case DoDuplicate:
		prob("probability", s.Probability)
		if s.Probability <= 0 {
			c.fail(f+".probability", "do: duplicate needs a probability, such as 0.01")
		}
	case DoReorder:
		if s.Window < 2 {
			c.fail(f+".window", "do: reorder needs a window of at least 2 packets")
		}
		if s.Hold < 0 {
			c.fail(f+".hold", "must not be negative")
		}
	case DoNATIdle:
		if s.Idle <= 0 {
			c.fail(f+".idle", "do: nat_idle needs idle, the NAT's idle timeout, such as 120s")
		}
	}
	if (s.Do == DoNATIdle || s.Do == DoNATRebind) && s.Direction != "" && s.Direction != "both" {
		c.fail(f+".direction", "do: %s acts on the whole link; leave direction out", s.Do)
	}
	if s.Burst < 0 {
		c.fail(f+".burst", "must not be negative")
	}
}

// linkFault fills in the proxy fault of a link fault step.
func linkFault(s *Step, f *netem.Fault) {
	f.Packets = s.Packets
	switch s.Do {
	case DoLoss:
		f.Kind, f.Probability, f.P, f.R, f.LossBad, f.LossGood = netem.Loss, s.Probability, s.P, s.R, s.LossBad, s.LossGood
	case DoDuplicate:
		f.Kind, f.Probability = netem.Duplicate, s.Probability
	case DoReorder:
		f.Kind, f.Window, f.Hold = netem.Reorder, s.Window, s.Hold.D()
	case DoNATIdle:
		f.Kind, f.Idle = netem.NATIdle, s.Idle.D()
	case DoNATRebind:
		f.Kind = netem.NATRebind
	}
}

// describeLinkFault is the parameter part of a step's one-line description.
func describeLinkFault(s *Step) string {
	d := ""
	switch s.Do {
	case DoLoss:
		if s.P > 0 {
			d = fmt.Sprintf(" p=%g r=%g loss_bad=%g loss_good=%g", s.P, s.R, s.LossBad, s.LossGood)
		} else {
			d = fmt.Sprintf(" probability=%g", s.Probability)
		}
	case DoDuplicate:
		d = fmt.Sprintf(" probability=%g", s.Probability)
	case DoReorder:
		d = fmt.Sprintf(" window=%d", s.Window)
		if s.Hold > 0 {
			d += " hold=" + s.Hold.String()
		}
	case DoNATIdle:
		d = " idle=" + s.Idle.String()
	case DoBandwidth:
		if s.Burst > 0 {
			d = fmt.Sprintf(" burst=%dB", s.Burst)
		}
	}
	if len(s.Packets) > 0 {
		d += " packets=" + strings.Join(s.Packets, ",")
	}
	return d
}

// netemCounters are the results counters of what the proxy's link faults did.
var netemCounters = []string{"netem_packets", "netem_dropped", "netem_duplicated", "netem_reordered", "netem_nat_dropped"}

func init() {
	for _, n := range netemCounters {
		scenarioCounters = append(scenarioCounters, n, n+"_up", n+"_down")
	}
}

// addNetemCounts writes what the proxy's loss, duplicate, reorder and NAT
// faults did over the run into the results counters, in total and per
// direction (up: device to broker), so a verdict and the report can set
// the link's losses beside the messages lost or recovered. Absent without
// a proxy.
//
// The same counters per group or client behind the proxy are named
// <counter>:<name> (netem_dropped_down:sub0), for assertions about one
// client's link, and are added to that group's counters in the results.
func addNetemCounts(res *reports.Results, px *netem.Proxy, sc *Scenario) {
	if px == nil {
		return
	}
	c := px.Counts()
	if res.Counters == nil {
		res.Counters = map[string]int64{}
	}
	put := func(into map[string]int64, suffix string, up, down netem.Counts) {
		for k, v := range (netem.CountsReport{Up: up, Down: down}).Counters() {
			into[k+suffix] = v
		}
	}
	put(res.Counters, "", c.Up, c.Down)
	// A group's links are in proxy groups named after it (one per device: "name#3").
	type pair struct{ up, down netem.Counts }
	by := map[string]*pair{}
	for _, n := range sc.proxyNames() {
		by[n] = &pair{}
	}
	for _, lc := range c.Links {
		name, _, _ := strings.Cut(lc.Group, "#")
		if p := by[name]; p != nil {
			p.up, p.down = p.up.Add(lc.Up), p.down.Add(lc.Down)
		}
	}
	for name, p := range by {
		put(res.Counters, ":"+name, p.up, p.down)
		if g := res.Groups[name]; g != nil && (!p.up.Zero() || !p.down.Zero()) {
			if g.Counters == nil {
				g.Counters = map[string]int64{}
			}
			put(g.Counters, "", p.up, p.down)
		}
	}
}

// proxyNames lists the groups and clients behind the fault proxy.
func (sc *Scenario) proxyNames() []string {
	var out []string
	for _, g := range sc.Groups {
		if g.Proxy {
			out = append(out, g.Name)
		}
	}
	for _, cl := range sc.Clients {
		if cl.Proxy {
			out = append(out, cl.Name)
		}
	}
	return out
}

// isNetemGroupCounter says whether name is a link fault counter of one
// group or client behind the proxy, such as netem_dropped_down:sub0.
func (sc *Scenario) isNetemGroupCounter(name string) bool {
	base, who, ok := strings.Cut(name, ":")
	return ok && oneOf(base, scenarioCounters) && strings.HasPrefix(base, "netem_") && oneOf(who, sc.proxyNames())
}

// linkNote says what the fault proxy did on the links of a delivery check's
// publishers and receivers, so a verdict reads "0 lost ...; the links of sub1
// dropped 20 packets": what QoS recovered, beside what it had to recover.
// Empty when no link fault counted anything there.
func (sc *Scenario) linkNote(a *Assertion, evs []events.Event, counters map[string]int64) string {
	behind := map[string]bool{}
	for _, n := range sc.proxyNames() {
		behind[n] = true
	}
	from := a.From.match()
	toM := *a.To
	toM.Kind = nil
	to := toM.match()
	seen := map[string]bool{}
	var names []string
	for _, e := range evs {
		if behind[e.Group] && !seen[e.Group] && (from(e) || to(e)) {
			seen[e.Group] = true
			names = append(names, e.Group)
		}
	}
	sort.Strings(names)
	var dropped, doubled, moved, nat int64
	for _, n := range names {
		dropped += counters["netem_dropped:"+n]
		doubled += counters["netem_duplicated:"+n]
		moved += counters["netem_reordered:"+n]
		nat += counters["netem_nat_dropped:"+n]
	}
	if dropped+doubled+moved+nat == 0 {
		return ""
	}
	var parts []string
	for _, p := range []struct {
		n    int64
		what string
	}{{dropped, "dropped %d packets"}, {doubled, "doubled %d"}, {moved, "reordered %d"}, {nat, "lost %d reads to a forgotten NAT mapping"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf(p.what, p.n))
		}
	}
	return fmt.Sprintf("; the links of %s %s (netem)", strings.Join(names, ", "), strings.Join(parts, ", "))
}
