package broker

import "github.com/mqttfleet/mqttfleet/packet"

// Topic Aliases the broker sends to an MQTT 5 client that allows them
// (Topic Alias Maximum > 0 in its CONNECT). The policy, chosen to be
// predictable and cheap:
//
//   - the first distinct topics sent on the connection get aliases 1, 2, ...
//     up to min(topic_alias_out, the client's Topic Alias Maximum)
//     [MQTT-3.1.2-26] [MQTT-3.3.2-11]; 0 is never used [MQTT-3.3.2-8];
//   - the first PUBLISH on such a topic carries the topic and the alias,
//     every later one the alias and an empty topic;
//   - an alias, once given, is never remapped: later topics go out in full;
//   - topics of fewer than minAliasTopic bytes get none (an alias-only
//     PUBLISH spends 5 bytes on the topic: an empty string and the property).
//
// The mapping lives and dies with the connection [MQTT-3.3.2-7]: a resumed
// session starts with none. Only the writer goroutine of the connection
// (one at a time, see writeLoop) touches it, so it needs no lock, and the
// messages it rewrites are never modified: they may be shared by every
// subscriber (QoS 0 fan-out) or kept for a resend, so the alias goes on a
// scratch copy encoded at once. Clients without aliases pay one nil check.

// minAliasTopic is the shortest topic given an alias.
const minAliasTopic = 4

// outAliases is one connection's outgoing Topic Alias state.
type outAliases struct {
	max     uint16            // highest alias: the client's maximum, capped by topic_alias_out
	maxOut  int               // the client's Maximum Packet Size; 0: none
	topics  map[string]uint16 // topic -> alias; len is the highest alias given
	scratch packet.AliasCopy  // the PUBLISH being encoded, with its alias
}

// rewrite returns the PUBLISH to encode in place of p, and the alias it
// newly assigned (0 when none: p was sent as it is, or with a known alias).
// The result is valid until the next call.
func (a *outAliases) rewrite(p *packet.Publish) (*packet.Publish, uint16) {
	if len(p.Topic) < minAliasTopic {
		return p, 0
	}
	alias, known := a.topics[p.Topic]
	fresh := uint16(0)
	if !known {
		if len(a.topics) >= int(a.max) {
			return p, 0 // every alias is taken: the topic goes out in full
		}
		if a.topics == nil {
			a.topics = make(map[string]uint16, min(int(a.max), 64))
		}
		alias = uint16(len(a.topics) + 1)
		a.topics[p.Topic] = alias
		fresh = alias
	}
	return a.scratch.Set(p, alias, known), fresh
}

// forget undoes the assignment of a fresh alias whose PUBLISH was not sent
// with it (it would not fit the client's Maximum Packet Size).
func (a *outAliases) forget(topic string) { delete(a.topics, topic) }

// appendPublish encodes a PUBLISH for this connection onto buf, with a
// Topic Alias where the policy gives one. A first use of an alias adds 3
// bytes: a PUBLISH that then would not fit the client's Maximum Packet Size
// goes out in full, without the alias, as fits measured it. (The alias-only
// form of a topic of minAliasTopic bytes or more is never longer than the
// full one, even when a length prefix grows; the check covers it anyway.)
func (c *conn) appendPublish(buf []byte, p *packet.Publish) ([]byte, error) {
	a := c.aliasOut
	q, fresh := a.rewrite(p)
	if q == p {
		return packet.Append(buf, p, packet.V5)
	}
	start := len(buf)
	out, err := packet.Append(buf, q, packet.V5)
	if err != nil || (a.maxOut > 0 && len(out)-start > a.maxOut) {
		if fresh != 0 {
			a.forget(p.Topic)
		}
		return packet.Append(buf[:start], p, packet.V5)
	}
	return out, err
}
