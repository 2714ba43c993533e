package scenarios

import (
	"fmt"
	"strings"
)

// Delivery orders.
const (
	OrderAny    = "any"
	OrderPerKey = "per-key"
)

// validateOrder checks a delivery's order and bug-reproduction bounds.
func validateOrder(c *checker, a *Assertion, f string) {
	switch a.Order {
	case "":
		a.Order = OrderAny
	case OrderAny, OrderPerKey:
	default:
		c.fail(f+".order", "order must be per-key (each publisher's messages in the order sent) or any, not %q", a.Order)
	}
	if a.MaxOutOfOrder != nil && a.Order != OrderPerKey {
		c.fail(f+".max_out_of_order", "max_out_of_order needs order: per-key")
	}
	for _, b := range []struct {
		name string
		v    *int
	}{{"max_out_of_order", a.MaxOutOfOrder}, {"min_out_of_order", a.MinOutOfOrder}, {"min_lost", a.MinLost}, {"min_duplicates", a.MinDup}} {
		if b.v != nil && *b.v < 0 {
			c.fail(f+"."+b.name, "must not be negative")
		}
	}
}

// applyOrder adds the order and minimum checks to a delivery verdict. The
// key is the publisher: the ledger counts, per receiver and topic (one
// publisher per topic), first receipts of a sequence number lower than one
// already received. A bridge hashing by device keeps that order inside one
// Kafka partition; anything spreading a device over partitions breaks it.
func applyOrder(a *Assertion, l *ledger, v *verdict) {
	// A reproduction that expects loss or duplicates is not failed by the
	// default max_lost / max_duplicates of 0.
	if (a.MinLost != nil && a.MaxLost == nil) || (a.MinDup != nil && a.MaxDup == nil) {
		lostOK := l.lost <= deref(a.MaxLost) || (a.MinLost != nil && a.MaxLost == nil)
		dupOK := l.dups <= deref(a.MaxDup) || (a.MinDup != nil && a.MaxDup == nil)
		v.pass = lostOK && dupOK && l.expected >= max(a.MinChecks, 1)
		if a.MaxLost == nil && a.MinLost != nil {
			v.msg = strings.Replace(v.msg, " lost (max 0)", " lost", 1)
		}
		if a.MaxDup == nil && a.MinDup != nil {
			v.msg = strings.Replace(v.msg, " duplicates (max 0)", " duplicates", 1)
		}
	}
	if a.Order == OrderPerKey {
		maxO := 0
		if a.MaxOutOfOrder != nil {
			maxO = *a.MaxOutOfOrder
		}
		v.pass = v.pass && l.outOfOrder <= maxO
		v.msg += fmt.Sprintf(", %d out of order per key (max %d)", l.outOfOrder, maxO)
	} else if a.MinOutOfOrder != nil || l.outOfOrder > 0 {
		v.msg += fmt.Sprintf(", %d out of order per key", l.outOfOrder)
	}
	if a.MinOutOfOrder != nil {
		v.pass = v.pass && l.outOfOrder >= *a.MinOutOfOrder
		v.msg += fmt.Sprintf(" (want at least %d)", *a.MinOutOfOrder)
	}
	if a.MinLost != nil {
		v.pass = v.pass && l.lost >= *a.MinLost
		v.msg += fmt.Sprintf("; want at least %d lost", *a.MinLost)
	}
	if a.MinDup != nil {
		v.pass = v.pass && l.dups >= *a.MinDup
		v.msg += fmt.Sprintf("; want at least %d duplicates", *a.MinDup)
	}
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// describeOrder adjusts a dry run's delivery line for the order and
// reproduction bounds.
func describeOrder(a *Assertion, s string) string {
	if a.MinLost != nil {
		if a.MaxLost == nil {
			s = strings.Replace(s, "lost <= 0", fmt.Sprintf("lost >= %d", *a.MinLost), 1)
		} else {
			s += fmt.Sprintf(", lost >= %d", *a.MinLost)
		}
	}
	if a.MinDup != nil {
		if a.MaxDup == nil {
			s = strings.Replace(s, "duplicates <= 0", fmt.Sprintf("duplicates >= %d", *a.MinDup), 1)
		} else {
			s += fmt.Sprintf(", duplicates >= %d", *a.MinDup)
		}
	}
	if a.Order == OrderPerKey {
		s += fmt.Sprintf(", out of order per key <= %d", deref(a.MaxOutOfOrder))
	}
	if a.MinOutOfOrder != nil {
		s += fmt.Sprintf(", out of order per key >= %d", *a.MinOutOfOrder)
	}
	return s
}
