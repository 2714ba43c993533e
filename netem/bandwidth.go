package netem

import "time"

// ratePieces: a bandwidth limit writes at most rate/ratePieces bytes at once
// (10 ms worth), so the rate holds over short windows too.
const ratePieces = 100

// pace waits until the bandwidth limit lets the next piece leave.
func (p *pipe) pace(st *pipeState) bool {
	if st == nil || st.rate <= 0 {
		return true
	}
	if d := time.Until(p.nextFree); d > 0 {
		return p.sleep(d)
	}
	return true
}

// spend books n bytes against the bandwidth limit. Idle time is not saved up:
// a link that was quiet does not get a burst.
func (p *pipe) spend(st *pipeState, n int) {
	if st == nil || st.rate <= 0 {
		return
	}
	start := time.Now().Add(-time.Millisecond)
	if p.nextFree.After(start) {
		start = p.nextFree
	}
	p.nextFree = start.Add(time.Duration(float64(n) / float64(st.rate) * float64(time.Second)))
}
