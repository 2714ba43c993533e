package scenarios

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// msgKey names one message: the simulator's convention is one publisher per
// topic with sequence numbers from 1, so topic and sequence number suffice.
type msgKey struct {
	topic string
	seq   uint64
}

// ledger is the delivery accounting of a scenario run, the one both the
// `delivery` assertion and the results' totals (lost, duplicates, expected,
// out_of_order, per group) come from, so a report can never show a figure
// the verdicts disagree with.
//
// A receiver expects the messages whose topic matches a filter it
// subscribed to, sent once its SUBACK had arrived (from its subscribed
// events, so nothing is asked of the broker; the broker routes to a
// subscription before it acknowledges it, so a message sent after the SUBACK
// is owed, one sent before may or may not come). The simulator's tracker
// draws the same line. Lost are expected messages never received by the end of the
// run's drain; duplicates are copies beyond the first that one receiver got;
// out of order counts first receipts whose sequence number is lower than one
// the receiver already had on that topic.
type ledger struct {
	sent       int
	receivers  int
	members    int // share group members (ledgerOptions.shareGroup)
	expected   int
	lost, dups int
	outOfOrder int
	// byGroup is the same accounting per receiver group (device group name,
	// or client name for scenario clients).
	byGroup map[string]*ledger
	lostEv  []events.Event
	dupEv   []events.Event
	// lostAt and dupAt are when each lost message was sent and each extra
	// copy arrived (kept when perGroup: the run's totals place them on the
	// report's per-second series).
	lostAt, dupAt []time.Time
	firstEv       []events.Event // the first sent messages, evidence when nothing went wrong
}

// ledgerOptions select what a ledger accounts.
type ledgerOptions struct {
	from, to events.Match
	during   span
	sentKind events.Kind
	perGroup bool
	// shareGroup accounts the receivers as the members of one MQTT 5
	// shared subscription: one receiver, named shareGroupName, owed each
	// message once, which any member may deliver; a copy beyond the first,
	// at any member, is a duplicate. Their "$share/{name}/" filters count
	// by the topic filter after the prefix. Order is not counted: members
	// run side by side.
	shareGroup bool
}

// shareGroupName is the one receiver of a share group ledger.
const shareGroupName = "share group"

// shareFilter is the topic filter of a shared subscription filter
// "$share/{name}/{filter}", or f itself.
func shareFilter(f string) string {
	rest, ok := strings.CutPrefix(f, "$share/")
	if !ok {
		return f
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i+1:]
	}
	return f
}

// account builds the ledger of evs.
func account(evs []events.Event, o ledgerOptions) *ledger {
	sent := map[msgKey]events.Event{}
	var sentOrder []msgKey
	filters := map[string]map[string]time.Time{} // receiver -> filter -> first SUBACK
	group := map[string]string{}                 // receiver -> its group
	received := map[string]map[msgKey][]events.Event{}
	maxSeq := map[string]map[string]uint64{} // receiver -> topic -> highest seq seen
	ooo := map[string]int{}
	var receivers []string
	members := map[string]bool{} // share group members seen (shareGroup)
	for _, e := range evs {
		switch {
		case e.Kind == o.sentKind && e.Seq > 0 && o.from(e) && o.during.has(e.Time):
			k := msgKey{e.Topic, e.Seq}
			if _, ok := sent[k]; !ok {
				sentOrder = append(sentOrder, k)
			}
			sent[k] = e
		case e.Kind == events.Subscribed && e.Source != events.SourceBroker && o.to(e) && e.QoS < 0x80:
			rc, filter := e.ClientID, e.Topic
			if o.shareGroup {
				members[rc] = true
				rc, filter = shareGroupName, shareFilter(filter)
			}
			if filters[rc] == nil {
				filters[rc] = map[string]time.Time{}
				receivers = append(receivers, rc)
				group[rc] = receiverGroup(e)
			}
			if at, ok := filters[rc][filter]; !ok || e.Time.Before(at) {
				filters[rc][filter] = e.Time
			}
		case e.Kind == events.PublishReceived && e.Seq > 0 && e.Source != events.SourceBroker && o.to(e):
			rc := e.ClientID
			if o.shareGroup {
				rc = shareGroupName
			}
			if received[rc] == nil {
				received[rc] = map[msgKey][]events.Event{}
				maxSeq[rc] = map[string]uint64{}
			}
			k := msgKey{e.Topic, e.Seq}
			if len(received[rc][k]) == 0 && !o.shareGroup {
				if e.Seq < maxSeq[rc][e.Topic] {
					ooo[rc]++
				}
				maxSeq[rc][e.Topic] = max(maxSeq[rc][e.Topic], e.Seq)
			}
			received[rc][k] = append(received[rc][k], e)
		}
	}
	l := &ledger{sent: len(sent), receivers: len(receivers), members: len(members)}
	if o.perGroup {
		l.byGroup = map[string]*ledger{}
	}
	for i, k := range sentOrder {
		if i == 5 {
			break
		}
		l.firstEv = append(l.firstEv, sent[k])
	}
	sort.Strings(receivers)
	for _, rc := range receivers {
		var g *ledger
		if o.perGroup {
			if g = l.byGroup[group[rc]]; g == nil {
				g = &ledger{}
				l.byGroup[group[rc]] = g
			}
			g.receivers++
			g.outOfOrder += ooo[rc]
		}
		l.outOfOrder += ooo[rc]
		for _, k := range sentOrder {
			if !owed(filters[rc], k.topic, sent[k].Time) {
				continue
			}
			got := received[rc][k]
			lost, dups := 0, 0
			switch {
			case len(got) == 0:
				lost = 1
				if len(l.lostEv) < 10 {
					l.lostEv = append(l.lostEv, sent[k])
				}
				if o.perGroup {
					l.lostAt = append(l.lostAt, sent[k].Time)
				}
			case len(got) > 1:
				dups = len(got) - 1
				if len(l.dupEv) < 10 {
					l.dupEv = append(l.dupEv, got...)
				}
				if o.perGroup {
					for _, e := range got[1:] {
						l.dupAt = append(l.dupAt, e.Time)
					}
				}
			}
			l.expected++
			l.lost += lost
			l.dups += dups
			if g != nil {
				g.expected++
				g.lost += lost
				g.dups += dups
			}
		}
	}
	return l
}

