// Package histogram records durations in a log-linear histogram with one
// fixed bucket layout, so that any two histograms merge exactly by adding
// their bucket counts: shards of a run, or seconds of a time series, combine
// into the same histogram one recorder would have produced.
//
// Layout (values in nanoseconds):
//
//	value            bucket width     buckets
//	0 .. 255 ns      1 ns (exact)     256
//	[2^k, 2^(k+1))   2^(k-7) ns       128 per octave, k = 8 .. 41
//	>= 2^42 ns       clamped into the last bucket (about 73 minutes)
//
// so a bucket is never wider than 1/128 of its lower bound, and reporting its
// midpoint is within 1/256 (0.4 %) of any value in it. Min, Max and Sum are
// kept exactly.
//
// Concurrency: a Histogram is not safe for concurrent use. Hot paths keep one
// per goroutine (or guard it with the lock they already hold) and Merge them
// when reading. Record does not allocate once the 64-bucket chunk a value
// falls in has been touched; a typical latency distribution touches a handful.
//
// Memory: counts live in 64-bucket chunks (512 bytes) allocated on first
// use. Compact turns a histogram that is done being written (one second of a
// long time series, say) into a sorted list of its non-empty buckets; it
// reads the same, and a later Record expands it again.
package histogram

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits     = 7                                       // 128 sub-buckets per octave
	subCount    = 1 << subBits                            // 128
	linearMax   = 2 * subCount                            // values below this get their own bucket
	maxExp      = 42                                      // values >= 2^42 ns are clamped
	numBuckets  = linearMax + (maxExp-subBits-1)*subCount // 256 + 34*128 = 4608
	chunkBits   = 6
	chunkSize   = 1 << chunkBits // counts are allocated 64 buckets at a time
	numChunks   = numBuckets / chunkSize
	maxValue    = int64(1)<<maxExp - 1
	layoutName  = "log2-128-ns" // names the layout in the JSON form; change it if the layout changes
	maxPercentQ = 100.0
)

// Histogram is a log-linear histogram of durations. The zero value is an
// empty histogram ready to use.
type Histogram struct {
	chunks [numChunks]*[chunkSize]uint64
	sparse []Bucket // the buckets while compacted; then every chunk is nil
	count  uint64
	sum    int64 // nanoseconds; overflows only past ~292 years of total recorded time
	min    int64
	max    int64
}

// New returns an empty histogram.
func New() *Histogram { return &Histogram{} }

// index returns the bucket of v (v already clamped to [0, maxValue]).
func index(v int64) int {
	if v < linearMax {
		return int(v)
	}
	k := bits.Len64(uint64(v)) - 1 // 2^k <= v < 2^(k+1), k >= 8
	sub := int(v>>(k-subBits)) - subCount
	return linearMax + (k-subBits-1)*subCount + sub
}

// bounds returns the lowest value of bucket i and its width.
func bounds(i int) (low, width int64) {
	if i < linearMax {
		return int64(i), 1
	}
	j := i - linearMax
	k := j/subCount + subBits + 1
	sub := int64(j % subCount)
	shift := k - subBits
	return (subCount + sub) << shift, 1 << shift
}

// Record adds one value. Negative durations count as zero; durations past
// the layout's range (about 73 minutes) count in the last bucket, while Max
// keeps the exact value.
func (h *Histogram) Record(d time.Duration) {
	h.RecordN(d, 1)
}

// RecordN adds n occurrences of one value.
func (h *Histogram) RecordN(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count += n
	h.sum += v * int64(n)
	if v > maxValue {
		v = maxValue
	}
	h.add(index(v), n)
}

func (h *Histogram) add(i int, n uint64) {
	if h.sparse != nil {
		h.expand()
	}
	c := h.chunks[i>>chunkBits]
	if c == nil {
		c = new([chunkSize]uint64)
		h.chunks[i>>chunkBits] = c
	}
	c[i&(chunkSize-1)] += n
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.count }

// Min returns the smallest recorded value, or 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest recorded value, or 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Sum returns the total of every recorded value.
func (h *Histogram) Sum() time.Duration { return time.Duration(h.sum) }

