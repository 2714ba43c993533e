package kernel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Netem is a tc netem qdisc: what happens to packets leaving an interface.
// Percentages are 0..100; zero fields are left out.
type Netem struct {
	Delay        time.Duration
	Jitter       time.Duration
	Distribution string  // "normal", "pareto", "paretonormal" (needs Jitter); "" = uniform
	Loss         float64 // percent of packets dropped
	Duplicate    float64 // percent duplicated
	Reorder      float64 // percent sent at once, ahead of delayed ones (needs Delay)
	Corrupt      float64 // percent with a flipped bit
	Rate         int64   // bytes per second; 0 = unlimited
	Limit        int     // packets the qdisc may hold; 0 = tc's default (1000)
}

// ErrNetemUnsupported means the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM).
var ErrNetemUnsupported = errors.New("kernel has no netem qdisc (CONFIG_NET_SCH_NETEM not set)")

// args is the netem part of a tc command line.
func (n Netem) args() []string {
	a := []string{"netem"}
	if n.Limit > 0 {
		a = append(a, "limit", strconv.Itoa(n.Limit))
	}
	if n.Delay > 0 || n.Jitter > 0 {
		a = append(a, "delay", usec(n.Delay))
		if n.Jitter > 0 {
			a = append(a, usec(n.Jitter))
			if n.Distribution != "" {
				a = append(a, "distribution", n.Distribution)
			}
		}
	}
	pct := func(name string, v float64) {
		if v > 0 {
			a = append(a, name, strconv.FormatFloat(v, 'f', -1, 64)+"%")
		}
	}
	pct("loss", n.Loss)
	pct("duplicate", n.Duplicate)
	pct("reorder", n.Reorder)
	pct("corrupt", n.Corrupt)
	if n.Rate > 0 {
		a = append(a, "rate", strconv.FormatInt(n.Rate*8, 10)+"bit")
	}
	return a
}

func usec(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + "us" }

// SetNetem installs (or replaces) n as the root qdisc of ifname in t.
func SetNetem(ctx context.Context, t Target, ifname string, n Netem) error {
	out, err := t.Run(ctx, "tc", append([]string{"qdisc", "replace", "dev", ifname, "root"}, n.args()...)...)
	if err != nil {
		if strings.Contains(out, "qdisc kind is unknown") {
			return fmt.Errorf("netem on %s in %s: %w", ifname, t, ErrNetemUnsupported)
		}
		return fmt.Errorf("netem on %s: %w", ifname, err)
	}
	return nil
}

// ClearNetem removes the root qdisc of ifname in t (back to the default).
func ClearNetem(ctx context.Context, t Target, ifname string) error {
	out, err := t.Run(ctx, "tc", "qdisc", "del", "dev", ifname, "root")
	if err != nil && !strings.Contains(out, "Cannot delete qdisc with handle of zero") &&
		!strings.Contains(out, "No such file or directory") {
		return fmt.Errorf("clear qdisc on %s: %w", ifname, err)
	}
	return nil
}

// SetRate limits ifname in t to rate bytes per second with a token bucket
// (tc tbf). It needs no netem support in the kernel, so it also works where
// SetNetem returns ErrNetemUnsupported; it replaces any root qdisc, netem
// included (use Netem.Rate to combine a rate with delay or loss).
func SetRate(ctx context.Context, t Target, ifname string, rate int64) error {
	if rate <= 0 {
		return fmt.Errorf("rate on %s: %d bytes/s is not > 0", ifname, rate)
	}
	// Burst: 10 ms worth, at least a few full-size packets so the bucket can
	// pass a 64 KiB GSO segment on veth or loopback.
	burst := max(rate/100, 128<<10)
	_, err := t.Run(ctx, "tc", "qdisc", "replace", "dev", ifname, "root", "tbf",
		"rate", strconv.FormatInt(rate*8, 10)+"bit", "burst", strconv.FormatInt(burst, 10), "latency", "100ms")
	if err != nil {
		return fmt.Errorf("rate on %s: %w", ifname, err)
	}
	return nil
}