// receiverGroup is the group a receiver's accounting is filed under: its
// device group, or its own name for a scenario client.
func receiverGroup(e events.Event) string {
	if e.Group != "" {
		return e.Group
	}
	return e.ClientID
}

// checkDelivery accounts every message the publishers (From) sent during the
// window against what each receiver (To) got; see ledger.
func checkDelivery(a *Assertion, evs []events.Event, during span, t0 time.Time) (verdict, error) {
	toM := *a.To
	toM.Kind = nil
	o := ledgerOptions{from: a.From.match(), to: toM.match(), during: during, sentKind: events.PublishSent, shareGroup: a.ShareGroup}
	if a.Basis == "acked" {
		o.sentKind = events.PublishAcked
	}
	l := account(evs, o)
	if l.sent == 0 && a.Basis == "acked" {
		return verdict{}, fmt.Errorf("basis acked needs publishers whose acks carry sequence numbers (scenario clients); none found for %s", a.From)
	}
	if l.receivers == 0 {
		return verdict{msg: fmt.Sprintf("no receiver matching %s subscribed to anything", a.To)}, nil
	}
	maxLost, maxDup := 0, 0
	if a.MaxLost != nil {
		maxLost = *a.MaxLost
	}
	if a.MaxDup != nil {
		maxDup = *a.MaxDup
	}
	minMsgs := max(a.MinChecks, 1)
	v := verdict{pass: l.lost <= maxLost && l.dups <= maxDup && l.expected >= minMsgs}
	at := fmt.Sprintf("%d receivers", l.receivers)
	if a.ShareGroup {
		at = fmt.Sprintf("a share group of %d members", l.members)
	}
	v.msg = fmt.Sprintf("%d messages %s by %s, %d deliveries expected at %s: %d lost (max %d), %d duplicates (max %d)",
		l.sent, map[bool]string{true: "acked", false: "sent"}[a.Basis == "acked"], a.From, l.expected, at, l.lost, maxLost, l.dups, maxDup)
	if l.expected < minMsgs {
		v.msg += fmt.Sprintf("; want at least %d expected deliveries", minMsgs)
	}
	v.evidence = append(l.lostEv, l.dupEv...)
	if len(v.evidence) == 0 {
		v.evidence = l.firstEv
	}
	applyOrder(a, l, &v)
	return v, nil
}

// owed says whether a message on topic sent at sent is owed to a receiver
// with these filters: one matches it and was acknowledged by then.
func owed(filters map[string]time.Time, topic string, sent time.Time) bool {
	for f, at := range filters {
		if !sent.Before(at) && packet.MatchTopic(f, topic) {
			return true
		}
	}
	return false
}