// Mean returns the exact arithmetic mean, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return time.Duration(h.sum / int64(h.count))
}

// Percentile returns the value at percentile p (0..100): the midpoint of the
// bucket holding the ceil(p/100*Count)-th smallest value, clamped to
// [Min, Max]. It is within 0.4 % of the exact order statistic. Empty: 0.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	if p <= 0 || math.IsNaN(p) {
		return time.Duration(h.min)
	}
	if p >= maxPercentQ {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(p / maxPercentQ * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	var found = -1
	h.each(func(i int, n uint64) bool {
		seen += n
		if seen >= rank {
			found = i
			return false
		}
		return true
	})
	if found >= 0 {
		low, width := bounds(found)
		v := low + width/2
		v = max(v, h.min)
		v = min(v, h.max)
		return time.Duration(v)
	}
	return time.Duration(h.max)
}

// Merge adds every value recorded in o to h. The result is exactly the
// histogram of both sets of values. o is not changed; a nil o is a no-op.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.count == 0 {
		return
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.count == 0 || o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
	o.each(func(i int, n uint64) bool {
		h.add(i, n)
		return true
	})
}

// each calls f for every non-empty bucket in index order until f returns false.
func (h *Histogram) each(f func(i int, n uint64) bool) {
	if h.sparse != nil {
		for _, b := range h.sparse {
			if !f(b.Index, b.Count) {
				return
			}
		}
		return
	}
	for ci, c := range h.chunks {
		if c == nil {
			continue
		}
		for j, n := range c {
			if n != 0 && !f(ci<<chunkBits+j, n) {
				return
			}
		}
	}
}

// Compact releases the dense chunks, keeping only the non-empty buckets.
// Reading is unchanged; the next Record or Merge into h expands it again.
func (h *Histogram) Compact() {
	if h.sparse != nil {
		return
	}
	h.sparse = h.Buckets()
	if h.sparse == nil {
		h.sparse = []Bucket{}
	}
	h.chunks = [numChunks]*[chunkSize]uint64{}
}

// expand turns a compacted histogram back into chunks.
func (h *Histogram) expand() {
	sp := h.sparse
	h.sparse = nil
	for _, b := range sp {
		h.add(b.Index, b.Count)
	}
}

// Clone returns an independent copy of h.
func (h *Histogram) Clone() *Histogram {
	if h.sparse != nil {
		c := &Histogram{count: h.count, sum: h.sum, min: h.min, max: h.max}
		c.sparse = append(make([]Bucket, 0, len(h.sparse)), h.sparse...)
		return c
	}
	c := &Histogram{}
	c.Merge(h)
	return c
}

// Reset forgets every recorded value, keeping allocated chunks for reuse.
func (h *Histogram) Reset() {
	h.sparse = nil
	for _, c := range h.chunks {
		if c != nil {
			*c = [chunkSize]uint64{}
		}
	}
	h.count, h.sum, h.min, h.max = 0, 0, 0, 0
}

// Bucket is one non-empty bucket: its index in the fixed layout and count.
type Bucket struct {
	Index int
	Count uint64
}

// Buckets returns the non-empty buckets in index order. Two histograms hold
// the same values (up to bucket precision) when their Buckets are equal.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	h.each(func(i int, n uint64) bool {
		out = append(out, Bucket{Index: i, Count: n})
		return true
	})
	return out
}

// Equal reports whether h and o have the same buckets, count, sum, min and max.
func (h *Histogram) Equal(o *Histogram) bool {
	if h == nil || o == nil {
		return h == o
	}
	if h.count != o.count || h.sum != o.sum || h.min != o.min || h.max != o.max {
		return false
	}
	a, b := h.Buckets(), o.Buckets()
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BucketBounds returns the lowest value and the width of bucket i of the
// layout, for readers of the JSON form.
func BucketBounds(i int) (low, width time.Duration) {
	l, w := bounds(i)
	return time.Duration(l), time.Duration(w)
}
