package netem

import "time"

// delay is the latency one chunk gets under st: Latency plus a jitter drawn
// when the chunk was read. Chunks leave in the order they came, so a chunk
// whose delay is shorter than its predecessor's leaves right after it (TCP
// cannot reorder; jitter here stretches and bunches, it never overtakes).
func (st *pipeState) delay(c chunk) time.Duration {
	if st == nil || (st.latency == 0 && st.jitter == 0) {
		return 0
	}
	var j float64
	switch st.dist {
	case Normal:
		j = c.zn
	default:
		j = c.zu
	}
	return max(0, st.latency+time.Duration(j*float64(st.jitter)))
}
