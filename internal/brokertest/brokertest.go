// Package brokertest runs the reference broker in-process for the tests of
// other packages: on loopback ports the kernel picks, closed when the test
// ends. The broker package's own tests have their own helper, with access
// to its internals.
package brokertest

import (
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/broker"
)

// Start runs a broker with the default configuration and one TCP listener
// on 127.0.0.1:0; edit, if not nil, changes the configuration first (other
// listeners, an event sink). The broker is closed in tb.Cleanup.
func Start(tb testing.TB, edit func(*broker.Config)) *broker.Broker {
	tb.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Name: "tcp", Type: "tcp", Addr: "127.0.0.1:0"}}
	if edit != nil {
		edit(&cfg)
	}
	b, err := broker.New(cfg)
	if err != nil {
		tb.Fatalf("new reference broker: %v", err)
	}
	if err := b.Start(); err != nil {
		tb.Fatalf("start reference broker: %v", err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// TCP returns the host:port of b's first TCP listener.
func TCP(b *broker.Broker) string {
	return strings.TrimPrefix(b.Addr("tcp"), "tcp://")
}
