package scenarios

import (
	"fmt"
	"sort"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/topictree"
	"github.com/mqttfleet/mqttfleet/events"
)

// msgKey names one message: the simulator's convention is one publisher per
// topic with sequence numbers from 1, so topic and sequence number suffice.
type msgKey struct {
	topic string
	seq   uint64
}

// checkDelivery accounts every message the publishers (From) sent during the
// window against what each receiver (To) got: a receiver expects the
// messages whose topic matches a filter it subscribed to (from its
// subscribed events, so the check needs nothing from the broker). Lost are
// expected messages never received; duplicates are messages received more
// than once by one receiver.
func checkDelivery(a *Assertion, evs []events.Event, during span, t0 time.Time) (verdict, error) {
	from := a.From.match()
	toM := *a.To
	toM.Kind = nil
	to := toM.match()
	sentKind := events.PublishSent
	if a.Basis == "acked" {
		sentKind = events.PublishAcked
	}
	sent := map[msgKey]events.Event{}
	var sentOrder []msgKey
	filters := map[string]map[string]bool{} // receiver -> filters
	received := map[string]map[msgKey][]events.Event{}
	var receivers []string
	for _, e := range evs {
		switch {
		case e.Kind == sentKind && e.Seq > 0 && from(e) && during.has(e.Time):
			k := msgKey{e.Topic, e.Seq}
			if _, ok := sent[k]; !ok {
				sentOrder = append(sentOrder, k)
			}
			sent[k] = e
		case e.Kind == events.Subscribed && e.Source != events.SourceBroker && to(e) && e.QoS < 0x80:
			if filters[e.ClientID] == nil {
				filters[e.ClientID] = map[string]bool{}
				receivers = append(receivers, e.ClientID)
			}
			filters[e.ClientID][e.Topic] = true
		case e.Kind == events.PublishReceived && e.Seq > 0 && e.Source != events.SourceBroker && to(e):
			if received[e.ClientID] == nil {
				received[e.ClientID] = map[msgKey][]events.Event{}
			}
			k := msgKey{e.Topic, e.Seq}
			received[e.ClientID][k] = append(received[e.ClientID][k], e)
		}
	}
	if len(sent) == 0 && a.Basis == "acked" {
		return verdict{}, fmt.Errorf("basis acked needs publishers whose acks carry sequence numbers (scenario clients); none found for %s", a.From)
	}
	if len(receivers) == 0 {
		return verdict{msg: fmt.Sprintf("no receiver matching %s subscribed to anything", a.To)}, nil
	}
	sort.Strings(receivers)
	var expected, lost, dups int
	var lostEv, dupEv []events.Event
	for _, rc := range receivers {
		for _, k := range sentOrder {
			if !matchesAny(filters[rc], k.topic) {
				continue
			}
			expected++
			got := received[rc][k]
			switch {
			case len(got) == 0:
				lost++
				if len(lostEv) < 10 {
					lostEv = append(lostEv, sent[k])
				}
			case len(got) > 1:
				dups += len(got) - 1
				if len(dupEv) < 10 {
					dupEv = append(dupEv, got...)
				}
			}
		}
	}
	maxLost, maxDup := 0, 0
	if a.MaxLost != nil {
		maxLost = *a.MaxLost
	}
	if a.MaxDup != nil {
		maxDup = *a.MaxDup
	}
	minMsgs := max(a.MinChecks, 1)
	v := verdict{pass: lost <= maxLost && dups <= maxDup && expected >= minMsgs}
	v.msg = fmt.Sprintf("%d messages %s by %s, %d deliveries expected at %d receivers: %d lost (max %d), %d duplicates (max %d)",
		len(sent), map[bool]string{true: "acked", false: "sent"}[a.Basis == "acked"], a.From, expected, len(receivers), lost, maxLost, dups, maxDup)
	if expected < minMsgs {
		v.msg += fmt.Sprintf("; want at least %d expected deliveries", minMsgs)
	}
	v.evidence = append(lostEv, dupEv...)
	if len(v.evidence) == 0 {
		for _, k := range sentOrder {
			v.evidence = append(v.evidence, sent[k])
			if len(v.evidence) >= 5 {
				break
			}
		}
	}
	return v, nil
}

func matchesAny(filters map[string]bool, topic string) bool {
	for f := range filters {
		if topictree.Matches(f, topic) {
			return true
		}
	}
	return false
}
