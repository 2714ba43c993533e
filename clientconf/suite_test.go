package clientconf

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/reports"
)

// allDrivers are the four clients the suite grades in make test.
var allDrivers = []Driver{Paho{}, Native{}, Mosquitto{}, PythonPaho{}}

func probesFromEnv() []string {
	if v := os.Getenv("MQTTFLEET_PROBES"); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

// TestClients runs the whole suite against the four clients and holds each
// to its declared deviations: an undeclared failure fails the test, and
// each available client must have at least 60 statements and behaviours
// graded.
func TestClients(t *testing.T) {
	t.Parallel()
	gradeClients(t, packet.V311)
}

// gradeClients runs the suite at one protocol level against the four
// clients and holds each to its declared deviations.
func gradeClients(t *testing.T, proto byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res := Run(ctx, Options{Drivers: allDrivers, Probes: probesFromEnv(), Protocols: []byte{proto}})
	for client, why := range res.Skipped {
		t.Logf("skipped %s: %s", client, why)
	}
	rm := res.Results().Conformance
	for _, client := range res.Clients {
		cov := rm.Coverage[client]
		t.Logf("%s: %d graded: %d pass, %d fail, %d deviation", client, cov.Tested, cov.Pass, cov.Fail, cov.Deviation)
		for _, st := range rm.Statements {
			c := rm.Cell(client, st.ID)
			if c.Status == reports.CellFail {
				t.Errorf("%s %s: undeclared failure:\n%s", client, st.ID, c.Reason)
			}
			if testing.Verbose() && c.Status != reports.CellPass {
				t.Logf("%s %s %s: %s", client, st.ID, c.Status, firstLines(c.Reason, 2))
			}
		}
		if len(probesFromEnv()) == 0 && cov.Tested < 60 {
			t.Errorf("%s: %d statements and behaviours graded, want at least 60", client, cov.Tested)
		}
	}
}

func firstLines(s string, n int) string {
	l := strings.SplitN(s, "\n", n+1)
	return strings.Join(l[:min(n, len(l))], " | ")
}

// TestClientsV5 is TestClients at protocol level 5 for the clients that
// speak it.
func TestClientsV5(t *testing.T) {
	t.Parallel()
	gradeClients(t, packet.V5)
}
