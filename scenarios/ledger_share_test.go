package scenarios

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// A share group ledger owes each message once to the members together, from
// the first member's SUBACK on the filter after "$share/{name}/": a message
// no member got is lost, a copy beyond the first at any member is a
// duplicate, and arrival order across members is not counted.
func TestLedgerShareGroup(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	sent := func(ms int, seq uint64) events.Event {
		return events.Event{Time: at(ms), Kind: events.PublishSent, Source: events.SourceSimulator, ClientID: "pub", Group: "pubs", Topic: "jobs/1", Seq: seq}
	}
	got := func(ms int, rc string, seq uint64) events.Event {
		return events.Event{Time: at(ms), Kind: events.PublishReceived, Source: events.SourceSimulator, ClientID: rc, Group: "workers", Topic: "jobs/1", Seq: seq}
	}
	subscribed := func(ms int, rc string) events.Event {
		return events.Event{Time: at(ms), Kind: events.Subscribed, Source: events.SourceSimulator, ClientID: rc, Group: "workers", Topic: "$share/w/jobs/#", QoS: 2}
	}
	evs := []events.Event{
		subscribed(10, "a"), subscribed(30, "b"),
		sent(20, 1), sent(40, 2), sent(50, 3), sent(60, 4), sent(70, 5),
		got(21, "a", 1),
		got(45, "b", 3), got(46, "a", 2), // order across members is not counted
		got(61, "a", 4), got(62, "b", 4), // one message to two members: a duplicate
		// 5 reaches no member: lost.
	}
	all := func(events.Event) bool { return true }
	l := account(evs, ledgerOptions{from: all, to: all, during: span{to: at(1000)}, sentKind: events.PublishSent, shareGroup: true})
	if l.expected != 5 || l.lost != 1 || l.dups != 1 || l.outOfOrder != 0 || l.receivers != 1 || l.members != 2 {
		t.Fatalf("share group ledger expected %d lost %d dups %d ooo %d receivers %d members %d; want 5, 1, 1, 0, 1, 2",
			l.expected, l.lost, l.dups, l.outOfOrder, l.receivers, l.members)
	}
	// Without share_group a member owes nothing: its filter is not a topic filter.
	l = account(evs, ledgerOptions{from: all, to: all, during: span{to: at(1000)}, sentKind: events.PublishSent})
	if l.expected != 0 {
		t.Fatalf("per-receiver ledger of share group members expected %d, want 0", l.expected)
	}
}
