package simulator

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// ReconnectDelay returns how long a device waits before reconnect attempt
// number attempt (1 for the first after a failure), and false when the
// policy gives up. Jitter spreads the delay by a uniform factor in
// [1-jitter, 1+jitter] drawn from rng, after the cap, so a capped fleet does
// not reconnect in lockstep.
func ReconnectDelay(r profile.Reconnect, attempt int, rng *rand.Rand) (time.Duration, bool) {
	if attempt < 1 {
		attempt = 1
	}
	if r.MaxAttempts > 0 && attempt > r.MaxAttempts {
		return 0, false
	}
	var d float64
	switch r.Policy {
	case profile.ReconnectFixed:
		d = float64(r.Delay)
	case profile.ReconnectExponential:
		m := r.Multiplier
		if m < 1 {
			m = 2
		}
		d = float64(r.Delay) * math.Pow(m, float64(attempt-1))
		if r.Max > 0 && d > float64(r.Max) {
			d = float64(r.Max)
		}
	default:
		return 0, false
	}
	if r.Jitter > 0 && rng != nil {
		d *= 1 + r.Jitter*(rng.Float64()*2-1)
	}
	return time.Duration(d), true
}

// StartOffset returns when device index starts, relative to the run start:
// index/rate for a ramp-up rate, a seeded uniform time in [0, spread) for a
// spread, else zero. index is global, so shards share one schedule.
func StartOffset(l profile.Lifecycle, index int, rng *rand.Rand) time.Duration {
	switch {
	case l.Rate > 0:
		return time.Duration(float64(index) / l.Rate * float64(time.Second))
	case l.Spread > 0 && rng != nil:
		return time.Duration(rng.Int64N(int64(l.Spread)))
	}
	return 0
}

// jittered returns interval +/- a uniform jitter.
func jittered(interval, jitter time.Duration, rng *rand.Rand) time.Duration {
	if jitter <= 0 {
		return interval
	}
	return interval - jitter + time.Duration(rng.Int64N(int64(2*jitter)+1))
}
