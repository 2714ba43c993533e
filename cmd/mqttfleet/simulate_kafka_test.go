package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/kafka"
	"github.com/mqttfleet/mqttfleet/reports"
)

// TestSimulateKafkaWatch: `simulate --kafka-watch` accounts every message
// the fleet published against the records a consumer group reads from the
// topic a bridge feeds: all read with the bridge on, all lost (exit 1, the
// verdict red) when nothing bridges them; its records fill the Kafka
// series of the same results file.
func TestSimulateKafkaWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a fleet, a bridge and a Kafka cluster")
	}
	br := brokertest.Start(t, nil)
	cl, err := kafka.StartCluster(kafka.ClusterConfig{Brokers: 1, Topics: []kafka.Topic{{Name: "telemetry", Partitions: 2}, {Name: "empty", Partitions: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bridge, err := kafka.StartBridge(ctx, kafka.BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+"}, QoS: 1,
		Brokers: cl.Addrs(), Topic: "telemetry", Mode: kafka.ModeAsync, Acks: "all", KeyLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer bridge.Close()
	bootstrap := cl.Addrs()[0]
	simulate := func(topic string) (int, *reports.Results) {
		path := filepath.Join(t.TempDir(), "results.json")
		code := run([]string{"simulate", "--broker", brokertest.TCP(br), "--devices", "10", "--interval", "100ms", "--duration", "1500ms",
			"--qos", "1", "--echo=false", "--progress", "off", "--results", path, "--kafka-watch", bootstrap + "/" + topic, "--kafka-drain", "3s"})
		res, err := reports.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res.Assertions {
			t.Logf("%s %s: %s", a.Verdict, a.Name, a.Message)
		}
		return code, res
	}

	code, res := simulate("telemetry")
	c := res.Counters
	if code != reports.ExitPass || c["kafka_expected"] == 0 || c["kafka_lost"] != 0 || c["kafka_expected"] != c["publishes_sent"] {
		t.Fatalf("bridged: exit %d, counters %v: want exit 0, every published message read", code, c)
	}
	if c["kafka_consumed"] < c["kafka_expected"] {
		t.Errorf("series counters: kafka_consumed %d < expected %d", c["kafka_consumed"], c["kafka_expected"])
	}
	if h := res.Histograms["kafka_latency"]; h == nil || h.Count() == 0 {
		t.Error("no device -> Kafka latency recorded")
	}

	// Nothing is bridged to this topic: every message is lost to Kafka.
	code, res = simulate("empty")
	c = res.Counters
	if code == reports.ExitPass || c["kafka_lost"] != c["kafka_expected"] || c["kafka_expected"] == 0 {
		t.Fatalf("unbridged: exit %d, counters %v: want a failure with every message lost", code, c)
	}
	failed := false
	for _, a := range res.Assertions {
		failed = failed || (a.Verdict == reports.Fail && a.Name == "kafka: every published message read from empty")
	}
	if !failed {
		t.Error("no failing kafka verdict")
	}
}
