package simulator

import (
	"net"
	"testing"

	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/internal/mosquittotest"
)

// target is a broker under test: its address.
type target struct {
	name  string
	start func(t *testing.T) string
}

var targets = []target{
	{"reference", func(t *testing.T) string { return startReference(t) }},
	{"mosquitto", startMosquitto},
}

// startReference runs the in-process reference broker on a free port.
func startReference(t testing.TB) string {
	t.Helper()
	return brokertest.Start(t, nil).Addr("tcp")
}

// startMosquitto runs a Mosquitto process on a free loopback port, with
// the settings these tests were written against: any keepalive accepted,
// a deep queue per subscriber.
func startMosquitto(t *testing.T) string {
	t.Helper()
	return mosquittotest.Start(t, mosquittotest.Config(
		"persistence false", "max_keepalive 65535", "max_queued_messages 100000")).Addr
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
