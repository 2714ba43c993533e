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

// rateSlack is how far behind schedule a busy pipe may fall and still catch
// up: timers and goroutines wake late on a loaded machine, and that must not
// lower the rate. A pipe that ran out of bytes starts afresh instead (see
// deliverLoop), so idle time is never saved up as a burst.
const rateSlack = time.Second

// spend books n bytes against the bandwidth limit.
func (p *pipe) spend(st *pipeState, n int) {
	if st == nil || st.rate <= 0 {
		return
	}
	start := time.Now()
	if p.nextFree.After(start.Add(-rateSlack)) {
		start = p.nextFree // behind by less than the slack: catch up
	}
	p.nextFree = start.Add(time.Duration(float64(n) / float64(st.rate) * float64(time.Second)))
}
