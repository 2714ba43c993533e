package scenarios

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// The ledger owes a receiver the messages sent after its SUBACK, on topics
// its filters match; it counts a message never received as lost, a second
// copy as a duplicate and a late first copy as out of order.
func TestLedger(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	sent := func(ms int, topic string, seq uint64) events.Event {
		return events.Event{Time: at(ms), Kind: events.PublishSent, Source: events.SourceSimulator, ClientID: "pub", Group: "pubs", Topic: topic, Seq: seq}
	}
	got := func(ms int, rc, topic string, seq uint64) events.Event {
		return events.Event{Time: at(ms), Kind: events.PublishReceived, Source: events.SourceSimulator, ClientID: rc, Group: "subs", Topic: topic, Seq: seq}
	}
	evs := []events.Event{
		sent(0, "t/1", 1), // before any SUBACK: not owed, even though r1 gets it
		got(5, "r1", "t/1", 1),
		{Time: at(10), Kind: events.Subscribed, Source: events.SourceSimulator, ClientID: "r1", Group: "subs", Topic: "t/+", QoS: 1},
		{Time: at(10), Kind: events.Subscribed, Source: events.SourceSimulator, ClientID: "r2", Group: "subs", Topic: "other/#", QoS: 1},
		sent(20, "t/1", 2), sent(30, "t/1", 3), sent(40, "t/1", 4), sent(50, "x/1", 1),
		got(35, "r1", "t/1", 3), got(36, "r1", "t/1", 2), // 2 after 3: out of order
		got(37, "r1", "t/1", 3), // a second copy
		// 4 never arrives: lost. x/1 matches no filter: not owed.
	}
	all := func(events.Event) bool { return true }
	l := account(evs, ledgerOptions{from: all, to: all, during: span{to: at(1000)}, sentKind: events.PublishSent, perGroup: true})
	if l.expected != 3 || l.lost != 1 || l.dups != 1 || l.outOfOrder != 1 || l.receivers != 2 {
		t.Fatalf("ledger expected %d lost %d dups %d ooo %d receivers %d; want 3, 1, 1, 1, 2", l.expected, l.lost, l.dups, l.outOfOrder, l.receivers)
	}
	if g := l.byGroup["subs"]; g == nil || g.lost != 1 || g.expected != 3 {
		t.Fatalf("group subs: %+v", g)
	}
	// A window on the sends: only message 2 is in [15 ms, 25 ms].
	l = account(evs, ledgerOptions{from: all, to: all, during: span{from: at(15), to: at(25)}, sentKind: events.PublishSent})
	if l.expected != 1 || l.lost != 0 {
		t.Fatalf("windowed ledger expected %d lost %d, want 1 and 0", l.expected, l.lost)
	}
}
