package conformance

import (
	"fmt"
	"strings"
)

// CoverageLine is the coverage figure in one line, as printed after a run.
func (m *Matrix) CoverageLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conformance coverage: %d of %d server-side MQTT 3.1.1 statements covered by specs",
		m.Coverage.Covered, m.Coverage.ServerSide)
	for _, t := range m.Targets {
		fmt.Fprintf(&b, "; %s: %d verified", t, m.Coverage.Verified[t])
	}
	if v5 := m.Coverage.V5; v5 != nil {
		fmt.Fprintf(&b, "\nconformance coverage: %d of %d server-side MQTT 5.0 statements covered by specs", v5.Covered, v5.ServerSide)
		for _, t := range m.Targets {
			fmt.Fprintf(&b, "; %s: %d verified", t, v5.Verified[t])
		}
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
