package kafka

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine of the cluster, the bridges (sarama) or
// the watchers (kgo) outlives the tests' Close calls.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
