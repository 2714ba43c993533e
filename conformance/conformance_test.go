package conformance_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/conformance"
	"github.com/mqttfleet/mqttfleet/targets"
)

// TestConformance runs the suite against the targets in MQTTFLEET_TARGETS
// (default "inprocess,mosquitto,nats,rabbitmq", where a target that cannot run here is
// skipped with its reason; a target named in the variable must run) and
// writes results.json, junit.xml and report.html to
// MQTTFLEET_CONFORMANCE_OUT when set. MQTTFLEET_DEVIATIONS=mosquitto gives
// targets without a table of their own (a tcp:// URL) Mosquitto's.
func TestConformance(t *testing.T) {
	names := os.Getenv("MQTTFLEET_TARGETS")
	explicit := names != ""
	if !explicit {
		names = "inprocess,mosquitto,nats,rabbitmq"
	}
	ts, err := targets.List(names)
	if err != nil {
		t.Fatalf("MQTTFLEET_TARGETS: %v", err)
	}
	if explicit {
		// Targets the user named must run: one that cannot is a failure
		// of the run, not 89 quiet skips. The default list skips them
		// with the reason, so `go test ./...` passes where Docker is not.
		for _, tg := range ts {
			if err := targets.Check(context.Background(), tg); err != nil {
				t.Fatalf("MQTTFLEET_TARGETS names %s, which cannot run here: %v", tg.Name(), err)
			}
		}
	}
	var outs conformance.Outputs
	if dir := os.Getenv("MQTTFLEET_CONFORMANCE_OUT"); dir != "" {
		outs = conformance.OutputsInDir(dir)
	}
	if profile := os.Getenv("MQTTFLEET_DEVIATIONS"); profile != "" {
		for _, tg := range ts {
			if _, own := targets.Deviations[tg.Name()]; !own {
				if err := conformance.UseDeviations(tg.Name(), profile); err != nil {
					t.Fatalf("MQTTFLEET_DEVIATIONS: %v", err)
				}
			}
		}
	}
	conformance.Define(ts)
	conformance.ReportTo(outs)
	RegisterFailHandler(Fail)
	// Colour only for a person at a terminal: go test's output is usually a
	// CI log or a file, and NO_COLOR always wins.
	suite, rep := GinkgoConfiguration()
	fi, err := os.Stdout.Stat()
	rep.NoColor = os.Getenv("NO_COLOR") != "" || err != nil || fi.Mode()&os.ModeCharDevice == 0
	RunSpecs(t, "MQTT 3.1.1 and 5.0 conformance", suite, rep)
}
