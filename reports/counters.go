package reports

import "strings"

// CollectorCounters lists every counter a Collector's Results holds: the
// fleet's view, "events", and for the broker's own events the same names
// prefixed "broker_" (present when the broker's events were in the stream).
// Scenario validation checks `expect: counter` names against it before a
// run, rather than after.
func CollectorCounters() []string {
	out := append([]string(nil), counterNames[:]...)
	out = append(out, "events")
	for _, n := range counterNames {
		out = append(out, "broker_"+n)
	}
	return out
}

// IsCollectorCounter says whether name is one of CollectorCounters, or a
// reason-code counter (IsRCCounter), which a Collector holds for every code
// the fleet received.
func IsCollectorCounter(name string) bool {
	if name == "events" || IsRCCounter(name) {
		return true
	}
	base := strings.TrimPrefix(name, "broker_")
	for _, n := range counterNames {
		if n == base {
			return true
		}
	}
	return false
}
