package conformance_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/conformance"
	"github.com/mqttfleet/mqttfleet/targets"
)

// TestConformance runs the suite against the targets in MQTTFLEET_TARGETS
// (default "inprocess,mosquitto"; a target that cannot run here is skipped
// with its reason) and writes JUnit and the matrix to
// MQTTFLEET_CONFORMANCE_OUT when set. MQTTFLEET_DEVIATIONS=mosquitto gives
// targets without a table of their own (a tcp:// URL) Mosquitto's.
func TestConformance(t *testing.T) {
	names := os.Getenv("MQTTFLEET_TARGETS")
	if names == "" {
		names = "inprocess,mosquitto"
	}
	ts, err := targets.List(names)
	if err != nil {
		t.Fatalf("MQTTFLEET_TARGETS: %v", err)
	}
	var outs conformance.Outputs
	if dir := os.Getenv("MQTTFLEET_CONFORMANCE_OUT"); dir != "" {
		outs = conformance.OutputsInDir(dir)
	}
	if profile := os.Getenv("MQTTFLEET_DEVIATIONS"); profile != "" {
		for _, tg := range ts {
			if _, own := conformance.Deviations[tg.Name()]; !own {
				if err := conformance.UseDeviations(tg.Name(), profile); err != nil {
					t.Fatalf("MQTTFLEET_DEVIATIONS: %v", err)
				}
			}
		}
	}
	conformance.Define(ts)
	conformance.ReportTo(outs)
	RegisterFailHandler(Fail)
	RunSpecs(t, "MQTT 3.1.1 conformance")
}
