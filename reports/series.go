package reports

import (
	"fmt"
	"time"

	"github.com/mqttfleet/mqttfleet/histogram"
)

// Column names of Series.Columns. All are per-second counts except the
// gauge "connected", which is the value at the end of the second.
const (
	ColConnected       = "connected"        // gauge: live fleet connections
	ColConnects        = "connects"         // CONNACK accepted
	ColConnectFailures = "connect_failures" // CONNACK refused
	ColDisconnects     = "disconnects"      // connections ended (fleet view)
	ColTakeovers       = "takeovers"        // client-ID takeovers
	ColSent            = "sent"             // PUBLISH written by the fleet
	ColReceived        = "received"         // PUBLISH read by the fleet
	ColAcked           = "acked"            // QoS 1/2 flows completed
	ColLost            = "lost"             // messages lost, at the second they were sent (the writer's accounting)
	ColDup             = "dup"              // extra copies received
	ColDropped         = "dropped"          // Drop events (any source)
	// The Kafka leg (device -> MQTT -> bridge -> Kafka -> watcher).
	ColKafkaProduced = "kafka_produced" // records the bridge produced (acknowledged by Kafka)
	ColKafkaFailed   = "kafka_failed"   // records the bridge gave up on
	ColKafkaConsumed = "kafka_consumed" // records the watchers read
	ColKafkaLag      = "kafka_lag"      // gauge: records produced and not yet read by the slowest watcher
)

// columnOrder fixes the order columns are written and merged in.
var columnOrder = []string{
	ColConnected, ColConnects, ColConnectFailures, ColDisconnects, ColTakeovers,
	ColSent, ColReceived, ColAcked, ColLost, ColDup, ColDropped,
	ColKafkaProduced, ColKafkaFailed, ColKafkaConsumed, ColKafkaLag,
}

// gauges are columns that hold a level rather than a count: Merge carries a
// part's last value past its end, since its connections stay up until they
// are counted down.
var gauges = map[string]bool{ColConnected: true, ColKafkaLag: true}

// SeriesLatencies names the histograms also kept per second.
var SeriesLatencies = []string{"connect_latency", "publish_ack_latency", "e2e_latency", "kafka_latency"}

// Series is a per-second time series. Index i covers the wall-clock second
// [Start+i s, Start+(i+1) s). Latency percentiles over time come from one
// histogram per second (null when the second had no sample), so merged
// shards give exactly the percentiles one run would have; Percentiles holds
// p50/p99 derived from them for readers of the file.
type Series struct {
	Start       time.Time                         `json:"start"`
	StepSeconds int                               `json:"step_s"`
	Len         int                               `json:"len"`
	Columns     map[string][]int64                `json:"columns"`
	Latency     map[string][]*histogram.Histogram `json:"latency"`
	Percentiles map[string]PercentileSeries       `json:"percentiles"`
}

// PercentileSeries is p50 and p99 per second in nanoseconds, 0 where the
// second had no sample. Derived from Series.Latency.
type PercentileSeries struct {
	P50 []int64 `json:"p50_ns"`
	P99 []int64 `json:"p99_ns"`
}

// Time returns the start of second i.
func (s *Series) Time(i int) time.Time { return s.Start.Add(time.Duration(i) * time.Second) }

// derive recomputes Percentiles from Latency.
func (s *Series) derive() {
	s.Percentiles = map[string]PercentileSeries{}
	for name, hs := range s.Latency {
		ps := PercentileSeries{P50: make([]int64, s.Len), P99: make([]int64, s.Len)}
		for i, h := range hs {
			if h != nil && h.Count() > 0 {
				ps.P50[i] = int64(h.Percentile(50))
				ps.P99[i] = int64(h.Percentile(99))
			}
		}
		s.Percentiles[name] = ps
	}
}

// check rejects a series whose columns do not match its length.
func (s *Series) check() error {
	if s.StepSeconds != 1 {
		return fmt.Errorf("series step %d s: only 1 s is supported", s.StepSeconds)
	}
	for name, c := range s.Columns {
		if len(c) != s.Len {
			return fmt.Errorf("series column %q has %d values, len is %d", name, len(c), s.Len)
		}
	}
	for name, c := range s.Latency {
		if len(c) != s.Len {
			return fmt.Errorf("series latency %q has %d seconds, len is %d", name, len(c), s.Len)
		}
	}
	return nil
}

// mergeSeries aligns parts by wall-clock second and adds them: counts add,
// per-second histograms merge, gauges add with each part's last value
// carried to the end of the merged span.
func mergeSeries(parts []*Series) *Series {
	var start, end time.Time
	for _, p := range parts {
		if p == nil || p.Len == 0 {
			continue
		}
		pe := p.Time(p.Len)
		if start.IsZero() || p.Start.Before(start) {
			start = p.Start
		}
		if pe.After(end) {
			end = pe
		}
	}
	if start.IsZero() {
		return nil
	}
	n := int(end.Sub(start) / time.Second)
	out := &Series{Start: start, StepSeconds: 1, Len: n, Columns: map[string][]int64{}, Latency: map[string][]*histogram.Histogram{}}
	for _, p := range parts {
		if p == nil || p.Len == 0 {
			continue
		}
		off := int(p.Start.Sub(start) / time.Second)
		for name, col := range p.Columns {
			dst := out.Columns[name]
			if dst == nil {
				dst = make([]int64, n)
				out.Columns[name] = dst
			}
			for i, v := range col {
				dst[off+i] += v
			}
			if gauges[name] && len(col) > 0 {
				last := col[len(col)-1]
				for i := off + len(col); i < n; i++ {
					dst[i] += last
				}
			}
		}
		for name, hs := range p.Latency {
			dst := out.Latency[name]
			if dst == nil {
				dst = make([]*histogram.Histogram, n)
				out.Latency[name] = dst
			}
			for i, h := range hs {
				if h == nil || h.Count() == 0 {
					continue
				}
				if dst[off+i] == nil {
					dst[off+i] = histogram.New()
				}
				dst[off+i].Merge(h)
			}
		}
	}
	out.derive()
	return out
}
