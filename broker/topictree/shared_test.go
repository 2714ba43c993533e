package topictree

import (
	"slices"
	"testing"

	"github.com/mqttfleet/mqttfleet/packet"
)

func TestSharedGroups(t *testing.T) {
	tr := New()
	tr.Subscribe("plain", packet.Subscription{Filter: "jobs/+"})
	if tr.HasShared() {
		t.Fatal("HasShared with no group")
	}
	tr.SubscribeShared("a", "w", packet.Subscription{Filter: "jobs/+", QoS: 1}, 0)
	tr.SubscribeShared("b", "w", packet.Subscription{Filter: "jobs/+", QoS: 2}, 5)
	tr.SubscribeShared("a", "other", packet.Subscription{Filter: "#"}, 0)
	if existed := tr.SubscribeShared("a", "w", packet.Subscription{Filter: "jobs/+", QoS: 2}, 0); !existed {
		t.Error("re-subscribing a member is a replace")
	}
	if tr.Count() != 4 {
		t.Errorf("Count %d, want 4 (one ordinary, three memberships)", tr.Count())
	}
	groups := tr.MatchShared("jobs/1", nil)
	if len(groups) != 2 {
		t.Fatalf("MatchShared found %d groups, want 2", len(groups))
	}
	for _, g := range groups {
		if g.Name == "w" && (len(g.Members) != 2 || g.Members[0].QoS != 2 || !slices.Equal(g.Members[1].IDs, []uint32{5})) {
			t.Errorf("group w members %+v", g.Members)
		}
	}
	if got := tr.MatchShared("$SYS/x", nil); len(got) != 0 {
		t.Errorf("a '#' share group matched a '$' topic [MQTT-4.7.2-1]: %d groups", len(got))
	}
	if got := tr.Match("jobs/1", nil); len(got) != 1 || got[0].ClientID != "plain" {
		t.Errorf("Match returned share group members: %+v", got)
	}
	// Round robin: successive starts walk the members.
	var g *Group
	for _, x := range groups {
		if x.Name == "w" {
			g = x
		}
	}
	if a, b, c := g.Start(), g.Start(), g.Start(); a == b || b == c || a != c {
		t.Errorf("starts %d %d %d, want alternating over two members", a, b, c)
	}
	if !tr.UnsubscribeShared("a", "w", "jobs/+") || tr.UnsubscribeShared("a", "w", "jobs/+") {
		t.Error("UnsubscribeShared: want true once, then false")
	}
	tr.UnsubscribeShared("b", "w", "jobs/+")
	tr.UnsubscribeShared("a", "other", "#")
	if tr.HasShared() || tr.Count() != 1 {
		t.Errorf("after every member left: HasShared %v Count %d", tr.HasShared(), tr.Count())
	}
	tr.Unsubscribe("plain", "jobs/+")
	if !tr.root.empty() {
		t.Error("nodes left behind after the last subscription went")
	}
}

// Match merges the Subscription Identifiers of one client's overlapping
// subscriptions into the one entry it returns, without changing the tree's.
func TestMatchSubscriptionIDs(t *testing.T) {
	tr := New()
	tr.SubscribeID("c", packet.Subscription{Filter: "a/b", QoS: 1}, 7)
	tr.SubscribeID("c", packet.Subscription{Filter: "a/+", QoS: 2}, 9)
	tr.SubscribeID("c", packet.Subscription{Filter: "#"}, 0)
	tr.Subscribe("d", packet.Subscription{Filter: "a/b"})
	for range 2 { // twice: the first merge must not have changed the stored slices
		got := tr.Match("a/b", nil)
		if len(got) != 2 {
			t.Fatalf("Match: %+v", got)
		}
		for _, s := range got {
			ids := slices.Sorted(slices.Values(s.IDs))
			switch s.ClientID {
			case "c":
				if s.QoS != 2 || !slices.Equal(ids, []uint32{7, 9}) {
					t.Errorf("c: QoS %d IDs %v, want 2 and [7 9]", s.QoS, ids)
				}
			case "d":
				if len(ids) != 0 {
					t.Errorf("d: IDs %v, want none", ids)
				}
			}
		}
	}
	tr.SubscribeID("c", packet.Subscription{Filter: "a/+", QoS: 2}, 0) // replaced without an ID
	for _, s := range tr.Match("a/b", nil) {
		if s.ClientID == "c" && !slices.Equal(s.IDs, []uint32{7}) {
			t.Errorf("after the replace: IDs %v, want [7]", s.IDs)
		}
	}
}
