package simulator

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mqttfleet/mqttfleet/reports"
)

// Threshold is a bound given as a count ("5") or as a share of a whole
// ("95%", "0.1%"). The zero value is unset.
type Threshold struct {
	Set     bool
	Value   float64 // the count, or the percentage when Percent
	Percent bool
}

// ParseThreshold reads "N" or "N%"; N must be a finite number >= 0 (and a
// percentage at most 100).
func ParseThreshold(s string) (Threshold, error) {
	t := Threshold{Set: true}
	num := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(num, "%"); ok {
		t.Percent, num = true, strings.TrimSpace(p)
	}
	v, err := strconv.ParseFloat(num, 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		return Threshold{}, fmt.Errorf("%q: want a count such as 5 or a share such as 95%%", s)
	case v < 0:
		return Threshold{}, fmt.Errorf("%q: must not be negative", s)
	case t.Percent && v > 100:
		return Threshold{}, fmt.Errorf("%q: a share is at most 100%%", s)
	}
	t.Value = v
	return t, nil
}

// Of returns the bound as a count out of whole.
func (t Threshold) Of(whole int64) float64 {
	if t.Percent {
		return t.Value / 100 * float64(whole)
	}
	return t.Value
}

func (t Threshold) String() string {
	if t.Percent {
		return strconv.FormatFloat(t.Value, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(t.Value, 'f', -1, 64)
}

// Limits are the verdicts a simulate run is judged by.
type Limits struct {
	// MinConnected: devices that connected at least once (default 100%).
	MinConnected Threshold
	// MaxLoss: expected deliveries never received, a count or a share of
	// those expected. Unset: not judged.
	MaxLoss Threshold
	// MaxDup: duplicate deliveries, a count or a share of those expected.
	// Unset: not judged.
	MaxDup Threshold
}

// Verdicts judges a simulate run's results by lim, from the counters the
// fleet wrote (the same numbers the summary and reports print). A run in
// which nothing happened never passes: no device, no connection, or a loss
// bound with nothing sent is a failure.
func Verdicts(res *reports.Results, lim Limits) []reports.Assertion {
	c := res.Counters
	devices := c["devices"]
	var out []reports.Assertion
	add := func(name string, pass bool, msg string) {
		v := reports.Fail
		if pass {
			v = reports.Pass
		}
		out = append(out, reports.Assertion{Name: name, Verdict: v, Message: msg})
	}
	minConn := lim.MinConnected
	if !minConn.Set {
		minConn = Threshold{Set: true, Value: 100, Percent: true}
	}
	connected := c["connects"] - c["reconnects"] // devices that got a first CONNACK
	want := math.Ceil(minConn.Of(devices) - 1e-9)
	add("devices connected", devices > 0 && connected > 0 && float64(connected) >= want,
		fmt.Sprintf("%d of %d devices connected at least once (want at least %s = %.0f)", connected, devices, minConn, want))
	expected, sent := c["expected"], c["publishes_sent"]
	if lim.MaxLoss.Set {
		lost := c["lost"]
		bound := lim.MaxLoss.Of(expected)
		switch {
		case sent == 0:
			add("message loss", false, "no message was sent: loss cannot be judged on nothing")
		case expected == 0:
			add("message loss", false, fmt.Sprintf("%d messages sent but no delivery was expected (no device subscribed to them in time)", sent))
		default:
			add("message loss", float64(lost) <= bound,
				fmt.Sprintf("%d of %d expected deliveries lost (max %s = %.0f)", lost, expected, lim.MaxLoss, math.Floor(bound)))
		}
	}
	if lim.MaxDup.Set {
		dup := c["duplicates"]
		bound := lim.MaxDup.Of(expected)
		if expected == 0 {
			add("duplicates", false, "no delivery was expected: duplicates cannot be judged on nothing")
		} else {
			add("duplicates", float64(dup) <= bound,
				fmt.Sprintf("%d duplicate deliveries of %d expected (max %s = %.0f)", dup, expected, lim.MaxDup, math.Floor(bound)))
		}
	}
	return out
}

// Unreachable says whether the broker never answered: no device got a
// CONNACK and every failed attempt failed before one (dial or I/O error),
// with the reason to print. A broker that answered and refused (a CONNACK
// with a non-zero code) is reachable: that is a verdict, not exit 3.
func Unreachable(res *reports.Results) (bool, string) {
	c := res.Counters
	if c["connects"] > 0 || c["connack_none"] == 0 {
		return false, ""
	}
	for k, v := range c {
		if strings.HasPrefix(k, "connack_") && k != "connack_none" && v > 0 {
			return false, ""
		}
	}
	return true, fmt.Sprintf("broker %s never answered: %d connect attempts, none got a CONNACK", res.Run.Target, c["connack_none"])
}
