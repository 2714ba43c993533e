package histogram

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// exact returns the order statistic Percentile approximates: the
// ceil(p/100*n)-th smallest value.
func exact(sorted []time.Duration, p float64) time.Duration {
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[len(sorted)-1]
	}
	r := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func TestLayout(t *testing.T) {
	// Every bucket starts where the previous one ends, and index() maps both
	// ends of a bucket back to it.
	var next int64
	for i := range numBuckets {
		low, width := bounds(i)
		if low != next {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, low, next)
		}
		if index(low) != i || index(low+width-1) != i {
			t.Fatalf("bucket %d [%d,+%d): index(low)=%d index(high)=%d", i, low, width, index(low), index(low+width-1))
		}
		if i >= linearMax && float64(width)/float64(low) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket %d width %d is more than 1/128 of %d", i, width, low)
		}
		next = low + width
	}
	if next != maxValue+1 {
		t.Fatalf("layout ends at %d, want %d", next, maxValue+1)
	}
	if time.Duration(maxValue) < time.Hour {
		t.Fatalf("layout range %v is under an hour", time.Duration(maxValue))
	}
}

func TestPercentilePrecision(t *testing.T) {
	cases := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 1us..1h", func(r *rand.Rand) time.Duration { return time.Microsecond + time.Duration(r.Int64N(int64(time.Hour))) }},
		{"lognormal around 2ms", func(r *rand.Rand) time.Duration {
			return time.Duration(math.Exp(r.NormFloat64()*1.5) * float64(2*time.Millisecond))
		}},
		{"exponential 50us", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(50*time.Microsecond)) }},
		{"sub-microsecond", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(2000)) }},
	}
	ps := []float64{0, 1, 10, 50, 90, 99, 99.9, 99.99, 100}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h Histogram
			vals := make([]time.Duration, 100_000)
			var sum time.Duration
			for i := range vals {
				vals[i] = tc.gen(r)
				h.Record(vals[i])
				sum += vals[i]
			}
			slices.Sort(vals)
			if h.Count() != uint64(len(vals)) || h.Min() != vals[0] || h.Max() != vals[len(vals)-1] || h.Sum() != sum {
				t.Fatalf("count/min/max/sum = %d/%v/%v/%v, want %d/%v/%v/%v", h.Count(), h.Min(), h.Max(), h.Sum(), len(vals), vals[0], vals[len(vals)-1], sum)
			}
			for _, p := range ps {
				got, want := h.Percentile(p), exact(vals, p)
				rel := math.Abs(float64(got-want)) / math.Max(float64(want), 1)
				if want < linearMax && got != want {
					t.Errorf("p%v = %v, want exactly %v in the linear range", p, got, want)
				}
				if rel > 0.01 {
					t.Errorf("p%v = %v, exact %v: relative error %.4f > 1%%", p, got, want, rel)
				}
			}
		})
	}
}

func TestEdges(t *testing.T) {
	var h Histogram
	if h.Percentile(50) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram is not all zero")
	}
	h.Record(-5)
	h.Record(3 * time.Hour)
	if h.Min() != 0 || h.Max() != 3*time.Hour {
		t.Fatalf("min/max = %v/%v, want 0/3h", h.Min(), h.Max())
	}
	if got := h.Percentile(100); got != 3*time.Hour {
		t.Fatalf("p100 = %v, want the exact max", got)
	}
	if got := h.Percentile(99); got < time.Hour || got > 3*time.Hour {
		t.Fatalf("p99 of a clamped value = %v, want within the last bucket and <= max", got)
	}
}

// record fills a histogram with values picked by seed; parts splits the same
// values over n histograms by position.
func parts(seed uint64, total, n int) (whole *Histogram, split []*Histogram) {
	r := rand.New(rand.NewPCG(seed, seed))
	whole = New()
	split = make([]*Histogram, n)
	for i := range split {
		split[i] = New()
	}
	for i := range total {
		v := time.Duration(math.Exp(r.NormFloat64()*2) * float64(time.Millisecond))
		whole.Record(v)
		split[i%n].Record(v)
	}
	return whole, split
}

