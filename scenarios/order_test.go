package scenarios

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// TestDeliveryOrderAndMinimums: order per-key fails on a publisher's
// messages read out of order, and the reproduction minimums fail when the
// bug did not show.
func TestDeliveryOrderAndMinimums(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	evs := []events.Event{{Time: at(0), Kind: events.Subscribed, Source: events.SourceKafka, ClientID: "kw", Topic: "fleet/+/t", QoS: 1}}
	for s := uint64(1); s <= 4; s++ {
		evs = append(evs, events.Event{Time: at(10 * int(s)), Kind: events.PublishSent, Source: events.SourceClient, ClientID: "dev-0", Group: "devices", Topic: "fleet/0/t", Seq: s})
	}
	// Read: 1, 3, 2 (out of order), 3 again (a duplicate); 4 never (lost).
	for i, s := range []uint64{1, 3, 2, 3} {
		evs = append(evs, events.Event{Time: at(100 + i), Kind: events.PublishReceived, Source: events.SourceKafka, ClientID: "kw", Topic: "fleet/0/t", Seq: s})
	}
	one, zero, five := 1, 0, 5
	whole := span{from: t0.Add(-time.Second), to: t0.Add(time.Minute)}
	for _, tc := range []struct {
		name string
		a    Assertion
		pass bool
	}{
		{"any order, loss and duplicate allowed", Assertion{Order: OrderAny, MaxLost: &one, MaxDup: &one}, true},
		{"per-key order", Assertion{Order: OrderPerKey, MaxLost: &one, MaxDup: &one}, false},
		{"per-key order, one violation allowed", Assertion{Order: OrderPerKey, MaxLost: &one, MaxDup: &one, MaxOutOfOrder: &one}, true},
		{"the bug shows: loss, duplicates, disorder", Assertion{Order: OrderAny, MinLost: &one, MinDup: &one, MinOutOfOrder: &one}, true},
		{"the bug must show more loss than happened", Assertion{Order: OrderAny, MinLost: &five, MaxDup: &one}, false},
		{"min_lost does not lift an explicit max_lost", Assertion{Order: OrderAny, MinLost: &one, MaxLost: &zero, MaxDup: &one}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			a.Expect, a.From, a.To, a.Basis = ExpectDelivery, &Matcher{Group: "devices"}, &Matcher{Client: "kw"}, "sent"
			v, err := checkDelivery(&a, evs, whole, t0)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(v.msg)
			if v.pass != tc.pass {
				t.Errorf("pass = %v, want %v: %s", v.pass, tc.pass, v.msg)
			}
		})
	}
}
