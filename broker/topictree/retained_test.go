package topictree

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/packet"
)

func retain(topic, payload string) *packet.Publish {
	return &packet.Publish{Topic: topic, Payload: []byte(payload), Retain: true, QoS: 1}
}

// matchRetained returns "topic=payload" for every retained match, sorted.
func matchRetained(r *Retained, filter string) []string {
	var out []string
	r.Match(filter, func(p *packet.Publish) { out = append(out, p.Topic+"="+string(p.Payload)) })
	slices.Sort(out)
	return out
}

func TestRetainedSetReplaceClear(t *testing.T) {
	r := NewRetained()
	steps := []struct {
		topic, payload string
		wantStored     bool
		wantLen        int
		filter         string
		want           []string
	}{
		{"a/b", "1", true, 1, "a/b", []string{"a/b=1"}},
		{"a/b", "2", true, 1, "a/b", []string{"a/b=2"}}, // replace
		{"a", "p", true, 2, "a/#", []string{"a/b=2", "a=p"}},
		{"a/b", "", false, 1, "a/#", []string{"a=p"}}, // [MQTT-3.3.1-10] empty payload clears
		{"a/b", "", false, 1, "a/#", []string{"a=p"}}, // clearing twice is harmless
		{"x/y", "", false, 1, "#", []string{"a=p"}},   // [MQTT-3.3.1-11] never stored
		{"a", "", false, 0, "#", nil},
		{"a/b/c", "3", true, 1, "a/b/c", []string{"a/b/c=3"}}, // after pruning
	}
	for i, s := range steps {
		if got := r.Set(retain(s.topic, s.payload)); got != s.wantStored {
			t.Errorf("step %d Set(%q,%q) = %v, want %v", i, s.topic, s.payload, got, s.wantStored)
		}
		if r.Len() != s.wantLen {
			t.Errorf("step %d: Len %d, want %d", i, r.Len(), s.wantLen)
		}
		if got := matchRetained(r, s.filter); !slices.Equal(got, s.want) {
			t.Errorf("step %d: Match(%q) = %v, want %v", i, s.filter, got, s.want)
		}
	}
	r.Set(retain("a/b/c", ""))
	if r.Len() != 0 || r.root.kids.len() != 0 {
		t.Fatalf("store not pruned: len %d, root kids %d", r.Len(), r.root.kids.len())
	}
}

func TestRetainedKeepsMessage(t *testing.T) {
	r := NewRetained()
	p := retain("t", "x")
	r.Set(p)
	var got *packet.Publish
	r.Match("t", func(m *packet.Publish) { got = m })
	if got != p {
		t.Fatal("Match must hand back the message Set was given")
	}
}

func TestRetainedWildcards(t *testing.T) {
	r := NewRetained()
	for _, topic := range []string{
		"sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player2", "sport/golf",
		"sport//x", "/a", "a", "$SYS/broker/load", "$SYS", "$other/x", "home/$x/y",
	} {
		r.Set(retain(topic, "v"))
	}
	cases := []struct {
		filter string
		want   []string // topics
	}{
		{"#", []string{"/a", "a", "home/$x/y", "sport", "sport//x", "sport/golf", "sport/tennis", "sport/tennis/player1", "sport/tennis/player2"}},
		{"+", []string{"a", "sport"}},
		{"sport/#", []string{"sport", "sport//x", "sport/golf", "sport/tennis", "sport/tennis/player1", "sport/tennis/player2"}},
		{"sport/+", []string{"sport/golf", "sport/tennis"}},
		{"sport/tennis/+", []string{"sport/tennis/player1", "sport/tennis/player2"}},
		{"sport/+/player1", []string{"sport/tennis/player1"}},
		{"sport/+/+", []string{"sport//x", "sport/tennis/player1", "sport/tennis/player2"}},
		{"+/+", []string{"/a", "sport/golf", "sport/tennis"}},
		{"+/tennis/#", []string{"sport/tennis", "sport/tennis/player1", "sport/tennis/player2"}},
		{"$SYS/#", []string{"$SYS", "$SYS/broker/load"}},
		{"$SYS/+/load", []string{"$SYS/broker/load"}},
		{"+/broker/load", nil},
		{"+/+/+", []string{"home/$x/y", "sport//x", "sport/tennis/player1", "sport/tennis/player2"}},
		{"home/+/y", []string{"home/$x/y"}},
		{"nothing/#", nil},
		{"Sport", nil},
	}
	for _, c := range cases {
		var want []string
		for _, tp := range c.want {
			want = append(want, tp+"=v")
		}
		slices.Sort(want)
		if got := matchRetained(r, c.filter); !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %v, want %v", c.filter, got, want)
		}
	}
}

// TestRetainedCallbackMaySet checks fn runs outside the lock.
func TestRetainedCallbackMaySet(t *testing.T) {
	r := NewRetained()
	r.Set(retain("a", "1"))
	r.Match("a", func(p *packet.Publish) { r.Set(retain("a", "")) })
	if r.Len() != 0 {
		t.Fatal("Set from within Match did not clear")
	}
}

// TestRetainedAgainstNaive compares the retained trie with Matches over random
// topics and filters.
func TestRetainedAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	levels := []string{"a", "b", "", "$x"}
	join := func(wild bool) string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = levels[rng.IntN(len(levels))]
			if wild && rng.IntN(3) == 0 {
				parts[i] = "+"
			}
			if wild && i == n-1 && rng.IntN(4) == 0 {
				parts[i] = "#"
			}
		}
		return strings.Join(parts, "/")
	}
	for round := range 50 {
		r := NewRetained()
		topics := map[string]bool{}
		for range 40 {
			tp := join(false)
			if rng.IntN(4) == 0 {
				r.Set(retain(tp, ""))
				delete(topics, tp)
			} else {
				r.Set(retain(tp, "v"))
				topics[tp] = true
			}
		}
		if r.Len() != len(topics) {
			t.Fatalf("round %d: Len %d, want %d", round, r.Len(), len(topics))
		}
		for range 30 {
			f := join(true)
			var want []string
			for tp := range topics {
				if Matches(f, tp) {
					want = append(want, tp+"=v")
				}
			}
			slices.Sort(want)
			if got := matchRetained(r, f); !slices.Equal(got, want) {
				t.Fatalf("round %d: Match(%q) = %v, naive %v", round, f, got, want)
			}
		}
	}
}

// TestRetainedGetBytes: Get finds a stored message and Bytes follows sets,
// replacements and clears.
func TestRetainedGetBytes(t *testing.T) {
	r := NewRetained()
	set := func(topic, payload string) { r.Set(&packet.Publish{Topic: topic, Payload: []byte(payload)}) }
	set("a/b", "12345")
	set("a", "1")
	if r.Bytes() != 3+5+1+1 || r.Get("a/b") == nil || r.Get("a/c") != nil || r.Get("a/b/c") != nil {
		t.Fatalf("bytes %d, get a/b %v", r.Bytes(), r.Get("a/b"))
	}
	set("a/b", "1")
	if r.Bytes() != 3+1+1+1 {
		t.Fatalf("after replace: bytes %d", r.Bytes())
	}
	set("a/b", "")
	set("a", "")
	if r.Bytes() != 0 || r.Len() != 0 {
		t.Fatalf("after clear: bytes %d, len %d", r.Bytes(), r.Len())
	}
}
