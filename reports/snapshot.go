package reports

import (
	"maps"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/histogram"
)

// Results returns a snapshot of everything collected so far. It may be
// called while events still arrive; the snapshot shares nothing with the
// Collector. Run.Start and Run.End default to the first and last event
// times; fault windows still open end at Run.End.
func (c *Collector) Results() *Results {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Results{
		SchemaVersion: SchemaVersion,
		Kind:          c.kind,
		Run:           c.run,
		Counters:      map[string]int64{},
		Histograms:    map[string]*histogram.Histogram{},
		Disconnects:   maps.Clone(c.disc),
		Faults:        append([]FaultWindow(nil), c.faults...),
		Events: EventsSummary{
			Total: c.total, ByKind: maps.Clone(c.byKind), BySource: maps.Clone(c.bySource),
			First: append([]events.Event(nil), c.first...), Notable: append([]events.Event(nil), c.notable...),
		},
	}
	if r.Run.Shard.Count == 0 {
		r.Run.Shard = Shard{Index: 0, Count: 1}
	}
	if r.Run.Start.IsZero() {
		r.Run.Start = c.firstTime
	}
	if r.Run.End.IsZero() {
		r.Run.End = c.lastTime
	}
	for i, name := range counterNames {
		r.Counters[name] = c.fleet[i]
		if c.broker[i] != 0 {
			r.Counters["broker_"+name] = c.broker[i]
		}
	}
	r.Counters["events"] = c.total
	for name, n := range c.rc {
		r.Counters[name] = n
	}
	for i, h := range c.hists {
		if h.Count() > 0 {
			r.Histograms[histNames[i]] = h.Clone()
		}
	}
	if len(c.brokerDisc) > 0 {
		r.BrokerDisconnects = maps.Clone(c.brokerDisc)
	}
	for i := range r.Faults {
		if r.Faults[i].Open {
			r.Faults[i].End = r.Run.End
		}
	}
	r.Series = c.series()
	return r
}

// series builds the per-second Series from the collected seconds.
func (c *Collector) series() *Series {
	if len(c.secs) == 0 {
		return nil
	}
	n := len(c.secs)
	s := &Series{
		Start: time.Unix(c.base, 0).UTC(), StepSeconds: 1, Len: n,
		Columns: map[string][]int64{}, Latency: map[string][]*histogram.Histogram{},
	}
	for _, name := range columnOrder {
		s.Columns[name] = make([]int64, n)
	}
	for _, name := range SeriesLatencies {
		s.Latency[name] = make([]*histogram.Histogram, n)
	}
	// columnOrder[j] is per-second column j+1 in second.cols (0 is the gauge delta).
	var connected int64
	// The Kafka lag gauge: records produced so far minus those the slowest
	// watcher has read so far (never below 0: a watcher that reads a record
	// twice, after a crash before its commit, is not ahead of the bridge).
	var produced int64
	consumed := map[string]int64{}
	lag := func() int64 {
		var worst int64
		for w := range c.kafkaWatchers {
			worst = max(worst, produced-consumed[w])
		}
		return worst
	}
	for i, sec := range c.secs {
		if sec == nil {
			s.Columns[ColConnected][i] = connected
			s.Columns[ColKafkaLag][i] = lag()
			continue
		}
		produced += sec.cols[sKafkaProduced]
		for w, n := range sec.kafka {
			consumed[w] += n
		}
		s.Columns[ColKafkaLag][i] = lag()
		connected += sec.cols[sConnDelta]
		s.Columns[ColConnected][i] = connected
		for j := 1; j < nCols; j++ {
			s.Columns[columnOrder[j]][i] = sec.cols[j]
		}
		for h := range nSecondHists {
			if sec.lat[h] != nil {
				s.Latency[histNames[h]][i] = sec.lat[h].Clone()
			}
		}
	}
	s.derive()
	return s
}
