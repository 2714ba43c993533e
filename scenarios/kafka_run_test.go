package scenarios

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/targets"
)

// kafkaFleet is 1,000 devices -> reference broker -> bridge -> embedded
// Kafka -> consumer group, QoS 1; MODE and PARTITIONER are filled in. The
// watcher joins once the bridge has produced every record, so a partitioner
// that spreads a device over partitions shows in its order for certain.
const kafkaFleet = `name: kafka-fleet
seed: 31
groups:
  - name: devices
    count: 1000
    client_id: "dev-{{.Index}}"
    publish: {interval: 200ms, count: 5, topic: "fleet/dev-{{.Index}}/temp", qos: 1, payload: {size: 64}}
kafka:
  settle: 1m # a sync bridge under the race detector drains slowly
  topics:
    - {name: telemetry, partitions: 4}
  bridges:
    - name: bridge
      filters: ["fleet/+/temp"]
      qos: 1
      topic: telemetry
      mode: MODE
      acks: all
      idempotent: true
      partitioner: PARTITIONER
      key_level: 1
      linger: LINGER
  watchers:
    - {name: kwatch, topic: telemetry, group: fleet, commit: after, start: step}
steps:
  - do: wait
    connected: devices
    timeout: 2m
  - name: produced
    delay: 3s # 5 readings 200 ms apart: all sent by then; the watcher reads from the oldest offset anyway
    do: mark
  - name: catch-up
    do: kafka_start_watcher
    watcher: kwatch
assertions:
  - name: every record once
    expect: delivery
    from: {group: devices}
    to: {client: kwatch}
    max_lost: 0
    max_duplicates: 0
    min_messages: 5000
  - name: order per device
    expect: delivery
    from: {group: devices}
    to: {client: kwatch}
    order: per-key
    max_lost: 0
    max_duplicates: 0
`

// TestKafkaThousandDevices: every record of 1,000 QoS 1 devices is
// accounted through the bridge and a consumer group, sync and async, and
// per-device order holds with the hash partitioner and breaks with the
// random one.
func TestKafkaThousandDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 1,000 devices through Kafka take a few seconds per mode")
	}
	for _, tc := range []struct {
		mode, partitioner string
		ordered           bool
		linger            string
	}{
		// A sync producer sends one record at a time: a linger only adds
		// its wait to every record.
		{"sync", "hash", true, "0"},
		{"async", "hash", true, "5ms"},
		{"async", "random", false, "5ms"},
	} {
		t.Run(tc.mode+"-"+tc.partitioner, func(t *testing.T) {
			text := strings.NewReplacer("MODE", tc.mode, "PARTITIONER", tc.partitioner, "LINGER", tc.linger).Replace(kafkaFleet)
			sc, err := Parse([]byte(text), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			// The bridge is one subscriber taking the whole fleet: a queue deep
			// enough that the broker never drops for it, even while a sync
			// bridge under the race detector falls behind. This test is
			// about the Kafka leg.
			target := targets.NewInProcess()
			target.Config.MaxQueued = 1 << 20
			res, err := Run(ctx, sc, Options{Target: target})
			if err != nil {
				t.Fatal(err)
			}
			verdicts := map[string]reports.Verdict{}
			for _, a := range res.Assertions {
				t.Logf("%s %s: %s", a.Verdict, a.Name, a.Message)
				verdicts[a.Name] = a.Verdict
			}
			if verdicts["every record once"] != reports.Pass {
				t.Errorf("every record once: %s, want pass", verdicts["every record once"])
			}
			want := reports.Pass
			if !tc.ordered {
				want = reports.Fail
			}
			if verdicts["order per device"] != want {
				t.Errorf("order per device with the %s partitioner: %s, want %s", tc.partitioner, verdicts["order per device"], want)
			}
			// The numbers the report prints come from the same run: the
			// Kafka leg's series and the headline totals (the bridge is a
			// pipe, not a receiver owed the fleet's messages).
			c := res.Counters
			if c["lost"] != 0 || c["expected"] != c["kafka_consumed"] || c["kafka_produced"] != c["publishes_sent"] {
				t.Errorf("totals: expected %d lost %d kafka_produced %d kafka_consumed %d publishes_sent %d: want every sent message produced, read once, none lost",
					c["expected"], c["lost"], c["kafka_produced"], c["kafka_consumed"], c["publishes_sent"])
			}
			var produced, consumed int64
			for i := range res.Series.Len {
				produced += res.Series.Columns[reports.ColKafkaProduced][i]
				consumed += res.Series.Columns[reports.ColKafkaConsumed][i]
			}
			if produced != c["kafka_produced"] || consumed != c["kafka_consumed"] {
				t.Errorf("series sum produced %d consumed %d, counters %d %d", produced, consumed, c["kafka_produced"], c["kafka_consumed"])
			}
			if lag := res.Series.Columns[reports.ColKafkaLag]; lag[len(lag)-1] != 0 {
				t.Errorf("lag at the end %d, want 0 (every record read)", lag[len(lag)-1])
			}
			if h := res.Histograms["kafka_latency"]; h == nil || h.Count() != uint64(c["kafka_consumed"]) {
				t.Errorf("kafka_latency histogram %v, want one sample per record read (%d)", h, c["kafka_consumed"])
			}
			var page bytes.Buffer
			if err := reports.HTML(&page, res); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"chart-kafka-records", "chart-kafka-lag", "chart-kafka-latency"} {
				if !strings.Contains(page.String(), `id="`+id+`"`) {
					t.Errorf("report has no %s chart", id)
				}
			}
		})
	}
}

