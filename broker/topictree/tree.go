// Package topictree holds the reference broker's subscription tree and its
// retained-message store.
//
// Both are tries keyed by topic level. A publish walks the subscription trie
// once, following at each level the literal child, the '+' child and the '#'
// child, so its cost grows with the topic's depth and the number of matching
// subscribers, not with the number of subscriptions:
//
//	root ──"sensors"──> n ──"+"──> n ──"temp"──> n [subs: c1 QoS1, c7 QoS0]
//	  │                  └─"#"──> n [subs: logger QoS0]
//	  └─"#"──> n [subs: audit QoS2]   (never for topics starting with '$')
//
// Shared subscriptions ($share/{name}/{filter}, MQTT 5) live beside subs in
// the node of {filter}, one Group per share name (shared.go); Match ignores
// them and MatchShared finds them.
package topictree

import (
	"slices"
	"strings"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Sub is one client's subscription as stored in the tree.
type Sub struct {
	ClientID string
	packet.Subscription
	// IDs holds the MQTT 5 Subscription Identifier of the subscription
	// (nil without one). In a Match result it lists the identifiers of
	// every subscription of the client that matched [MQTT-3.3.4-3].
	IDs []uint32
}

// indexAt is the number of subscribers a node holds before it builds a
// client ID index; below it a linear scan is cheaper than a map.
const indexAt = 32

// node is one topic level of the subscription trie.
type node struct {
	kids children[node]
	plus *node // the '+' child
	hash *node // the '#' child
	subs []Sub
	idx  map[string]int32 // ClientID -> position in subs, once len(subs) >= indexAt
	// groups are the shared subscriptions on this node's filter (shared.go).
	groups []*Group
}

func (n *node) empty() bool {
	return len(n.subs) == 0 && len(n.groups) == 0 && n.kids.len() == 0 && n.plus == nil && n.hash == nil
}

func (n *node) child(level string) *node {
	switch level {
	case "+":
		return n.plus
	case "#":
		return n.hash
	}
	return n.kids.get(level)
}

func (n *node) addChild(level string) *node {
	c := &node{}
	switch level {
	case "+":
		n.plus = c
	case "#":
		n.hash = c
	default:
		n.kids.set(level, c)
	}
	return c
}

func (n *node) delChild(level string) {
	switch level {
	case "+":
		n.plus = nil
	case "#":
		n.hash = nil
	default:
		n.kids.del(level)
	}
}

func (n *node) find(clientID string) int {
	if n.idx != nil {
		if i, ok := n.idx[clientID]; ok {
			return int(i)
		}
		return -1
	}
	for i := range n.subs {
		if n.subs[i].ClientID == clientID {
			return i
		}
	}
	return -1
}

func (n *node) add(s Sub) {
	n.subs = append(n.subs, s)
	switch {
	case n.idx != nil:
		n.idx[s.ClientID] = int32(len(n.subs) - 1)
	case len(n.subs) >= indexAt:
		n.idx = make(map[string]int32, len(n.subs))
		for i := range n.subs {
			n.idx[n.subs[i].ClientID] = int32(i)
		}
	}
}

func (n *node) remove(i int) {
	last := len(n.subs) - 1
	if n.idx != nil {
		delete(n.idx, n.subs[i].ClientID)
	}
	if i != last {
		n.subs[i] = n.subs[last]
		if n.idx != nil {
			n.idx[n.subs[i].ClientID] = int32(i)
		}
	}
	n.subs[last] = Sub{} // drop the strings for the collector
	n.subs = n.subs[:last]
	switch {
	case last == 0:
		n.subs, n.idx = nil, nil
	case cap(n.subs) > 64 && last < cap(n.subs)/4:
		// Give back memory after a crowd of subscribers left.
		n.subs = slices.Clip(slices.Clone(n.subs))
	}
	if n.idx != nil && last < indexAt/2 {
		n.idx = nil
	}
}

// Tree is the subscription tree. It has no lock of its own: the caller
// serialises writes against everything else (the broker's subMu, a
// RWMutex, read-locked around Match so publishes proceed in parallel), so one
// lock guards it, not two. Match, Count and the other readers do not write.
type Tree struct {
	root   node
	count  int // subscriptions, shared memberships included
	groups int // shared subscription groups
}

// New returns an empty subscription tree.
func New() *Tree { return &Tree{} }

// Subscribe adds or replaces clientID's subscription to sub.Filter; existed reports a replace. [MQTT-3.8.4-3]
// The tree keeps sub.Filter's string as given.
func (t *Tree) Subscribe(clientID string, sub packet.Subscription) (existed bool) {
	return t.SubscribeID(clientID, sub, 0)
}

// SubscribeID is Subscribe with an MQTT 5 Subscription Identifier (0: none).
// A replacing subscription without one drops the identifier of the old one.
func (t *Tree) SubscribeID(clientID string, sub packet.Subscription, id uint32) (existed bool) {
	n := t.walkCreate(sub.Filter)
	s := Sub{ClientID: clientID, Subscription: sub}
	if id != 0 {
		s.IDs = []uint32{id}
	}
	if i := n.find(clientID); i >= 0 {
		n.subs[i] = s
		return true
	}
	n.add(s)
	t.count++
	return false
}

// walkCreate returns the node of filter, making the missing ones.
func (t *Tree) walkCreate(filter string) *node {
	n := &t.root
	for rest, more := filter, true; more; {
		var level string
		level, rest, more = nextLevel(rest)
		c := n.child(level)
		if c == nil {
			c = n.addChild(level)
		}
		n = c
	}
	return n
}

// Unsubscribe removes clientID's subscription to filter; existed reports whether there was one.
func (t *Tree) Unsubscribe(clientID, filter string) (existed bool) {
	return t.remove(filter, func(n *node) bool {
		i := n.find(clientID)
		if i < 0 {
			return false
		}
		n.remove(i)
		t.count--
		return true
	})
}

// remove finds the node of filter, lets drop take an entry out of it and
// prunes the nodes left empty; it reports what drop did.
func (t *Tree) remove(filter string, drop func(*node) bool) (existed bool) {
	// The path is kept to prune nodes left empty, so that a fleet of
	// short-lived clients with unique topics does not grow the tree forever.
	type step struct {
		parent *node
		level  string
	}
	var path [16]step
	steps := path[:0]
	n := &t.root
	for rest, more := filter, true; more; {
		var level string
		level, rest, more = nextLevel(rest)
		c := n.child(level)
		if c == nil {
			return false
		}
		steps = append(steps, step{n, level})
		n = c
	}
	if !drop(n) {
		return false
	}
	for j := len(steps) - 1; j >= 0 && n.empty(); j-- {
		steps[j].parent.delChild(steps[j].level)
		n = steps[j].parent
	}
	return true
}

// Count returns the number of (client, filter) subscriptions.
func (t *Tree) Count() int {
	return t.count
}

// Match appends to dst one Sub per client whose subscriptions match topic, with the
// highest QoS among that client's matching subscriptions [MQTT-3.3.5-1], and returns dst.
//
// When one client has several matching subscriptions, the Sub returned is the
// one with the highest QoS, except that NoLocal is set only if every matching
// subscription set it, and RetainAsPublished if any did: the message then goes
// out whenever at least one subscription asked for it; IDs lists the
// Subscription Identifiers of all of them [MQTT-3.3.4-4]. Match allocates
// nothing beyond growing dst, except a merged IDs list when two or more of a
// client's matching subscriptions carry identifiers. Shared subscriptions
// are left to MatchShared.
func (t *Tree) Match(topic string, dst []Sub) []Sub {
	m := matcher{dst: dst, start: len(dst)}
	root := &t.root
	// [MQTT-4.7.2-1] A '$' topic is skipped by the root's wildcards.
	dollar := len(topic) > 0 && topic[0] == '$'
	if !dollar && root.hash != nil {
		m.collect(root.hash)
	}
	level, rest, more := nextLevel(topic)
	if c := root.kids.get(level); c != nil {
		c.match(rest, more, &m)
	}
	if !dollar && root.plus != nil {
		root.plus.match(rest, more, &m)
	}
	if m.hits > 1 {
		m.dedup()
	}
	return m.dst
}

// matcher is the state of one Match call.
type matcher struct {
	dst   []Sub
	start int   // len(dst) on entry: entries before it are the caller's
	hits  int   // number of nodes whose subscribers were appended
	big   *node // the node with the most subscribers appended
	bigAt int   // where big's subscribers start in dst
}

// match collects the subscribers of n and its descendants that match the
// topic levels left in rest (none if more is false).
func (n *node) match(rest string, more bool, m *matcher) {
	if n.hash != nil {
		// '#' matches its parent level too: "sport/#" matches "sport".
		m.collect(n.hash)
	}
	if !more {
		m.collect(n)
		return
	}
	level, rest, more := nextLevel(rest)
	if c := n.kids.get(level); c != nil {
		c.match(rest, more, m)
	}
	if n.plus != nil {
		n.plus.match(rest, more, m)
	}
}

// collect appends n's subscribers.
func (m *matcher) collect(n *node) {
	if len(n.subs) == 0 {
		return
	}
	if m.big == nil || len(n.subs) > len(m.big.subs) {
		m.big, m.bigAt = n, len(m.dst)
	}
	m.dst = append(m.dst, n.subs...)
	m.hits++
}

// dedup merges the entries of dst[start:] that share a client ID [MQTT-3.3.5-1].
// Within one node a client appears once, so duplicates only span nodes. The
// usual overlap is a large fan-out node plus a few wildcard subscribers, so
// rather than sorting everything, the few "other" entries are looked up in the
// big node (through its client index when it has one) and sorted among
// themselves.
func (m *matcher) dedup() {
	seg := m.dst[m.start:]
	bigLen := len(m.big.subs)
	// Rotate the big block to the end: others = seg[:k], big = seg[k:].
	rotate(seg[m.bigAt-m.start:], bigLen)
	k := len(seg) - bigLen
	others, big := seg[:k], seg[k:]
	w := 0
	for r := range others {
		if i := m.big.find(others[r].ClientID); i >= 0 {
			merge(&big[i], &others[r])
			continue
		}
		others[w] = others[r]
		w++
	}
	others = others[:w]
	slices.SortFunc(others, func(a, b Sub) int { return strings.Compare(a.ClientID, b.ClientID) })
	w = 0
	for r := range others {
		if w > 0 && others[w-1].ClientID == others[r].ClientID {
			merge(&others[w-1], &others[r])
			continue
		}
		others[w] = others[r]
		w++
	}
	n := copy(seg[w:], big)
	clear(seg[w+n:])
	m.dst = m.dst[:m.start+w+n]
}

// rotate moves the first n entries of s to its end, in place.
func rotate(s []Sub, n int) {
	slices.Reverse(s[:n])
	slices.Reverse(s[n:])
	slices.Reverse(s)
}

func merge(into, s *Sub) {
	noLocal := into.NoLocal && s.NoLocal
	rap := into.RetainAsPublished || s.RetainAsPublished
	ids := into.IDs
	if len(s.IDs) > 0 {
		// One copy carries every matching identifier [MQTT-3.3.4-4]. The
		// full slice expression makes append copy: into.IDs may be the
		// tree's own slice. Only overlapping subscriptions with identifiers
		// pay for it.
		ids = append(ids[:len(ids):len(ids)], s.IDs...)
	}
	if s.QoS > into.QoS {
		*into = *s
	}
	into.NoLocal, into.RetainAsPublished, into.IDs = noLocal, rap, ids
}
