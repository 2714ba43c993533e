package bridge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/testcerts"
)

// TestTLS: with bridge_cafile the bridge dials the remote over TLS and
// verifies it; a remote whose certificate another CA signed is refused.
func TestTLS(t *testing.T) {
	cloudCerts := testcerts.New(t, "cloud")
	ca, cert, key := cloudCerts.CA, cloudCerts.Cert, cloudCerts.Key
	otherCA := testcerts.New(t, "other").CA
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Type: "tls", Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key}}
	cloudB, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cloudB.Start(); err != nil {
		t.Fatal(err)
	}
	defer cloudB.Close()
	cloud := strings.TrimPrefix(cloudB.Addr("tls"), "tls://")

	rec := newRecorder()
	_, edge := startBroker(t, rec,
		bridgeconf.Config{Name: "good", Addresses: []string{cloud}, CAFile: ca, Topics: rules(t, "a/# out 1")},
		bridgeconf.Config{Name: "bad", Addresses: []string{cloud}, CAFile: otherCA, Topics: rules(t, "b/# out 1"),
			RestartTimeout: bridgeconf.Duration(time.Hour)})
	rec.wait(t, 10*time.Second, 1, "the good bridge up", func(e events.Event) bool { return e.Kind == events.LinkOpened && e.Link == "good" })
	rec.wait(t, 10*time.Second, 1, "the bad bridge refused", func(e events.Event) bool {
		return e.Kind == events.LinkClosed && e.Link == "bad" && strings.Contains(e.Detail, "certificate")
	})
	if n := rec.count(func(e events.Event) bool { return e.Kind == events.LinkOpened && e.Link == "bad" }); n != 0 {
		t.Errorf("the bridge trusting another CA connected %d times", n)
	}
	_ = edge
}
