package packet

// ValidFixture is a valid entry of the shared fixture table, exported for the
// external peer cross-check (peer_fixtures_test.go).
type ValidFixture struct {
	Name    string
	Version byte
	Raw     []byte
	Want    Packet
}

// ValidFixtures returns the valid fixtures of the shared table.
func ValidFixtures() []ValidFixture {
	var out []ValidFixture
	for _, f := range allFixtures() {
		if f.want != nil && f.max == 0 {
			out = append(out, ValidFixture{f.name, f.version, f.bytes(), f.want})
		}
	}
	return out
}

// FuzzSeeds are the seeds of FuzzDecode311 and FuzzDecode5, for the coverage
// check in fuzzseeds_test.go.
var FuzzSeeds = fuzzSeeds
