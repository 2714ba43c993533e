package scenarios

import (
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/histogram"
	"github.com/mqttfleet/mqttfleet/reports"
)

// totals writes the run's delivery totals and per-group totals into res
// from the one ledger the `delivery` assertion also uses: the counters a
// report prints are then the assertion's figures over the whole run.
//
// The Collector cannot count loss itself: it sees each message once per
// receiver without knowing who subscribed to what, so its sequence check is
// not fed (see collectorFeed) and these counters replace its zeros.
//
// The window of sends is the one a `delivery` assertion without a window
// uses (moments.sendWindow), so the two figures are the same accounting.
func totals(res *reports.Results, evs []events.Event, sc *Scenario, m moments) error {
	all := func(events.Event) bool { return true }
	during, err := m.sendWindow(nil)
	if err != nil {
		return err
	}
	// A Kafka bridge's MQTT subscription is the pipe to Kafka, accounted
	// at the watchers that read what it produced; as a receiver of its own
	// it would be owed every message and, its receipts carrying no
	// sequence, show them all lost.
	pipes := map[string]bool{}
	if sc.Kafka != nil {
		for _, b := range sc.Kafka.Bridges {
			pipes[b.Name] = true
		}
	}
	receivers := func(e events.Event) bool { return e.Source == events.SourceKafka || !pipes[e.ClientID] }
	l := account(evs, ledgerOptions{from: all, to: receivers, during: during, sentKind: events.PublishSent, perGroup: true})
	if res.Counters == nil {
		res.Counters = map[string]int64{}
	}
	res.Counters["expected"] = int64(l.expected)
	res.Counters["lost"] = int64(l.lost)
	res.Counters["duplicates"] = int64(l.dups)
	res.Counters["out_of_order"] = int64(l.outOfOrder)
	// The chart of messages per second shows the same losses, each at the
	// second its message was sent (a duplicate at the second it arrived).
	if s := res.Series; s != nil && s.Len > 0 {
		for col, times := range map[string][]time.Time{reports.ColLost: l.lostAt, reports.ColDup: l.dupAt} {
			c := s.Columns[col]
			if len(c) != s.Len {
				continue
			}
			clear(c)
			for _, t := range times {
				c[max(0, min(int(t.Unix()-s.Start.Unix()), s.Len-1))]++
			}
		}
	}

	groups := map[string]*reports.Group{}
	for _, g := range sc.Groups {
		groups[g.Name] = &reports.Group{Devices: g.Count, Counters: map[string]int64{}}
	}
	for _, c := range sc.Clients {
		id := c.ClientID
		if id == "" {
			id = c.Name
		}
		groups[id] = &reports.Group{Devices: 1, Counters: map[string]int64{}}
	}
	for _, e := range evs {
		if e.Source == events.SourceBroker {
			continue
		}
		g := groups[receiverGroup(e)]
		if g == nil {
			continue
		}
		switch e.Kind {
		case events.ConnAck:
			if e.Code == 0 {
				g.Counters["connects"]++
			} else {
				g.Counters["connect_failures"]++
			}
		case events.PublishSent:
			g.Counters["publishes_sent"]++
		case events.PublishAcked:
			g.Counters["publishes_acked"]++
		case events.PublishReceived:
			g.Counters["publishes_received"]++
			if e.Latency > 0 {
				if g.E2E == nil {
					g.E2E = histogram.New()
				}
				g.E2E.Record(e.Latency)
			}
		case events.Disconnect:
			g.Counters["disconnects"]++
		}
	}
	for name, gl := range l.byGroup {
		g := groups[name]
		if g == nil {
			continue
		}
		g.Counters["expected"] = int64(gl.expected)
		g.Counters["lost"] = int64(gl.lost)
		g.Counters["duplicates"] = int64(gl.dups)
		g.Counters["out_of_order"] = int64(gl.outOfOrder)
	}
	if len(groups) > 0 {
		res.Groups = groups
	}
	return nil
}
