package histogram

import (
	"encoding/json"
	"fmt"
)

// wire is the JSON form: the exact state (count, sum, min, max and the
// non-empty buckets as [index, count] pairs) plus percentiles for people
// reading the file, which are derived and ignored when decoding.
type wire struct {
	Layout  string      `json:"layout"`
	Count   uint64      `json:"count"`
	SumNS   int64       `json:"sum_ns"`
	MinNS   int64       `json:"min_ns"`
	MaxNS   int64       `json:"max_ns"`
	P50NS   int64       `json:"p50_ns"`
	P90NS   int64       `json:"p90_ns"`
	P99NS   int64       `json:"p99_ns"`
	P999NS  int64       `json:"p999_ns"`
	Buckets [][2]uint64 `json:"buckets"`
}

// MarshalJSON writes the compact sparse form.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	w := wire{
		Layout: layoutName, Count: h.count, SumNS: h.sum, MinNS: h.min, MaxNS: h.max,
		P50NS: int64(h.Percentile(50)), P90NS: int64(h.Percentile(90)),
		P99NS: int64(h.Percentile(99)), P999NS: int64(h.Percentile(99.9)),
		Buckets: [][2]uint64{},
	}
	for _, b := range h.Buckets() {
		w.Buckets = append(w.Buckets, [2]uint64{uint64(b.Index), b.Count})
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the form MarshalJSON writes. It rejects another
// layout, out-of-range buckets, and bucket counts that do not add up.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decode histogram: %w", err)
	}
	if w.Layout != layoutName {
		return fmt.Errorf("decode histogram: layout %q, want %q", w.Layout, layoutName)
	}
	// Decoded histograms stay compact: a results file may hold thousands.
	n := Histogram{sparse: make([]Bucket, 0, len(w.Buckets))}
	var total uint64
	for i, bc := range w.Buckets {
		if bc[0] >= numBuckets {
			return fmt.Errorf("decode histogram: bucket %d out of range (layout has %d)", bc[0], numBuckets)
		}
		if i > 0 && bc[0] <= w.Buckets[i-1][0] {
			return fmt.Errorf("decode histogram: bucket %d after %d: not in increasing order", bc[0], w.Buckets[i-1][0])
		}
		if bc[1] == 0 {
			continue
		}
		n.sparse = append(n.sparse, Bucket{Index: int(bc[0]), Count: bc[1]})
		total += bc[1]
	}
	if total != w.Count {
		return fmt.Errorf("decode histogram: buckets hold %d values, count says %d", total, w.Count)
	}
	n.count, n.sum, n.min, n.max = w.Count, w.SumNS, w.MinNS, w.MaxNS
	*h = n
	return nil
}
