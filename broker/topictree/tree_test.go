package topictree

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mqttfleet/mqttfleet/packet"
)

func sub(filter string, qos byte) packet.Subscription {
	return packet.Subscription{Filter: filter, QoS: qos}
}

// byClient returns the matched subs as "client:qos" strings, sorted.
func byClient(subs []Sub) []string {
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		out = append(out, fmt.Sprintf("%s:%d", s.ClientID, s.QoS))
	}
	slices.Sort(out)
	return out
}

func TestSubscribeReplaceUnsubscribe(t *testing.T) {
	tr := New()
	steps := []struct {
		op           string // "sub" or "unsub"
		client, filt string
		qos          byte
		wantExisted  bool
		wantCount    int
		topic        string
		wantMatch    []string
	}{
		{"sub", "c1", "a/b", 0, false, 1, "a/b", []string{"c1:0"}},
		{"sub", "c1", "a/b", 2, true, 1, "a/b", []string{"c1:2"}}, // [MQTT-3.8.4-3] replace, not add
		{"sub", "c2", "a/+", 1, false, 2, "a/b", []string{"c1:2", "c2:1"}},
		{"unsub", "c3", "a/b", 0, false, 2, "a/b", []string{"c1:2", "c2:1"}}, // not subscribed
		{"unsub", "c1", "a/+", 0, false, 2, "a/b", []string{"c1:2", "c2:1"}}, // other client's filter
		{"unsub", "c1", "a/b", 0, true, 1, "a/b", []string{"c2:1"}},
		{"unsub", "c1", "a/b", 0, false, 1, "a/b", []string{"c2:1"}}, // twice
		{"unsub", "c2", "a/+", 0, true, 0, "a/b", []string{}},
		{"unsub", "c2", "x/y/z", 0, false, 0, "a/b", []string{}},   // unknown path
		{"sub", "c1", "a/b", 1, false, 1, "a/b", []string{"c1:1"}}, // again after prune
	}
	for i, s := range steps {
		var existed bool
		if s.op == "sub" {
			existed = tr.Subscribe(s.client, sub(s.filt, s.qos))
		} else {
			existed = tr.Unsubscribe(s.client, s.filt)
		}
		if existed != s.wantExisted {
			t.Errorf("step %d %s %s %q: existed=%v, want %v", i, s.op, s.client, s.filt, existed, s.wantExisted)
		}
		if got := tr.Count(); got != s.wantCount {
			t.Errorf("step %d: Count=%d, want %d", i, got, s.wantCount)
		}
		if got := byClient(tr.Match(s.topic, nil)); !slices.Equal(got, s.wantMatch) {
			t.Errorf("step %d: Match(%q)=%v, want %v", i, s.topic, got, s.wantMatch)
		}
	}
}

func TestUnsubscribePrunes(t *testing.T) {
	tr := New()
	for i := range 100 {
		tr.Subscribe(fmt.Sprint("c", i), sub(fmt.Sprintf("devices/%d/cmd/#", i), 1))
	}
	tr.Subscribe("keep", sub("devices/+", 0))
	for i := range 100 {
		if !tr.Unsubscribe(fmt.Sprint("c", i), fmt.Sprintf("devices/%d/cmd/#", i)) {
			t.Fatalf("unsubscribe %d: not found", i)
		}
	}
	dev := tr.root.kids.get("devices")
	if dev == nil || dev.kids.len() != 0 || dev.plus == nil {
		t.Fatalf("devices node not pruned to its '+' child: %+v", dev)
	}
	tr.Unsubscribe("keep", "devices/+")
	if !tr.root.empty() {
		t.Fatalf("root not empty after last unsubscribe: %+v", tr.root)
	}
}

