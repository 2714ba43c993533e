package auth

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/packet"
)

func TestCovers(t *testing.T) {
	cases := []struct {
		acl, req string
		want     bool
	}{
		{"sensors/#", "sensors/+/temp", true},
		{"sensors/+/temp", "sensors/#", false},
		{"sensors/#", "sensors", true},
		{"sensors/#", "sensors/#", true},
		{"sensors/+", "sensors/#", false}, // "sensors" and deeper topics are not covered
		{"sensors/+/#", "sensors/#", false},
		{"sensors/+/temp", "sensors/a/temp", true},
		{"sensors/+/temp", "sensors/+/temp", true},
		{"sensors/a/temp", "sensors/+/temp", false},
		{"sensors/+/temp", "sensors/a/hum", false},
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"#", "#", true},
		{"#", "a/+/#", true},
		{"+/#", "#", true}, // at the top both reach every non-'$' topic
		{"+", "#", false},
		{"+", "+", true},
		{"+", "a", true},
		{"#", "$SYS/x", false}, // [MQTT-4.7.2-1]
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/+", true},
		{"$SYS/#", "#", false},
		{"#", "+/x", true}, // '+' first cannot reach '$' topics either
		{"a//b", "a/+/b", false},
		{"a/+/b", "a//b", true},
	}
	for _, c := range cases {
		if got := covers(c.acl, c.req); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.acl, c.req, got, c.want)
		}
	}
}

func TestOverlaps(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"a/#", "a", true},
		{"a", "a/#", true},
		{"a/+", "a", false},
		{"a/+", "+/b", true},
		{"a/b", "a/c", false},
		{"#", "$SYS/x", false},
		{"$SYS/x", "+/x", false},
		{"$SYS/#", "$SYS/+/y", true},
		{"+/+", "a/b/c", false},
		{"+/+/#", "a", false},
		{"secret", "#", true},
	}
	for _, c := range cases {
		if got := overlaps(c.a, c.b); got != c.want {
			t.Errorf("overlaps(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestCoversOverlapsBruteForce checks both against topictree.Matches over
// every topic of up to five levels from a small alphabet: the filters have at
// most three levels, so deeper topics add nothing.
func TestCoversOverlapsBruteForce(t *testing.T) {
	alpha := []string{"a", "b", "$x", ""}
	var topics []string
	prev := []string{""}
	for depth := 1; depth <= 5; depth++ {
		var next []string
		for _, p := range prev {
			for _, l := range alpha {
				tp := l
				if depth > 1 {
					tp = p + "/" + l
				}
				next = append(next, tp)
			}
		}
		topics = append(topics, next...)
		prev = next
	}
	rng := rand.New(rand.NewPCG(5, 6))
	filter := func() string {
		n := 1 + rng.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			switch r := rng.IntN(8); {
			case r < 2:
				parts[i] = "+"
			case r < 3 && i == n-1:
				parts[i] = "#"
			default:
				parts[i] = alpha[rng.IntN(len(alpha))]
			}
		}
		return strings.Join(parts, "/")
	}
	for range 400 {
		a, b := filter(), filter()
		cov, ovl := true, false
		for _, tp := range topics {
			ma, mb := packet.MatchTopic(a, tp), packet.MatchTopic(b, tp)
			if mb && !ma {
				cov = false
			}
			if ma && mb {
				ovl = true
			}
		}
		if got := covers(a, b); got != cov {
			t.Errorf("covers(%q, %q) = %v, brute force %v", a, b, got, cov)
		}
		if got := overlaps(a, b); got != ovl {
			t.Errorf("overlaps(%q, %q) = %v, brute force %v", a, b, got, ovl)
		}
	}
}
