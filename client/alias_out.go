package client

import (
	"context"
	"sync"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Topic Aliases the client sends (Options.TopicAliases, MQTT 5 only). The
// policy is "first come, kept": predictable, and cheap for devices that
// publish on a few fixed topics, which is what the fleet simulates.
//
//   - The server's CONNACK sets the budget: its Topic Alias Maximum. Absent
//     or 0, the client sends no alias [MQTT-3.2.2-18]; otherwise it never
//     sends one above it [MQTT-3.2.2-17] [MQTT-3.3.2-9], and never 0
//     [MQTT-3.3.2-8].
//   - The first distinct topics published on the connection get aliases
//     1, 2, ... up to that maximum. The first PUBLISH on such a topic
//     carries the topic and its alias, every later one the alias and an
//     empty topic. Once the aliases are all given, further topics go out in
//     full; an alias is never remapped (no LRU: a wide set of topics would
//     churn mappings and spend 3 bytes more per PUBLISH instead of saving).
//   - Topics shorter than minAliasTopic bytes get none: the alias costs
//     3 bytes, the topic it saves its length.
//   - The mapping belongs to the connection [MQTT-3.3.2-7]: a new Client
//     starts with none. A Session's messages resent on a later connection
//     carry their full topic and no alias (they are copies of what the
//     caller published, which never carry one of ours).
//
// Only the holder of the write slot touches the state, and the decision is
// made while the slot is held, so the PUBLISH that sets an alias always
// reaches the server before any that uses it. The caller's PUBLISH is never
// changed: it may be kept by a Session, and its props shared by many
// publishes; the alias goes on a pooled scratch copy that is encoded at once.

// minAliasTopic is the shortest topic given an alias.
const minAliasTopic = 4

// aliasIndexFrom is how many aliases a connection gives before it looks
// them up in a map rather than scanning: a device has a few topics, and a
// map costs it hundreds of bytes.
const aliasIndexFrom = 8

// aliasOut is one connection's outgoing Topic Alias state; nil on a
// connection that sends none. It stays small (a fleet holds one per
// device): the scratch PUBLISH is borrowed from aliasScratch per write.
type aliasOut struct {
	max    uint16            // the server's Topic Alias Maximum, above 0
	topics []string          // topics[i] has alias i+1
	index  map[string]uint16 // topic -> alias, once there are more than aliasIndexFrom
}

// aliasScratch is the copy of a PUBLISH being written with an alias, shared
// by every client: one is held only while its PUBLISH is encoded.
type aliasScratch = packet.AliasCopy

var aliasScratches = sync.Pool{New: func() any { return new(aliasScratch) }}

// lookup returns the alias of topic, 0 when it has none.
func (a *aliasOut) lookup(topic string) uint16 {
	if a.index != nil {
		return a.index[topic]
	}
	for i, t := range a.topics {
		if t == topic {
			return uint16(i + 1)
		}
	}
	return 0
}

// assign gives topic the next alias, or returns 0 when all are given: an
// alias is never remapped, so the topic goes out in full.
func (a *aliasOut) assign(topic string) uint16 {
	if len(a.topics) >= int(a.max) {
		return 0
	}
	a.topics = append(a.topics, topic)
	alias := uint16(len(a.topics)) // 1..max, never 0
	if a.index == nil && len(a.topics) > aliasIndexFrom {
		a.index = make(map[string]uint16, 2*len(a.topics))
		for i, t := range a.topics {
			a.index[t] = uint16(i + 1)
		}
	} else if a.index != nil {
		a.index[topic] = alias
	}
	return alias
}

// forget undoes the last assignment, whose PUBLISH was not written.
func (a *aliasOut) forget() {
	last := a.topics[len(a.topics)-1]
	a.topics = a.topics[:len(a.topics)-1]
	if a.index != nil {
		delete(a.index, last)
	}
}

// rewrite returns the PUBLISH to write in place of p, the alias it carries
// (0: none, p itself is returned) and whether the alias is assigned by this
// PUBLISH (sent with the topic) rather than reused (sent with an empty one).
// A rewritten PUBLISH lives in s.
func (a *aliasOut) rewrite(p *packet.Publish, s *aliasScratch) (q *packet.Publish, alias uint16, fresh bool) {
	if len(p.Topic) < minAliasTopic {
		return p, 0, false
	}
	alias = a.lookup(p.Topic)
	if alias == 0 {
		if alias = a.assign(p.Topic); alias == 0 {
			return p, 0, false
		}
		fresh = true
	}
	return s.Set(p, alias, !fresh), alias, fresh
}

// enableAliasOut sets up outgoing aliases after CONNACK when the options
// ask for them and the server allows some.
func (c *Client) enableAliasOut(ack *packet.Connack) {
	if !c.opts.TopicAliases || c.version != packet.V5 || ack.Props == nil {
		return
	}
	if m := ack.Props.TopicAliasMaximum; m != nil && *m > 0 {
		c.aliasOut = &aliasOut{max: *m}
	}
}

// sendPublish writes a new PUBLISH, with a Topic Alias where the policy
// gives one. It returns what send does, and the alias the PUBLISH carried
// (0: none) and whether it was assigned by it.
func (c *Client) sendPublish(ctx context.Context, pub *packet.Publish) (wrote bool, alias uint16, fresh bool, err error) {
	if c.aliasOut == nil {
		wrote, err = c.send(ctx, pub)
		return wrote, 0, false, err
	}
	if err := c.acquireWrite(ctx); err != nil {
		return false, 0, false, err
	}
	defer c.releaseWrite()
	s := aliasScratches.Get().(*aliasScratch)
	q, alias, fresh := c.aliasOut.rewrite(pub, s)
	wrote, err = c.writeLocked(ctx, q)
	*s = aliasScratch{} // drop the references to the caller's PUBLISH
	aliasScratches.Put(s)
	if !wrote && fresh {
		// Nothing reached the server: the alias is not set there. (A
		// partial write ends the link, and the mapping with it.)
		c.aliasOut.forget()
	}
	return wrote, alias, fresh, err
}
