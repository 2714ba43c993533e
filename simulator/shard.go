package simulator

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard is the part of a fleet one process runs: Index of Count, 0-based.
type Shard struct {
	Index int
	Count int
}

// ParseShard parses "i/N" with 0 <= i < N.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want i/N", s)
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard %q: want i/N with 0 <= i < N", s)
	}
	return Shard{Index: i, Count: n}, nil
}

// String formats the shard as "i/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.norm().Count) }

func (s Shard) norm() Shard {
	if s.Count < 1 {
		return Shard{0, 1}
	}
	return s
}

// Range returns the contiguous device indexes [lo, hi) of this shard in a
// fleet of total devices. Shards differ in size by at most one device.
func (s Shard) Range(total int) (lo, hi int) {
	s = s.norm()
	return total * s.Index / s.Count, total * (s.Index + 1) / s.Count
}

// DeviceSeed derives a device's seed from the run seed and its global index
// (splitmix64), so a device behaves the same in whichever shard runs it.
func DeviceSeed(run uint64, index int) uint64 {
	z := run + uint64(index+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// RunID is the 32-bit run identifier carried in payload headers; receivers
// ignore messages of other runs (retained leftovers, a second simulator).
func RunID(seed uint64, name string) uint32 {
	h := DeviceSeed(seed, -1)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 0x100000001b3
	}
	return uint32(h ^ h>>32)
}
