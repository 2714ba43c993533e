package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/histogram"
)

// shard returns the results of shard i of n of run id, spanning start..start+d.
func shard(id string, i, n int, start time.Time, d time.Duration, counters map[string]int64) *Results {
	return &Results{SchemaVersion: SchemaVersion, Kind: KindSimulate, Counters: counters,
		Run: Run{ID: id, Name: "fleet", Shard: Shard{Index: i, Count: n}, Start: start, End: start.Add(d), Status: StatusCompleted}}
}

func TestMergeRefusesAShardTwice(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := shard("run-1", 0, 2, t0, time.Second, map[string]int64{"publishes_sent": 10})
	b := shard("run-1", 1, 2, t0, time.Second, map[string]int64{"publishes_sent": 10})
	_, err := Merge(a, b, a)
	if err == nil || !strings.Contains(err.Error(), "part 2 is shard 0/2") || !strings.Contains(err.Error(), "part 0 has it") {
		t.Fatalf("merging shard 0/2 twice: err = %v, want a refusal naming both parts", err)
	}
	// Old files without a run ID are keyed by shard index alone.
	a.Run.ID, b.Run.ID = "", ""
	if _, err := Merge(a, b, b); err == nil {
		t.Fatal("merging an ID-less shard twice was accepted")
	}
}

func TestMergeRefusesShardsOfDifferentRuns(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	_, err := Merge(shard("run-1", 0, 2, t0, time.Second, nil), shard("run-2", 1, 2, t0, time.Second, nil))
	if err == nil || !strings.Contains(err.Error(), "different runs") {
		t.Fatalf("err = %v, want shards of different runs refused", err)
	}
	_, err = Merge(shard("run-1", 0, 2, t0, time.Second, nil), shard("run-1", 1, 3, t0, time.Second, nil))
	if err == nil || !strings.Contains(err.Error(), "different shard counts") {
		t.Fatalf("err = %v, want different shard counts refused", err)
	}
}

func TestMergeSpansTakeTheLongestShard(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := shard("r", 0, 2, t0, 10*time.Second, map[string]int64{"run_ms": 10_000, "ramp_ms": 900, "publishes_sent": 100})
	b := shard("r", 1, 2, t0.Add(time.Second), 10*time.Second, map[string]int64{"run_ms": 9_500, "ramp_ms": 1_200, "publishes_sent": 50})
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Counters["run_ms"] != 10_000 || m.Counters["ramp_ms"] != 1_200 {
		t.Errorf("run_ms %d ramp_ms %d: side-by-side shards must give the longest span (10000, 1200), not the sum",
			m.Counters["run_ms"], m.Counters["ramp_ms"])
	}
	if m.Counters["publishes_sent"] != 150 {
		t.Errorf("publishes_sent %d, want the sum 150", m.Counters["publishes_sent"])
	}
	if got := m.Run.Duration(); got != 11*time.Second {
		t.Errorf("merged span %s, want the union 11s", got)
	}
}

func TestMergeNamesMissingShardsAndFails(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	m, err := Merge(shard("r", 0, 4, t0, time.Second, nil), shard("r", 2, 4, t0, time.Second, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Run.MissingShards) != 2 || m.Run.MissingShards[0] != 1 || m.Run.MissingShards[1] != 3 {
		t.Fatalf("missing shards %v, want [1 3]", m.Run.MissingShards)
	}
	if m.Verdict() != Fail || ExitCode(m, nil) != ExitFail {
		t.Fatalf("verdict %s with shards missing, want fail", m.Verdict())
	}
	var found bool
	for _, a := range m.Assertions {
		found = found || (a.Name == "all shards present" && strings.Contains(a.Message, "1/4, 3/4"))
	}
	if !found {
		t.Fatalf("no failing 'all shards present' assertion naming 1/4 and 3/4: %+v", m.Assertions)
	}
	full, err := Merge(shard("r", 0, 2, t0, time.Second, nil), shard("r", 1, 2, t0, time.Second, nil))
	if err != nil || full.Verdict() != Pass || len(full.Run.MissingShards) != 0 {
		t.Fatalf("complete merge: verdict %s, missing %v, err %v", full.Verdict(), full.Run.MissingShards, err)
	}
}

func TestMergeKeepsTheWorstStatusAndAddsGroups(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a := shard("r", 0, 2, t0, time.Second, nil)
	b := shard("r", 1, 2, t0, time.Second, nil)
	b.Run.Status = StatusInterrupted
	h := histogram.New()
	h.Record(5 * time.Millisecond)
	a.Groups = map[string]*Group{"sensors": {Devices: 5, Counters: map[string]int64{"lost": 2}, E2E: h}}
	b.Groups = map[string]*Group{"sensors": {Devices: 5, Counters: map[string]int64{"lost": 1}, E2E: h}}
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Run.Status != StatusInterrupted {
		t.Errorf("status %q, want interrupted when a shard was", m.Run.Status)
	}
	g := m.Groups["sensors"]
	if g == nil || g.Devices != 10 || g.Counters["lost"] != 3 || g.E2E.Count() != 2 {
		t.Fatalf("merged group %+v, want 10 devices, 3 lost, 2 latency samples", g)
	}
}

func TestJUnitFailsWhenTheTargetWasUnavailable(t *testing.T) {
	r := shard("r", 0, 1, time.Unix(1_700_000_000, 0), time.Second, map[string]int64{"connects": 0})
	r.Run.Status = StatusTargetUnavailable
	r.Run.StatusReason = "tcp://127.0.0.1:1: connection refused"
	var b bytes.Buffer
	if err := JUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	x := b.String()
	if !strings.Contains(x, `errors="1"`) || !strings.Contains(x, "connection refused") {
		t.Fatalf("JUnit of a run whose target never started must carry an error case with the reason:\n%s", x)
	}
}

// The Markdown summary and the HTML header say when a run did not complete,
// and the Markdown lists each group's totals.
func TestRenderersShowStatusAndGroups(t *testing.T) {
	r := shard("r", 0, 1, time.Unix(1_700_000_000, 0), time.Second, map[string]int64{})
	r.Run.Status, r.Run.StatusReason = StatusTargetUnavailable, "tcp://127.0.0.1:1 refused"
	r.Groups = map[string]*Group{"sensors": {Devices: 4, Counters: map[string]int64{"expected": 40, "lost": 3}}}
	var md, html bytes.Buffer
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	for what, page := range map[string]string{"markdown": md.String(), "html": html.String()} {
		if !strings.Contains(page, "target unavailable tcp://127.0.0.1:1 refused") {
			t.Errorf("%s does not say the target was unavailable and why", what)
		}
	}
	if !strings.Contains(md.String(), "| sensors | 4 | 0 | 0 | 40 | 3 | 0 |") {
		t.Errorf("markdown lacks the group row:\n%s", md.String())
	}
	if strings.Contains(md.String(), "PASS") {
		t.Error("a run whose target never started reads PASS")
	}
}
