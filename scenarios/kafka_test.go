package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kafkaBase is a valid Kafka scenario the bad cases edit; line 1 is
// "name: kafka-base".
const kafkaBase = `name: kafka-base
groups:
  - name: devices
    count: 2
    publish: {interval: 50ms, count: 5, topic: "fleet/{{.Index}}/t", qos: 1}
kafka:
  topics:
    - {name: telemetry, partitions: 2}
  bridges:
    - name: bridge
      filters: ["fleet/+/t"]
      qos: 1
      topic: telemetry
      mode: sync
      acks: all
  watchers:
    - name: kwatch
      topic: telemetry
      commit: auto
steps:
  - name: fail
    do: kafka_fail_produce
    error: NOT_LEADER_FOR_PARTITION
    for: 1s
assertions:
  - name: delivered
    expect: delivery
    from: {group: devices}
    to: {client: kwatch}
    order: per-key
`

// TestBadKafkaScenarios: mistakes in the kafka section, its steps and the
// delivery order fields name the file, line and field.
func TestBadKafkaScenarios(t *testing.T) {
	cases := []struct {
		name     string
		from, to string
		line     int
		field    string
		msg      string
	}{
		{"unknown acks", "acks: all", "acks: al", 15, "kafka.bridges[0].acks", `did you mean "all"`},
		{"unknown mode", "mode: sync", "mode: synch", 14, "kafka.bridges[0].mode", `did you mean "sync"`},
		{"idempotent without acks all", "acks: all", "acks: \"1\"\n      idempotent: true", 16, "kafka.bridges[0].idempotent", "needs acks: all"},
		{"undrained on a sync bridge", "acks: all", "acks: all\n      undrained: true", 16, "kafka.bridges[0].undrained", "mode: async"},
		{"bridge to an unknown topic", "topic: telemetry\n      mode", "topic: telemetri\n      mode", 13, "kafka.bridges[0].topic", `no topic "telemetri"`},
		{"bridge without filters", `      filters: ["fleet/+/t"]` + "\n", "", 10, "kafka.bridges[0].filters", "needs MQTT topic filters"},
		{"bad filter", `"fleet/+/t"]`, `"fleet/#/t"]`, 11, "kafka.bridges[0].filters[0]", "MQTT-4.7.1"},
		{"unknown commit mode", "commit: auto", "commit: sometimes", 19, "kafka.watchers[0].commit", "auto or after"},
		{"watcher named like a group", "- name: kwatch", "- name: devices", 17, "kafka.watchers[0].name", "already the name of a group"},
		{"unknown Kafka error", "error: NOT_LEADER_FOR_PARTITION", "error: NOT_A_LEADER", 23, "steps[0].error", "unknown Kafka error"},
		{"external cluster without bootstrap", "kafka:\n", "kafka:\n  cluster: {kind: external}\n", 7, "kafka.cluster.bootstrap", "needs bootstrap"},
		{"crash of an unknown watcher", "    do: kafka_fail_produce\n    error: NOT_LEADER_FOR_PARTITION\n    for: 1s\n",
			"    do: kafka_crash_watcher\n    watcher: kwatcher\n", 23, "steps[0].watcher", `no kafka watcher named "kwatcher"`},
		{"unknown order", "order: per-key", "order: per-device", 30, "assertions[0].order", "per-key"},
		{"max_out_of_order without order", "order: per-key", "max_out_of_order: 2", 30, "assertions[0].max_out_of_order", "needs order: per-key"},
		{"kafka step without a kafka section", "kafka:\n  topics:\n    - {name: telemetry, partitions: 2}\n  bridges:\n    - name: bridge\n      filters: [\"fleet/+/t\"]\n      qos: 1\n      topic: telemetry\n      mode: sync\n      acks: all\n  watchers:\n    - name: kwatch\n      topic: telemetry\n      commit: auto\n",
			"", 8, "steps[0].do", "needs a kafka: section"},
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(good, []byte(kafkaBase), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(good, nil); err != nil {
		t.Fatalf("the base scenario must be valid: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(kafkaBase, tc.from) {
				t.Fatalf("case edits text the base does not have: %q", tc.from)
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(kafkaBase, tc.from, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil)
			if err == nil {
				t.Fatalf("loaded; want an error at line %d", tc.line)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			for _, e := range err.(Errors) {
				if e.Field == tc.field {
					se = e
				}
			}
			t.Log(err)
			if se.File != path || se.Line != tc.line || se.Field != tc.field || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("got %s:%d %s: %s; want line %d, field %s, message with %q", se.File, se.Line, se.Field, se.Msg, tc.line, tc.field, tc.msg)
			}
		})
	}
}
