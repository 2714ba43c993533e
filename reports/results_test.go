package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

const synthDevices, synthSeconds = 200, 60

func collect(evs []events.Event, run Run) *Results {
	c := NewCollector(KindSimulate, run)
	c.TrackSequences(true)
	for _, e := range evs {
		c.Emit(e)
	}
	return c.Results()
}

func TestCollectorCounts(t *testing.T) {
	res := collect(synthStream(1, synthDevices, synthSeconds), Run{Name: "synthetic"})
	cases := []struct {
		name string
		got  int64
		ok   func(int64) bool
	}{
		{"connects", res.Counters["connects"], func(v int64) bool { return v >= 2*synthDevices }},
		{"connect_failures", res.Counters["connect_failures"], func(v int64) bool { return v == 4 }},
		{"takeovers", res.Counters["takeovers"], func(v int64) bool { return v > 0 }},
		{"lost", res.Counters["lost"], func(v int64) bool { return v > 0 }},
		{"duplicates", res.Counters["duplicates"], func(v int64) bool { return v > 0 }},
		{"faults_injected", res.Counters["faults_injected"], func(v int64) bool { return v == 1 }},
		{"broker_keepalive_expired", res.Counters["broker_keepalive_expired"], func(v int64) bool { return v == synthDevices/4 }},
		{"final connected", res.Series.Columns[ColConnected][res.Series.Len-1], func(v int64) bool { return v == 0 }},
		{"peak connected", peak(res.Series.Columns[ColConnected]), func(v int64) bool { return v == 2*synthDevices }},
	}
	for _, tc := range cases {
		if !tc.ok(tc.got) {
			t.Errorf("%s = %d: unexpected", tc.name, tc.got)
		}
	}
	if len(res.Faults) != 1 || res.Faults[0].Open || res.Faults[0].End.Sub(res.Faults[0].Start) != 15*time.Second {
		t.Errorf("faults = %+v, want one closed 15 s window", res.Faults)
	}
	for _, name := range []string{"connect_latency", "publish_ack_latency", "e2e_latency", "subscribe_latency"} {
		if h := res.Histograms[name]; h == nil || h.Count() == 0 {
			t.Errorf("histogram %s is empty", name)
		}
	}
	if res.Disconnects["takeover"] == 0 || res.Disconnects["client_disconnect"] != 2*synthDevices || res.BrokerDisconnects["keepalive"] == 0 {
		t.Errorf("disconnect causes: fleet %v broker %v", res.Disconnects, res.BrokerDisconnects)
	}
}

// TestMergeShardsEqualsOneRun: one Collector over the whole stream and four
// over disjoint device ranges, merged, agree exactly.
func TestMergeShardsEqualsOneRun(t *testing.T) {
	evs := synthStream(2, synthDevices, synthSeconds)
	whole := collect(evs, Run{Name: "whole"})
	const n = 4
	split := make([][]events.Event, n)
	for _, e := range evs {
		i := shardOf(e, synthDevices, n)
		split[i] = append(split[i], e)
	}
	dir := t.TempDir()
	var parts []*Results
	for i := range n {
		// Through the file, as `mqttfleet report merge` does.
		p := collect(split[i], Run{Name: "whole", Shard: Shard{Index: i, Count: n}})
		path := filepath.Join(dir, "shard.json")
		if err := p.Write(path); err != nil {
			t.Fatal(err)
		}
		back, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, back)
	}
	merged, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(merged.Counters, whole.Counters) {
		t.Errorf("counters differ:\nmerged %v\nwhole  %v", merged.Counters, whole.Counters)
	}
	if !reflect.DeepEqual(merged.Disconnects, whole.Disconnects) || !reflect.DeepEqual(merged.BrokerDisconnects, whole.BrokerDisconnects) {
		t.Errorf("disconnect causes differ")
	}
	for name, h := range whole.Histograms {
		if !h.Equal(merged.Histograms[name]) {
			t.Errorf("histogram %s differs", name)
		}
		for _, p := range []float64{50, 90, 99, 99.9} {
			if h.Percentile(p) != merged.Histograms[name].Percentile(p) {
				t.Errorf("%s p%v: merged %v, whole %v", name, p, merged.Histograms[name].Percentile(p), h.Percentile(p))
			}
		}
	}
	ws, ms := whole.Series, merged.Series
	if !ws.Start.Equal(ms.Start) || ws.Len != ms.Len {
		t.Fatalf("series span: merged %v+%d, whole %v+%d", ms.Start, ms.Len, ws.Start, ws.Len)
	}
	if !reflect.DeepEqual(ws.Columns, ms.Columns) {
		t.Errorf("series columns differ")
	}
	if !reflect.DeepEqual(ws.Percentiles, ms.Percentiles) {
		t.Errorf("per-second percentiles differ")
	}
	for name, hs := range ws.Latency {
		for i, h := range hs {
			if (h == nil) != (ms.Latency[name][i] == nil) || (h != nil && !h.Equal(ms.Latency[name][i])) {
				t.Fatalf("latency %s second %d differs", name, i)
			}
		}
	}
	if merged.Events.Total != whole.Events.Total || !reflect.DeepEqual(merged.Events.ByKind, whole.Events.ByKind) {
		t.Errorf("events summary differs")
	}
	if len(merged.Run.Shards) != n || merged.Kind != KindMerged || len(merged.Faults) != 1 || merged.Faults[0].Shard != "0/4" {
		t.Errorf("merged run %+v faults %+v", merged.Run, merged.Faults)
	}
}

