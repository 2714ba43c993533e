package packet

import (
	"runtime"
	"testing"
)

// runtimeMem measures heap bytes allocated by a function.
type runtimeMem struct{}

// check fails the test when f allocates limit bytes or more.
func (runtimeMem) check(t *testing.T, f func(), limit uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d >= limit {
		t.Fatalf("allocated %d bytes, limit %d", d, limit)
	}
}
