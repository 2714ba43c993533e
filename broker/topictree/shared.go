package topictree

import (
	"sync/atomic"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Shared subscriptions (MQTT 5.0 section 4.8.2): "$share/{Name}/{Filter}".
// A group is named by its share name and its filter, and lives in the trie
// node of the filter beside the node's ordinary subscribers, so a publish
// finds it by the same walk. The tree only stores the groups and their
// members; which member gets a message is the broker's choice (it knows
// which sessions are connected and have room), helped by the group's
// round-robin cursor.

// Group is one shared subscription and the sessions subscribed to it.
type Group struct {
	Name   string // the ShareName
	Filter string // the Topic Filter after "$share/{Name}/"
	// Members in the order they joined. Written under the caller's write
	// lock; a reader copies what it needs before letting go of its read
	// lock. A member's Sub is replaced, never changed in place, so a copy
	// (and its IDs slice) stays valid.
	Members []Sub
	next    atomic.Uint32 // round-robin cursor, moved by concurrent readers
}

// Start returns where the next round-robin pass over the members begins,
// moving the cursor one on: successive messages start at successive
// members. Safe under a read lock.
func (g *Group) Start() int {
	n := len(g.Members)
	if n == 0 {
		return 0
	}
	return int((g.next.Add(1) - 1) % uint32(n))
}

// SplitShared splits a shared subscription filter into its share name and
// topic filter; ok is false for any other filter. It does not validate
// them (packet.CheckTopicFilter does).
func SplitShared(filter string) (name, rest string, ok bool) {
	const prefix = "$share/"
	if len(filter) <= len(prefix) || filter[:len(prefix)] != prefix {
		return "", "", false
	}
	name, rest, more := nextLevel(filter[len(prefix):])
	if !more {
		return "", "", false
	}
	return name, rest, true
}

// SubscribeShared adds or replaces clientID's membership of the group name
// on sub.Filter (the filter without the "$share/{name}/" prefix); existed
// reports a replace. id is its MQTT 5 Subscription Identifier (0: none).
func (t *Tree) SubscribeShared(clientID, name string, sub packet.Subscription, id uint32) (existed bool) {
	n := t.walkCreate(sub.Filter)
	var g *Group
	for _, x := range n.groups {
		if x.Name == name {
			g = x
			break
		}
	}
	if g == nil {
		g = &Group{Name: name, Filter: sub.Filter}
		n.groups = append(n.groups, g)
		t.groups++
	}
	s := Sub{ClientID: clientID, Subscription: sub}
	if id != 0 {
		s.IDs = []uint32{id}
	}
	for i := range g.Members {
		if g.Members[i].ClientID == clientID {
			g.Members[i] = s
			return true
		}
	}
	g.Members = append(g.Members, s)
	t.count++
	return false
}

// UnsubscribeShared removes clientID from the group name on filter (without
// the prefix); existed reports whether it was a member. A group left empty
// is removed.
func (t *Tree) UnsubscribeShared(clientID, name, filter string) (existed bool) {
	return t.remove(filter, func(n *node) bool {
		for gi, g := range n.groups {
			if g.Name != name {
				continue
			}
			for i := range g.Members {
				if g.Members[i].ClientID != clientID {
					continue
				}
				// A new slice: readers may hold a copy of the old one's header.
				g.Members = append(g.Members[:i:i], g.Members[i+1:]...)
				if len(g.Members) == 0 {
					n.groups = append(n.groups[:gi:gi], n.groups[gi+1:]...)
					if len(n.groups) == 0 {
						n.groups = nil
					}
					t.groups--
				}
				t.count--
				return true
			}
			return false
		}
		return false
	})
}

// HasShared reports whether any shared subscription exists, so a publish
// that finds none pays nothing for the feature.
func (t *Tree) HasShared() bool { return t.groups > 0 }

// MatchShared appends to dst every group whose filter matches topic, and
// returns dst. Each group is one subscription: a client that is a member of
// two matching groups is listed by both.
func (t *Tree) MatchShared(topic string, dst []*Group) []*Group {
	if t.groups == 0 {
		return dst
	}
	root := &t.root
	dollar := len(topic) > 0 && topic[0] == '$'
	if !dollar && root.hash != nil {
		dst = append(dst, root.hash.groups...)
	}
	level, rest, more := nextLevel(topic)
	if c := root.kids.get(level); c != nil {
		dst = c.matchShared(rest, more, dst)
	}
	if !dollar && root.plus != nil {
		dst = root.plus.matchShared(rest, more, dst)
	}
	return dst
}

func (n *node) matchShared(rest string, more bool, dst []*Group) []*Group {
	if n.hash != nil {
		dst = append(dst, n.hash.groups...)
	}
	if !more {
		return append(dst, n.groups...)
	}
	level, rest, more := nextLevel(rest)
	if c := n.kids.get(level); c != nil {
		dst = c.matchShared(rest, more, dst)
	}
	if n.plus != nil {
		dst = n.plus.matchShared(rest, more, dst)
	}
	return dst
}