func TestMergeRejectsMixedSchemas(t *testing.T) {
	a := &Results{SchemaVersion: 1}
	b := &Results{SchemaVersion: 2}
	if _, err := Merge(a, b); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Fatalf("err = %v, want a schema version error", err)
	}
	if _, err := Merge(); err == nil {
		t.Fatal("merging nothing succeeded")
	}
}

func TestReadRejects(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"newer schema", `{"schema_version": 99, "kind": "scenario"}`, "newer than this mqttfleet reads"},
		{"no schema", `{"kind": "scenario"}`, "no schema_version"},
		{"not json", `hello`, "not a results file"},
		{"bad series", `{"schema_version":1,"series":{"step_s":1,"len":2,"columns":{"sent":[1]}}}`, "has 1 values"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Read(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	res := sampleResults(t)
	path := filepath.Join(t.TempDir(), "results.json")
	if err := res.Write(path); err != nil {
		t.Fatal(err)
	}
	back, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("results file mode %v (%v), want 0644", st.Mode(), err)
	}
	a, _ := json.Marshal(res)
	b, _ := json.Marshal(back)
	if string(a) != string(b) {
		t.Fatal("results changed across Write/Read")
	}
}

func TestSequenceTrackingIsOptIn(t *testing.T) {
	c := NewCollector(KindSimulate, Run{})
	for _, e := range synthStream(5, 20, 50) {
		c.Emit(e)
	}
	if r := c.Results(); r.Counters["lost"] != 0 || r.Counters["duplicates"] != 0 || peak(r.Series.Columns[ColLost]) != 0 {
		t.Fatalf("lost %d dup %d without TrackSequences", r.Counters["lost"], r.Counters["duplicates"])
	}
}

func TestAddAssertionBoundsEvidence(t *testing.T) {
	var r Results
	r.AddAssertion(Assertion{Name: "x", Verdict: Fail, Evidence: make([]events.Event, 35)})
	if a := r.Assertions[0]; len(a.Evidence) != MaxEvidence || a.EvidenceOmitted != 15 {
		t.Fatalf("evidence %d omitted %d", len(a.Evidence), a.EvidenceOmitted)
	}
}

func TestCollectorConcurrent(t *testing.T) {
	evs := synthStream(3, 40, 20)
	c := NewCollector(KindSimulate, Run{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(evs); i += 4 {
				c.Emit(evs[i])
			}
		})
	}
	wg.Wait()
	if got := c.Results().Events.Total; got != int64(len(evs)) {
		t.Fatalf("total %d, want %d", got, len(evs))
	}
}

// BenchmarkCollectorEmit: go test ./reports -run XXX -bench Emit -benchmem
func BenchmarkCollectorEmit(b *testing.B) {
	evs := synthStream(4, 100, 60)
	c := NewCollector(KindSimulate, Run{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Emit(evs[i%len(evs)])
		i++
	}
}
