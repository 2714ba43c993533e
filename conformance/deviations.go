package conformance

import (
	"slices"
	"strings"

	"github.com/mqttfleet/mqttfleet/targets"
)

// Deviation is a statement a target is known not to meet; the table is
// shared with scenarios (targets.Deviations). In conformance an entry with
// Spec set applies to the specs whose text contains it.
type Deviation = targets.Deviation

// profiles maps a target name to the Deviations entry it uses instead of
// its own, so a broker reached by URL can carry a known broker's table.
var profiles = map[string]string{}

// UseDeviations makes target use the deviations declared for profile (for
// example a tcp:// target that is a Mosquitto 2.0.11 the user runs). Call it
// before RunSpecs.
func UseDeviations(target, profile string) error {
	if err := targets.DeviationTable(profile); err != nil {
		return err
	}
	profiles[target] = profile
	return nil
}

// deviationFor returns the declared deviation of target for spec d.
func deviationFor(target string, d specDef) (Deviation, bool) {
	if p, ok := profiles[target]; ok {
		target = p
	}
	for _, dev := range targets.Deviations[target] {
		if dev.Spec != "" && !strings.Contains(d.Text, dev.Spec) {
			continue
		}
		// Spec is what narrows an entry here; With narrows it for scenario
		// assertions, which have no spec text. (Citing the trigger's
		// statement in a spec would mark that statement deviated in the
		// matrix too, though the broker meets it.)
		if slices.Contains(d.Statements, dev.Statement) {
			return dev, true
		}
	}
	return Deviation{}, false
}
