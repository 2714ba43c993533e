package conformance

// Deviation is a statement a target is known not to meet. A spec citing it
// that fails on that target is recorded as "deviation" and does not fail the
// run; one that passes is recorded as "deviation-not-reproduced" so the table
// gets revisited. A failure of any statement not declared still fails.
type Deviation struct {
	Reason string // what the broker does instead, in a line
	Doc    string // link to the write-up
}

// deviationsDoc is where each deviation is written up with its packet trace.
const deviationsDoc = "docs/deviations.md"

// Deviations holds the expected deviations per target name and statement ID.
// Only third-party brokers appear here: a failure of the reference broker is
// a bug to fix, never an expected deviation.
var Deviations = map[string]map[string]Deviation{
	"mosquitto": {},
}

// deviationFor returns the declared deviation of target for any of the
// statements, and the statement it is declared for.
func deviationFor(target string, statements []string) (Deviation, string, bool) {
	for _, id := range statements {
		if d, ok := Deviations[target][id]; ok {
			return d, id, true
		}
	}
	return Deviation{}, "", false
}
