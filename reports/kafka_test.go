package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// TestKafkaLeg: the Kafka leg's events fill their own series (produced,
// read, failed, the slowest watcher's lag) and latency, apart from the MQTT
// leg's, and the report draws them; a run without them draws none.
func TestKafkaLeg(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	c := NewCollector(KindScenario, Run{Name: "k"})
	emit := func(sec int, kind events.Kind, src events.Source, watcher string, lat time.Duration) {
		c.Emit(events.Event{Time: t0.Add(time.Duration(sec) * time.Second), Kind: kind, Source: src, ClientID: watcher, Latency: lat})
	}
	for range 10 {
		emit(0, events.KafkaProduced, events.SourceKafka, "", 0)
	}
	for range 4 {
		emit(0, events.PublishReceived, events.SourceKafka, "fast", 20*time.Millisecond)
	}
	for range 6 {
		emit(1, events.PublishReceived, events.SourceKafka, "fast", 30*time.Millisecond)
	}
	for range 10 {
		emit(2, events.PublishReceived, events.SourceKafka, "slow", 2*time.Second)
	}
	emit(1, events.KafkaFailed, events.SourceKafka, "", 0)
	emit(1, events.PublishReceived, events.SourceClient, "mqtt-app", 5*time.Millisecond)
	r := c.Results()
	s := r.Series
	for name, want := range map[string][]int64{
		ColKafkaProduced: {10, 0, 0},
		ColKafkaConsumed: {4, 6, 10},
		ColKafkaFailed:   {0, 1, 0},
		// slow has read nothing until second 2: its lag is the whole 10.
		ColKafkaLag: {10, 10, 0},
		ColReceived: {0, 1, 0},
	} {
		if got := s.Columns[name]; !equalInts(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n := r.Histograms["kafka_latency"].Count(); n != 20 {
		t.Errorf("kafka_latency samples %d, want 20", n)
	}
	if n := r.Histograms["e2e_latency"].Count(); n != 1 {
		t.Errorf("e2e_latency samples %d, want 1 (the MQTT receipt only)", n)
	}
	if r.Counters["kafka_consumed"] != 20 || r.Counters["publishes_received"] != 1 || r.Counters["kafka_failed"] != 1 {
		t.Errorf("counters %v", r.Counters)
	}
	var page bytes.Buffer
	if err := HTML(&page, r); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"chart-kafka-records", "chart-kafka-lag", "chart-kafka-latency"} {
		if !strings.Contains(page.String(), `id="`+id+`"`) {
			t.Errorf("no %s in the report", id)
		}
	}

	plain := NewCollector(KindScenario, Run{Name: "p"})
	plain.Emit(events.Event{Time: t0, Kind: events.PublishReceived, Source: events.SourceClient, ClientID: "a"})
	page.Reset()
	if err := HTML(&page, plain.Results()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "Kafka leg") {
		t.Error("a run without a Kafka leg shows Kafka charts")
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