func TestMergeIsExact(t *testing.T) {
	for _, n := range []int{1, 2, 4, 7} {
		whole, split := parts(uint64(n), 50_000, n)
		merged := New()
		for _, p := range split {
			merged.Merge(p)
		}
		merged.Merge(nil)
		merged.Merge(New())
		if !merged.Equal(whole) {
			t.Fatalf("%d parts: merged histogram differs from the whole", n)
		}
		for _, p := range []float64{50, 90, 99, 99.9} {
			if merged.Percentile(p) != whole.Percentile(p) {
				t.Fatalf("%d parts: p%v %v != %v", n, p, merged.Percentile(p), whole.Percentile(p))
			}
		}
		if merged.Mean() != whole.Mean() {
			t.Fatalf("%d parts: mean %v != %v", n, merged.Mean(), whole.Mean())
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	whole, _ := parts(9, 10_000, 1)
	b, err := json.Marshal(whole)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Equal(whole) {
		t.Fatalf("round trip changed the histogram: %s", b)
	}
	if len(b) > 20_000 {
		t.Fatalf("JSON form is %d bytes; expected sparse buckets", len(b))
	}
	var empty Histogram
	b, _ = json.Marshal(&empty)
	if err := json.Unmarshal(b, &back); err != nil || back.Count() != 0 {
		t.Fatalf("empty round trip: %v, count %d", err, back.Count())
	}
}

func TestJSONRejects(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"other layout", `{"layout":"hdr","count":0,"buckets":[]}`, "layout"},
		{"bucket out of range", `{"layout":"log2-128-ns","count":1,"buckets":[[99999,1]]}`, "out of range"},
		{"unordered buckets", `{"layout":"log2-128-ns","count":2,"buckets":[[9,1],[5,1]]}`, "increasing order"},
		{"count mismatch", `{"layout":"log2-128-ns","count":3,"buckets":[[5,1]]}`, "count says"},
		{"wrong type", `{"layout":5}`, "decode histogram"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			err := json.Unmarshal([]byte(tc.in), &h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCompact(t *testing.T) {
	whole, split := parts(5, 20_000, 2)
	c := whole.Clone()
	c.Compact()
	if !c.Equal(whole) || c.Clone().Equal(whole) != true {
		t.Fatal("compacting changed the histogram")
	}
	for _, p := range []float64{0, 50, 99, 99.9, 100} {
		if c.Percentile(p) != whole.Percentile(p) {
			t.Fatalf("p%v differs after Compact", p)
		}
	}
	// Writing to a compacted histogram expands it; merging from one works.
	a, b := split[0].Clone(), split[1].Clone()
	a.Compact()
	b.Compact()
	a.Merge(b)
	if !a.Equal(whole) {
		t.Fatal("merge of compacted halves differs from the whole")
	}
	a.Compact()
	a.Record(time.Second)
	whole.Record(time.Second)
	if !a.Equal(whole) {
		t.Fatal("Record after Compact lost values")
	}
	var empty Histogram
	empty.Compact()
	if empty.Count() != 0 || empty.Percentile(50) != 0 || len(empty.Buckets()) != 0 {
		t.Fatal("compacted empty histogram is not empty")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	h.Record(3 * time.Millisecond) // touch the chunk first
	if n := testing.AllocsPerRun(1000, func() { h.Record(3 * time.Millisecond) }); n != 0 {
		t.Fatalf("Record allocates %v times per call", n)
	}
}

// BenchmarkRecord: go test ./histogram -bench Record -benchmem
func BenchmarkRecord(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	vals := make([]time.Duration, 4096)
	for i := range vals {
		vals[i] = time.Duration(math.Exp(r.NormFloat64()) * float64(time.Millisecond))
	}
	var h Histogram
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Record(vals[i&4095])
		i++
	}
}