// TestManySubscribersOneNode crosses the client-ID index threshold both ways.
func TestManySubscribersOneNode(t *testing.T) {
	tr := New()
	const n = 300
	for i := range n {
		tr.Subscribe(fmt.Sprint("c", i), sub("t", byte(i%3)))
	}
	for i := range n {
		if !tr.Subscribe(fmt.Sprint("c", i), sub("t", 2)) {
			t.Fatalf("replace c%d: existed=false", i)
		}
	}
	if got := len(tr.Match("t", nil)); got != n {
		t.Fatalf("Match: %d subs, want %d", got, n)
	}
	for i := 0; i < n; i += 2 {
		tr.Unsubscribe(fmt.Sprint("c", i), "t")
	}
	got := tr.Match("t", nil)
	if len(got) != n/2 || tr.Count() != n/2 {
		t.Fatalf("after removing evens: %d matched, Count %d, want %d", len(got), tr.Count(), n/2)
	}
	for _, s := range got {
		var i int
		fmt.Sscanf(s.ClientID, "c%d", &i)
		if i%2 == 0 || s.QoS != 2 {
			t.Fatalf("unexpected %+v", s)
		}
	}
	for i := 1; i < n; i += 2 {
		if !tr.Unsubscribe(fmt.Sprint("c", i), "t") {
			t.Fatalf("unsubscribe c%d: not found", i)
		}
	}
	if tr.Count() != 0 || !tr.root.empty() {
		t.Fatalf("tree not empty: count %d", tr.Count())
	}
}

func TestMatchMaxQoSDedup(t *testing.T) {
	cases := []struct {
		name  string
		subs  [][3]string // client, filter, qos
		topic string
		want  []string
	}{
		{"two overlapping, higher wins", [][3]string{{"c", "a/+", "0"}, {"c", "a/b", "2"}}, "a/b", []string{"c:2"}},
		{"order does not matter", [][3]string{{"c", "a/b", "2"}, {"c", "#", "1"}}, "a/b", []string{"c:2"}},
		{"four overlapping", [][3]string{{"c", "#", "0"}, {"c", "a/#", "1"}, {"c", "+/b", "0"}, {"c", "a/b", "0"}}, "a/b", []string{"c:1"}},
		{"other clients kept", [][3]string{{"c", "a/+", "1"}, {"c", "a/#", "0"}, {"d", "a/b", "0"}, {"e", "#", "2"}}, "a/b", []string{"c:1", "d:0", "e:2"}},
		{"parent via '#'", [][3]string{{"c", "a/#", "2"}, {"c", "a", "1"}}, "a", []string{"c:2"}},
		{"no overlap on '$'", [][3]string{{"c", "#", "2"}, {"c", "$SYS/x", "0"}}, "$SYS/x", []string{"c:0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := New()
			for _, s := range tc.subs {
				tr.Subscribe(s[0], sub(s[1], s[2][0]-'0'))
			}
			if got := byClient(tr.Match(tc.topic, nil)); !slices.Equal(got, tc.want) {
				t.Fatalf("Match(%q) = %v, want %v", tc.topic, got, tc.want)
			}
		})
	}
}

func TestMatchMergesOptions(t *testing.T) {
	tr := New()
	tr.Subscribe("c", packet.Subscription{Filter: "a/#", QoS: 2, NoLocal: true})
	tr.Subscribe("c", packet.Subscription{Filter: "a/b", QoS: 0, RetainAsPublished: true})
	got := tr.Match("a/b", nil)
	if len(got) != 1 {
		t.Fatalf("got %d subs, want 1", len(got))
	}
	s := got[0]
	if s.QoS != 2 || s.Filter != "a/#" || s.NoLocal || !s.RetainAsPublished {
		t.Fatalf("merged %+v: want QoS 2 of 'a/#', NoLocal false (one sub wants own messages), RAP true", s)
	}
}

func TestMatchAppendsToDst(t *testing.T) {
	tr := New()
	tr.Subscribe("x", sub("t", 1))
	tr.Subscribe("x", sub("#", 0))
	dst := []Sub{{ClientID: "x"}, {ClientID: "pre"}}
	got := tr.Match("t", dst)
	if len(got) != 3 || got[0].ClientID != "x" || got[1].ClientID != "pre" || got[2].ClientID != "x" || got[2].QoS != 1 {
		t.Fatalf("dst prefix must be kept and not merged: %+v", got)
	}
}

