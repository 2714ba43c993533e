package reports

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/histogram"
)

// Merge combines the results of the shards of one run (disjoint device
// ranges) into one: counters and cause counts add, histograms merge
// bucket by bucket, series align by wall-clock second and add (gauges too,
// the shards' devices being disjoint), faults and assertions are
// concatenated and labelled with their shard, conformance matrices union.
// Parts must share the schema version; they are not changed.
func Merge(parts ...*Results) (*Results, error) {
	if len(parts) == 0 {
		return nil, errors.New("merge results: no parts")
	}
	out := &Results{
		SchemaVersion: SchemaVersion,
		Kind:          KindMerged,
		Counters:      map[string]int64{},
		Histograms:    map[string]*histogram.Histogram{},
		Disconnects:   map[string]int64{},
		Events:        EventsSummary{ByKind: map[string]int64{}, BySource: map[string]int64{}},
	}
	var series []*Series
	var matrices []*Matrix
	for i, p := range parts {
		if p == nil {
			return nil, fmt.Errorf("merge results: part %d is nil", i)
		}
		if p.SchemaVersion != parts[0].SchemaVersion {
			return nil, fmt.Errorf("merge results: part %d has schema version %d, part 0 has %d", i, p.SchemaVersion, parts[0].SchemaVersion)
		}
		mergeRun(&out.Run, p.Run, i == 0)
		addCounts(out.Counters, p.Counters)
		addCounts(out.Disconnects, p.Disconnects)
		if len(p.BrokerDisconnects) > 0 {
			if out.BrokerDisconnects == nil {
				out.BrokerDisconnects = map[string]int64{}
			}
			addCounts(out.BrokerDisconnects, p.BrokerDisconnects)
		}
		for name, h := range p.Histograms {
			if out.Histograms[name] == nil {
				out.Histograms[name] = histogram.New()
			}
			out.Histograms[name].Merge(h)
		}
		label := p.Run.Shard.String()
		for _, f := range p.Faults {
			if f.Shard == "" {
				f.Shard = label
			}
			out.Faults = append(out.Faults, f)
		}
		for _, a := range p.Assertions {
			if a.Shard == "" {
				a.Shard = label
			}
			out.Assertions = append(out.Assertions, a)
		}
		series = append(series, p.Series)
		matrices = append(matrices, p.Conformance)
		out.Events.Total += p.Events.Total
		addCounts(out.Events.ByKind, p.Events.ByKind)
		addCounts(out.Events.BySource, p.Events.BySource)
		out.Events.First = append(out.Events.First, p.Events.First...)
		out.Events.Notable = append(out.Events.Notable, p.Events.Notable...)
	}
	out.Series = mergeSeries(series)
	out.Conformance = mergeMatrices(matrices)
	sort.SliceStable(out.Faults, func(i, j int) bool { return out.Faults[i].Start.Before(out.Faults[j].Start) })
	out.Events.First = earliest(out.Events.First, MaxFirstEvents)
	out.Events.Notable = earliest(out.Events.Notable, MaxNotableEvents)
	return out, nil
}

// mergeRun folds part p's metadata into the merged run: the span covers all
// parts, fields that differ between parts read "mixed".
func mergeRun(out *Run, p Run, first bool) {
	if first {
		*out = p
		out.Shards = nil
		out.Shard = Shard{Index: 0, Count: 1}
		out.Devices = 0
	}
	out.Shards = append(out.Shards, p.Shard)
	out.Devices += p.Devices
	if !first {
		out.Name = same(out.Name, p.Name)
		out.Target = same(out.Target, p.Target)
		out.TargetVersion = same(out.TargetVersion, p.TargetVersion)
		out.Version = same(out.Version, p.Version)
		out.Host = same(out.Host, p.Host)
		if !slices.Equal(out.Command, p.Command) {
			out.Command = nil
		}
		if !p.Start.IsZero() && (out.Start.IsZero() || p.Start.Before(out.Start)) {
			out.Start = p.Start
		}
		if p.End.After(out.End) {
			out.End = p.End
		}
	}
}

func same(a, b string) string {
	if a == b {
		return a
	}
	return "mixed"
}

func addCounts(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

// earliest returns at most n events, oldest first.
func earliest(evs []events.Event, n int) []events.Event {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	if len(evs) > n {
		evs = evs[:n]
	}
	return evs
}
