package netem

import "time"

// ratePieces: a bandwidth limit writes at most rate/ratePieces bytes at once
// (10 ms worth), so the rate holds over short windows too.
const ratePieces = 100

// pace waits until the bandwidth limit lets the next piece leave.
func (p *pipe) pace(st *pipeState, n int) bool {
	if st == nil || st.rate <= 0 {
		return true
	}
	if st.burst > 0 {
		return p.sleep(p.bucketWait(st, n))
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
	if st.burst > 0 {
		p.tokens -= float64(n)
		return
	}
	start := time.Now()
	if p.nextFree.After(start.Add(-rateSlack)) {
		start = p.nextFree // behind by less than the slack: catch up
	}
	p.nextFree = start.Add(time.Duration(float64(n) / float64(st.rate) * float64(time.Second)))
}

// bucketWait tops the token bucket up (it fills at rate, up to burst bytes,
// also while the link is idle: that is the burst) and says how long n bytes
// must wait for their tokens. A new bucket starts full.
func (p *pipe) bucketWait(st *pipeState, n int) time.Duration {
	now := time.Now()
	if p.tokAt.IsZero() {
		p.tokens = float64(st.burst)
	} else {
		p.tokens += max(now.Sub(p.tokAt), 0).Seconds() * float64(st.rate)
	}
	p.tokens = min(p.tokens, float64(st.burst))
	p.tokAt = now
	if short := float64(n) - p.tokens; short > 0 {
		d := time.Duration(short / float64(st.rate) * float64(time.Second))
		// The wait earns exactly the missing tokens; book them now.
		p.tokens += short
		p.tokAt = now.Add(d)
		return d
	}
	return 0
}