func TestMatchAllocs(t *testing.T) {
	tr := New()
	for i := range 100 {
		tr.Subscribe(fmt.Sprint("c", i), sub("bench/topic", 1))
		tr.Subscribe(fmt.Sprint("d", i), sub(fmt.Sprintf("dev/%d/+", i), 0))
	}
	tr.Subscribe("c1", sub("bench/#", 2)) // forces the dedup path
	tr.Subscribe("m", sub("#", 0))
	dst := make([]Sub, 0, 256)
	for _, topic := range []string{"bench/topic", "dev/42/cmd", "$SYS/x", "nothing/here"} {
		allocs := testing.AllocsPerRun(100, func() { dst = tr.Match(topic, dst[:0]) })
		if allocs != 0 {
			t.Errorf("Match(%q): %v allocs per call, want 0", topic, allocs)
		}
	}
}

// TestMatchAgainstNaive compares the tree with Matches over random filters and topics.
func TestMatchAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []string{"a", "b", "", "$x", "c"}
	randTopic := func() string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = levels[rng.IntN(len(levels))]
		}
		return strings.Join(parts, "/")
	}
	randFilter := func() string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			switch r := rng.IntN(10); {
			case r < 3:
				parts[i] = "+"
			case r < 4 && i == n-1:
				parts[i] = "#"
			default:
				parts[i] = levels[rng.IntN(len(levels))]
			}
		}
		return strings.Join(parts, "/")
	}
	for round := range 50 {
		tr := New()
		type fs struct {
			client, filter string
			qos            byte
		}
		var all []fs
		for range 60 {
			s := fs{fmt.Sprint("c", rng.IntN(8)), randFilter(), byte(rng.IntN(3))}
			tr.Subscribe(s.client, sub(s.filter, s.qos))
			// A replace keeps only the last QoS for that (client, filter).
			all = slices.DeleteFunc(all, func(o fs) bool { return o.client == s.client && o.filter == s.filter })
			all = append(all, s)
		}
		for range 10 { // some unsubscribes, so pruning is exercised too
			i := rng.IntN(len(all))
			if !tr.Unsubscribe(all[i].client, all[i].filter) {
				t.Fatalf("round %d: unsubscribe %+v: not found", round, all[i])
			}
			all = slices.Delete(all, i, i+1)
		}
		if tr.Count() != len(all) {
			t.Fatalf("round %d: Count %d, want %d", round, tr.Count(), len(all))
		}
		for range 40 {
			topic := randTopic()
			best := map[string]byte{}
			for _, s := range all {
				if Matches(s.filter, topic) {
					if q, ok := best[s.client]; !ok || s.qos > q {
						best[s.client] = s.qos
					}
				}
			}
			var want []string
			for c, q := range best {
				want = append(want, fmt.Sprintf("%s:%d", c, q))
			}
			slices.Sort(want)
			if got := byClient(tr.Match(topic, nil)); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("round %d: Match(%q) = %v, naive %v; subs %v", round, topic, got, want, all)
			}
		}
	}
}

// TestConcurrent: under one caller-held RWMutex per structure (as the
// broker holds subMu and retMu), readers run in parallel with writers.
func TestConcurrent(t *testing.T) {
	tr := New()
	r := NewRetained()
	var tmu, rmu sync.RWMutex
	const workers, iters = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(2)
		go func() { // subscribers churn
			defer wg.Done()
			for i := range iters {
				c := fmt.Sprintf("w%d-%d", w, i%10)
				f := fmt.Sprintf("s/%d/+", i%7)
				tmu.Lock()
				tr.Subscribe(c, sub(f, byte(i%3)))
				if i%3 == 0 {
					tr.Unsubscribe(c, f)
				}
				tmu.Unlock()
				rmu.Lock()
				r.Set(&packet.Publish{Topic: fmt.Sprintf("s/%d/x", i%5), Payload: []byte{byte(i)}, Retain: true})
				rmu.Unlock()
			}
		}()
		go func() { // publishers read
			defer wg.Done()
			var dst []Sub
			for i := range iters {
				tmu.RLock()
				dst = tr.Match(fmt.Sprintf("s/%d/x", i%7), dst[:0])
				n := tr.Count()
				tmu.RUnlock()
				for _, s := range dst {
					if s.ClientID == "" {
						t.Error("empty client ID in match")
						return
					}
				}
				rmu.RLock()
				r.Match("s/#", func(p *packet.Publish) {
					if len(p.Payload) != 1 {
						t.Error("bad retained payload")
					}
				})
				n += r.Len()
				rmu.RUnlock()
				_ = n
			}
		}()
	}
	wg.Wait()
}

