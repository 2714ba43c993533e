package conformance

import (
	"fmt"
	"strings"
)

// Deviation is a statement a target is known not to meet, in the specs
// whose text contains Spec (all specs citing the statement when Spec is
// empty). A matching spec that fails on that target is recorded as
// "deviation" and does not fail the run; one that passes is recorded as
// "not-reproduced" so the table gets revisited. A failure nobody declared
// still fails.
type Deviation struct {
	Statement string // normative statement ID
	Spec      string // substring of the spec text it applies to; "" for all
	Reason    string // what the broker does instead, in a line
	Doc       string // link to the write-up with the packet trace
}

// Deviations holds the expected deviations per target name. Only
// third-party brokers appear here: a failure of the reference broker is a
// bug to fix, never an expected deviation.
var Deviations = map[string][]Deviation{
	"mosquitto": {
		{
			Statement: "MQTT-2.2.2-2", Spec: "PINGREQ with a reserved flag bit set",
			Reason: "Mosquitto 2.0.11 answers a PINGREQ with flags 0001 with PINGRESP instead of closing the connection",
			Doc:    "docs/deviations.md#mosquitto-reserved-flags-pingreq-puback",
		},
		{
			Statement: "MQTT-2.2.2-2", Spec: "PUBACK with a reserved flag bit set",
			Reason: "Mosquitto 2.0.11 accepts a PUBACK with flags 0010 and keeps the connection open",
			Doc:    "docs/deviations.md#mosquitto-reserved-flags-pingreq-puback",
		},
		{
			Statement: "MQTT-3.1.2-8", Spec: "closes the connection after a second CONNECT",
			Reason: "Mosquitto 2.0.11 closes the connection on a second CONNECT but does not publish the will (it does after other protocol errors)",
			Doc:    "docs/deviations.md#mosquitto-no-will-after-second-connect",
		},
		{
			Statement: "MQTT-3.1.2-24", Spec: "silent for 1.5 times its keepalive",
			Reason: "Mosquitto 2.0.11 checks keepalives about every 5 s, so with Keep Alive 1 it disconnects 3.5 to 6.5 s after the last packet instead of 1.5 s",
			Doc:    "docs/deviations.md#mosquitto-keepalive-granularity",
		},
	},
}

// profiles maps a target name to the Deviations entry it uses instead of
// its own, so a broker reached by URL can carry a known broker's table.
var profiles = map[string]string{}

// UseDeviations makes target use the deviations declared for profile (for
// example a tcp:// target that is a Mosquitto 2.0.11 the user runs). Call it
// before RunSpecs.
func UseDeviations(target, profile string) error {
	if _, ok := Deviations[profile]; !ok {
		return fmt.Errorf("no deviations declared for %q", profile)
	}
	profiles[target] = profile
	return nil
}

// deviationFor returns the declared deviation of target for spec d.
func deviationFor(target string, d specDef) (Deviation, bool) {
	if p, ok := profiles[target]; ok {
		target = p
	}
	for _, dev := range Deviations[target] {
		if dev.Spec != "" && !strings.Contains(d.Text, dev.Spec) {
			continue
		}
		for _, id := range d.Statements {
			if id == dev.Statement {
				return dev, true
			}
		}
	}
	return Deviation{}, false
}
