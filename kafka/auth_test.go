package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/internal/testcerts"
)

// TestAuth: against a cluster that requires SASL PLAIN over TLS, the bridge
// and a watcher with the right settings carry every record; a watcher with
// a wrong password or without TLS reads nothing; bad settings are refused
// before anything dials.
func TestAuth(t *testing.T) {
	certs := testcerts.New(t, "kafka")
	srvTLS, caFile := certs.Server, certs.CA
	cl, err := StartCluster(ClusterConfig{Brokers: 1, Topics: []Topic{{Name: "telemetry", Partitions: 1}},
		SASLUsers: map[string]string{"edge": "s3cret"}, TLS: srvTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := &Auth{SASL: SASLPlain, User: "edge", Password: "s3cret", TLS: true, CAFile: caFile}
	br := brokertest.Start(t, nil)
	bridge, err := StartBridge(ctx, BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+/t"}, QoS: 1,
		Brokers: cl.Addrs(), Topic: "telemetry", Mode: ModeSync, Acks: "all", KeyLevel: 1, Auth: good})
	if err != nil {
		t.Fatal(err)
	}
	defer bridge.Close()
	var read, wrongRead, plainRead atomic.Int64
	watch := func(name string, a *Auth, n *atomic.Int64) {
		w, err := StartWatcher(WatcherConfig{Name: name, Brokers: cl.Addrs(), Topic: "telemetry", Group: name, Auth: a,
			Sink: SinkFunc(func(Delivery) { n.Add(1) })})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
	}
	watch("good", good, &read)
	watch("wrong-password", &Auth{SASL: SASLPlain, User: "edge", Password: "nope", TLS: true, CAFile: caFile}, &wrongRead)
	watch("no-tls", &Auth{SASL: SASLPlain, User: "edge", Password: "s3cret"}, &plainRead)
	dev, _, err := client.Dial(ctx, brokertest.TCP(br), client.Options{ClientID: "dev", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Disconnect(context.Background())
	for i := range 20 {
		if err := dev.Publish(ctx, fmt.Sprintf("fleet/d%d/t", i%3), 1, false, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for read.Load() < 20 {
		if ctx.Err() != nil {
			t.Fatalf("the authenticated watcher read %d of 20 (bridge %+v)", read.Load(), bridge.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := bridge.Stats(); st.Produced != 20 || st.Failed != 0 {
		t.Errorf("bridge %+v, want 20 produced", st)
	}
	if wrongRead.Load() != 0 || plainRead.Load() != 0 {
		t.Errorf("a watcher with a wrong password read %d, one without TLS %d: want 0", wrongRead.Load(), plainRead.Load())
	}
	for _, bad := range []*Auth{{SASL: "GSSAPI", User: "u"}, {SASL: SASLPlain}, {CAFile: caFile}} {
		if _, err := StartWatcher(WatcherConfig{Name: "bad", Brokers: cl.Addrs(), Topic: "telemetry", Auth: bad}); err == nil {
			t.Errorf("auth %+v accepted", bad)
		}
	}
}