func BenchmarkMatch(b *testing.B) {
	b.Run("100subscribers_one_topic", func(b *testing.B) {
		tr := New()
		for i := range 100 {
			tr.Subscribe(fmt.Sprintf("client-%d", i), sub("bench/fanout/topic", 1))
		}
		dst := make([]Sub, 0, 128)
		b.ReportAllocs()
		for b.Loop() {
			dst = tr.Match("bench/fanout/topic", dst[:0])
		}
		if len(dst) != 100 {
			b.Fatalf("matched %d", len(dst))
		}
	})
	b.Run("10000clients_own_topic", func(b *testing.B) {
		tr := New()
		topics := make([]string, 10000)
		for i := range topics {
			topics[i] = fmt.Sprintf("devices/dev-%05d/cmd", i)
			tr.Subscribe(fmt.Sprintf("dev-%05d", i), sub(topics[i], 1))
		}
		dst := make([]Sub, 0, 4)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			dst = tr.Match(topics[i%len(topics)], dst[:0])
			i++
		}
		if len(dst) != 1 {
			b.Fatalf("matched %d", len(dst))
		}
	})
	b.Run("100subscribers_plus_wildcard_monitor", func(b *testing.B) {
		tr := New()
		for i := range 100 {
			tr.Subscribe(fmt.Sprintf("client-%d", i), sub("bench/fanout/topic", 1))
		}
		tr.Subscribe("client-0", sub("bench/#", 0)) // one overlapping client: dedup path
		dst := make([]Sub, 0, 128)
		b.ReportAllocs()
		for b.Loop() {
			dst = tr.Match("bench/fanout/topic", dst[:0])
		}
		if len(dst) != 100 {
			b.Fatalf("matched %d", len(dst))
		}
	})
}

// BenchmarkSubscribeMemory reports the tree's heap bytes per subscribed client
// for 10,000 clients each on its own topic.
func BenchmarkSubscribeMemory(b *testing.B) {
	for b.Loop() {
		tr := New()
		for i := range 10000 {
			tr.Subscribe(fmt.Sprintf("dev-%05d", i), sub(fmt.Sprintf("devices/dev-%05d/cmd", i), 1))
		}
	}
}

// TestMatchDedupLargeNode overlaps a node large enough to have a client index
// with wildcard subscriptions of some of the same clients.
func TestMatchDedupLargeNode(t *testing.T) {
	tr := New()
	const n = 200
	for i := range n {
		tr.Subscribe(fmt.Sprint("c", i), sub("big/topic", 0))
	}
	for i := 0; i < n; i += 10 {
		tr.Subscribe(fmt.Sprint("c", i), sub("big/#", 1))
		tr.Subscribe(fmt.Sprint("c", i), sub("+/topic", 2))
	}
	tr.Subscribe("only-wild", sub("#", 1))
	tr.Subscribe("only-wild", sub("big/+", 2))
	got := tr.Match("big/topic", nil)
	if len(got) != n+1 {
		t.Fatalf("matched %d, want %d", len(got), n+1)
	}
	seen := map[string]bool{}
	for _, s := range got {
		if seen[s.ClientID] {
			t.Fatalf("duplicate %s", s.ClientID)
		}
		seen[s.ClientID] = true
		var i int
		want := byte(0)
		if s.ClientID == "only-wild" {
			want = 2
		} else if fmt.Sscanf(s.ClientID, "c%d", &i); i%10 == 0 {
			want = 2
		}
		if s.QoS != want {
			t.Errorf("%s: QoS %d, want %d", s.ClientID, s.QoS, want)
		}
	}
}
