package reports

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/histogram"
)

// Merge combines the results of the shards of one run (disjoint device
// ranges) into one: counters and cause counts add (except wall-clock spans,
// spanCounters, which take the longest: shards run side by side), group
// totals add per group, histograms merge
// bucket by bucket, series align by wall-clock second and add (gauges too,
// the shards' devices being disjoint), faults and assertions are
// concatenated and labelled with their shard, conformance matrices union.
// Parts must share the schema version; they are not changed. A shard given
// twice, or shards of different runs, are refused (checkParts); missing
// shards are listed in Run.MissingShards and fail the merged run.
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
	if err := checkParts(parts); err != nil {
		return nil, err
	}
	for i, p := range parts {
		mergeRun(&out.Run, p.Run, i == 0)
		mergeCounters(out.Counters, p.Counters)
		mergeGroups(out, p.Groups)
		for _, st := range p.Steps {
			if st.Shard == "" && p.Run.Shard.Count > 1 {
				st.Shard = p.Run.Shard.String()
			}
			out.Steps = append(out.Steps, st)
		}
		out.Timelines = append(out.Timelines, p.Timelines...)
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
	if len(out.Timelines) > MaxTimelines {
		out.Timelines = out.Timelines[:MaxTimelines]
	}
	if missing := missingShards(parts); len(missing) > 0 {
		out.Run.MissingShards = missing
		names := make([]string, len(missing))
		for i, m := range missing {
			names[i] = Shard{Index: m, Count: parts[0].Run.Shard.Count}.String()
		}
		// A fleet with shards missing did not all run: never a green merge.
		out.AddAssertion(Assertion{Name: "all shards present", Verdict: Fail,
			Message: fmt.Sprintf("%d of %d shards missing: %s", len(missing), parts[0].Run.Shard.Count, strings.Join(names, ", "))})
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
	out.Status = worseStatus(out.Status, p.Status)
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

// mergeCounters adds src's counters into dst, except the wall-clock spans
// (spanCounters), which take the longest.
func mergeCounters(dst, src map[string]int64) {
	for k, v := range src {
		if slices.Contains(spanCounters, k) {
			dst[k] = max(dst[k], v)
		} else {
			dst[k] += v
		}
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

// spanCounters are counters that measure a stretch of wall-clock time: over
// shards that ran side by side the merged run lasted as long as its longest
// shard, so they take the max. Every other counter is a count or a
// per-process amount (memory, CPU, goroutines of each shard's process) and
// adds up.
var spanCounters = []string{"run_ms", "ramp_ms"}

// checkParts refuses what would make a merge lie: a nil part, mixed schema
// versions, the same shard twice (keyed by run ID and shard index), and
// shards of different runs or of different shard counts.
func checkParts(parts []*Results) error {
	type key struct {
		id    string
		index int
	}
	seen := map[key]int{}
	for i, p := range parts {
		if p == nil {
			return fmt.Errorf("merge results: part %d is nil", i)
		}
		if p.SchemaVersion != parts[0].SchemaVersion {
			return fmt.Errorf("merge results: part %d has schema version %d, part 0 has %d", i, p.SchemaVersion, parts[0].SchemaVersion)
		}
		sharded := p.Run.Shard.Count > 1
		if !sharded && p.Run.ID == "" {
			continue // an unsharded file of an older mqttfleet: nothing to key it by
		}
		k := key{p.Run.ID, p.Run.Shard.Index}
		if j, dup := seen[k]; dup {
			return fmt.Errorf("merge results: part %d is shard %s of run %q again (part %d has it): a shard counts once",
				i, p.Run.Shard, p.Run.ID, j)
		}
		seen[k] = i
		if !sharded {
			continue
		}
		q := parts[0]
		if q.Run.Shard.Count != p.Run.Shard.Count {
			return fmt.Errorf("merge results: part %d is shard %s, part 0 is shard %s: different shard counts", i, p.Run.Shard, q.Run.Shard)
		}
		if p.Run.ID != "" && q.Run.ID != "" && p.Run.ID != q.Run.ID {
			return fmt.Errorf("merge results: part %d belongs to run %q, part 0 to run %q: shards of different runs", i, p.Run.ID, q.Run.ID)
		}
	}
	return nil
}

// missingShards lists the shard indexes of a sharded run no part covers.
func missingShards(parts []*Results) []int {
	n := parts[0].Run.Shard.Count
	if n <= 1 {
		return nil
	}
	have := make([]bool, n)
	for _, p := range parts {
		if i := p.Run.Shard.Index; i >= 0 && i < n {
			have[i] = true
		}
	}
	var missing []int
	for i, ok := range have {
		if !ok {
			missing = append(missing, i)
		}
	}
	return missing
}

// worseStatus returns the status that says less work happened.
func worseStatus(a, b Status) Status {
	rank := func(s Status) int {
		switch s {
		case StatusTargetUnavailable:
			return 3
		case StatusInterrupted:
			return 2
		case StatusCompleted:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// mergeGroups adds a part's group totals into out's, group by group.
func mergeGroups(out *Results, groups map[string]*Group) {
	for name, g := range groups {
		if g == nil {
			continue
		}
		if out.Groups == nil {
			out.Groups = map[string]*Group{}
		}
		o := out.Groups[name]
		if o == nil {
			o = &Group{Counters: map[string]int64{}}
			out.Groups[name] = o
		}
		o.Devices += g.Devices
		addCounts(o.Counters, g.Counters)
		if g.E2E != nil {
			if o.E2E == nil {
				o.E2E = histogram.New()
			}
			o.E2E.Merge(g.E2E)
		}
	}
}
