package client

import (
	"context"

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
// publishes; the alias goes on a scratch copy that is encoded at once.

// minAliasTopic is the shortest topic given an alias.
const minAliasTopic = 4

// aliasOut is one connection's outgoing Topic Alias state; nil on a
// connection that sends none.
type aliasOut struct {
	max    uint16            // the server's Topic Alias Maximum, above 0
	topics map[string]uint16 // topic -> alias; len is the highest alias given
	pub    packet.Publish    // scratch copy of the PUBLISH being written
	props  packet.Properties // its properties
	alias  uint16            // scratch Topic Alias value
}

// rewrite returns the PUBLISH to write in place of p, the alias it carries
// (0: none, p itself is returned) and whether the alias is assigned by this
// PUBLISH (sent with the topic) rather than reused (sent with an empty one).
// The result is valid until the next call.
func (a *aliasOut) rewrite(p *packet.Publish) (q *packet.Publish, alias uint16, fresh bool) {
	if len(p.Topic) < minAliasTopic {
		return p, 0, false
	}
	alias, known := a.topics[p.Topic]
	if !known {
		if len(a.topics) >= int(a.max) {
			return p, 0, false // every alias is taken: the topic goes out in full
		}
		if a.topics == nil {
			a.topics = make(map[string]uint16, min(int(a.max), 16))
		}
		alias = uint16(len(a.topics) + 1) // 1..max, never 0
		a.topics[p.Topic] = alias
	}
	a.pub = *p
	if p.Props != nil {
		a.props = *p.Props
	} else {
		a.props = packet.Properties{}
	}
	a.alias = alias
	a.props.TopicAlias = &a.alias
	a.pub.Props = &a.props
	if known {
		a.pub.Topic = ""
	}
	return &a.pub, alias, !known
}

// forget undoes a fresh assignment whose PUBLISH was not written.
func (a *aliasOut) forget(topic string) { delete(a.topics, topic) }

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
	q, alias, fresh := c.aliasOut.rewrite(pub)
	wrote, err = c.writeLocked(ctx, q)
	if !wrote && fresh {
		// Nothing reached the server: the alias is not set there. (A
		// partial write ends the link, and the mapping with it.)
		c.aliasOut.forget(pub.Topic)
	}
	return wrote, alias, fresh, err
}