// kafkaOutage: 20 devices keep publishing while the bridge is stopped for a
// second and, later, fetches fail for half a second; CLEAN sets the bridge's
// MQTT session.
const kafkaOutage = `name: kafka-outage
seed: 37
groups:
  - name: devices
    count: 20
    client_id: "dev-{{.Index}}"
    publish: {interval: 50ms, count: 60, topic: "fleet/dev-{{.Index}}/temp", qos: 1, payload: {size: 32}}
kafka:
  topics:
    - {name: telemetry, partitions: 2}
  bridges:
    - {name: bridge, filters: ["fleet/+/temp"], qos: 1, topic: telemetry, mode: async, acks: all, key_level: 1, clean_session: CLEAN}
  watchers:
    - {name: kwatch, topic: telemetry, group: fleet, commit: after}
steps:
  - do: wait
    connected: devices
    timeout: 1m
  - name: bridge-down
    delay: 500ms
    do: kafka_stop_bridge
    bridge: bridge
  - name: bridge-up
    delay: 1s
    do: kafka_start_bridge
    bridge: bridge
  - name: fetch-fails
    delay: 300ms
    do: kafka_fail_fetch
    topic: telemetry
    for: 500ms
  - name: published
    delay: 3s
    do: mark
assertions:
  - name: every reading reached the watcher
    expect: delivery
    from: {group: devices}
    to: {client: kwatch}
    max_lost: 0
  - name: the fetch fault failed fetches
    expect: count
    events: {kind: fault_removed, source: kafka, fault: kafka_fail_fetch}
    min: 1
`

// TestKafkaBridgeStopStartAndFetchFault: a bridge stopped and started again
// with a persistent MQTT session loses nothing (the broker queued for it),
// with a clean one it loses what came while it was down; a fetch fault
// only delays the watcher.
func TestKafkaBridgeStopStartAndFetchFault(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a fleet through Kafka")
	}
	for _, tc := range []struct {
		clean string
		want  reports.Verdict
	}{{"false", reports.Pass}, {"true", reports.Fail}} {
		t.Run("clean_session="+tc.clean, func(t *testing.T) {
			sc, err := Parse([]byte(strings.ReplaceAll(kafkaOutage, "CLEAN", tc.clean)), nil)
			if err != nil {
				t.Fatal(err)
			}
			res := runLogged(t, sc, Options{}, 3*time.Minute)
			if a := assertionNamed(res, "every reading reached the watcher"); a == nil || a.Verdict != tc.want {
				t.Errorf("delivery with clean_session %s: %+v, want %s", tc.clean, a, tc.want)
			}
			if a := assertionNamed(res, "the fetch fault failed fetches"); a == nil || a.Verdict != reports.Pass {
				t.Errorf("fetch fault: %+v", a)
			}
			stops := 0
			for _, f := range res.Faults {
				if f.Kind == "kafka_bridge_stopped" {
					stops++
				}
			}
			if stops != 1 {
				t.Errorf("%d bridge-stopped fault windows in the results, want 1: %+v", stops, res.Faults)
			}
		})
	}
}

// TestKafkaPartitionWatchers: two partition consumers, one per partition,
// read every record once between them (a count over both), and being owed
// nothing in particular they do not turn the run's totals red.
func TestKafkaPartitionWatchers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a fleet through Kafka")
	}
	const file = `name: kafka-partitions
seed: 41
groups:
  - name: devices
    count: 10
    client_id: "dev-{{.Index}}"
    publish: {interval: 50ms, count: 20, topic: "fleet/dev-{{.Index}}/temp", qos: 1, payload: {size: 32}}
kafka:
  topics:
    - {name: telemetry, partitions: 2}
  bridges:
    - {name: bridge, filters: ["fleet/+/temp"], qos: 1, topic: telemetry, mode: async, acks: all, key_level: 1}
  watchers:
    - {name: p0, topic: telemetry, partitions: [0]}
    - {name: p1, topic: telemetry, partitions: [1]}
steps:
  - do: wait
    connected: devices
    timeout: 1m
  - name: published
    delay: 2s
    do: mark
assertions:
  - name: every record read once across the two partitions
    expect: count
    events: {kind: publish_received, source: kafka}
    equals: 200
`
	sc, err := Parse([]byte(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	res := runLogged(t, sc, Options{}, 2*time.Minute)
	if res.Verdict() != reports.Pass {
		t.Errorf("verdict %s, want pass", res.Verdict())
	}
	if res.Counters["lost"] != 0 || res.Counters["kafka_consumed"] != 200 {
		t.Errorf("counters lost %d kafka_consumed %d, want 0 and 200", res.Counters["lost"], res.Counters["kafka_consumed"])
	}
}
