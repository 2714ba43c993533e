package topictree

import (
	"github.com/mqttfleet/mqttfleet/packet"
)

// rnode is one topic level of the retained trie.
type rnode struct {
	kids children[rnode]
	msg  *packet.Publish
}

// Retained is the retained-message store, a trie by topic level so that a
// wildcard subscription visits only the branches it can match. It has no
// lock of its own: the caller serialises access (the broker's retMu), so
// one lock guards it, not two.
type Retained struct {
	root  rnode
	n     int
	bytes int // sum of Size over stored messages
}

// Size is what a retained message counts against a byte limit: its topic
// and payload.
func Size(msg *packet.Publish) int { return len(msg.Topic) + len(msg.Payload) }

// NewRetained returns an empty retained store.
func NewRetained() *Retained { return &Retained{} }

// Set stores msg as the retained message of msg.Topic, replacing any; an empty payload removes it
// [MQTT-3.3.1-10], [MQTT-3.3.1-11]. It keeps msg as given (the caller passes a message it no longer mutates).
// stored reports whether msg is now the topic's retained message.
func (r *Retained) Set(msg *packet.Publish) (stored bool) {
	if len(msg.Payload) == 0 {
		r.clear(msg.Topic)
		return false
	}
	n := &r.root
	for rest, more := msg.Topic, true; more; {
		var level string
		level, rest, more = nextLevel(rest)
		c := n.kids.get(level)
		if c == nil {
			c = &rnode{}
			n.kids.set(level, c)
		}
		n = c
	}
	if n.msg == nil {
		r.n++
	} else {
		r.bytes -= Size(n.msg)
	}
	r.bytes += Size(msg)
	n.msg = msg
	return true
}

// clear removes topic's retained message and prunes the branch left empty.
func (r *Retained) clear(topic string) {
	type step struct {
		parent *rnode
		level  string
	}
	var path [16]step
	steps := path[:0]
	n := &r.root
	for rest, more := topic, true; more; {
		var level string
		level, rest, more = nextLevel(rest)
		c := n.kids.get(level)
		if c == nil {
			return
		}
		steps = append(steps, step{n, level})
		n = c
	}
	if n.msg == nil {
		return
	}
	r.bytes -= Size(n.msg)
	n.msg = nil
	r.n--
	for j := len(steps) - 1; j >= 0 && n.msg == nil && n.kids.len() == 0; j-- {
		steps[j].parent.kids.del(steps[j].level)
		n = steps[j].parent
	}
}

// Match calls fn for every retained message whose topic matches filter, in no
// particular order. The matches are collected before fn runs, so fn may call
// Set.
func (r *Retained) Match(filter string, fn func(*packet.Publish)) {
	msgs := r.root.match(filter, true, nil)
	for _, m := range msgs {
		fn(m)
	}
}

// match appends the messages under n that match the filter levels in rest.
// atRoot marks the first level, where wildcards skip '$' topics [MQTT-4.7.2-1].
func (n *rnode) match(rest string, atRoot bool, out []*packet.Publish) []*packet.Publish {
	level, rest, more := nextLevel(rest)
	switch level {
	case "#":
		// '#' matches the parent level ("sport/#" matches "sport") and
		// everything below it.
		if n.msg != nil {
			out = append(out, n.msg)
		}
		for l, c := range n.kids.all() {
			if atRoot && len(l) > 0 && l[0] == '$' {
				continue
			}
			out = c.all(out)
		}
	case "+":
		for l, c := range n.kids.all() {
			if atRoot && len(l) > 0 && l[0] == '$' {
				continue
			}
			out = c.step(rest, more, out)
		}
	default:
		if c := n.kids.get(level); c != nil {
			out = c.step(rest, more, out)
		}
	}
	return out
}

// step continues a match at n, the node of the level just matched.
func (n *rnode) step(rest string, more bool, out []*packet.Publish) []*packet.Publish {
	if !more {
		if n.msg != nil {
			out = append(out, n.msg)
		}
		return out
	}
	return n.match(rest, false, out)
}

// all appends every message at or below n.
func (n *rnode) all(out []*packet.Publish) []*packet.Publish {
	if n.msg != nil {
		out = append(out, n.msg)
	}
	for _, c := range n.kids.all() {
		out = c.all(out)
	}
	return out
}

// Get returns topic's retained message, or nil.
func (r *Retained) Get(topic string) *packet.Publish {
	n := &r.root
	for rest, more := topic, true; more; {
		var level string
		level, rest, more = nextLevel(rest)
		if n = n.kids.get(level); n == nil {
			return nil
		}
	}
	return n.msg
}

// Bytes returns the sum of Size over the retained messages.
func (r *Retained) Bytes() int {
	return r.bytes
}

// Len returns the number of retained messages.
func (r *Retained) Len() int {
	return r.n
}
