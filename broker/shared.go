package broker

import (
	"fmt"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/topictree"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 shared subscriptions, "$share/{ShareName}/{filter}" (section
// 4.8.2): each message matching a group's filter goes to one member session.
// The distribution policy (docs/broker.md, "Shared subscriptions"):
//
//   - Round robin: each message starts one member further on, and goes to
//     the first member from there that is connected and has room in its
//     inflight window (QoS 0: that is connected); failing that, to the first
//     connected member (it queues); failing that, to the first member
//     (an offline persistent session, which queues it).
//   - The chosen member's granted QoS applies [MQTT-4.8.2-3].
//   - A member that disconnects keeps what it has in flight, completed when
//     it reconnects [MQTT-4.8.2-4]; what was queued for it but never sent
//     moves to a connected member.
//   - A member whose session ends hands its queued messages and its unacked
//     QoS 1 messages to another member; a QoS 2 message it was sent and did
//     not acknowledge goes to no one else [MQTT-4.8.2-5] (a drop event).
//   - A member that rejects a message (PUBACK/PUBREC 0x80 or more) loses it:
//     it is not offered to another member [MQTT-4.8.2-6].
//   - Retained messages are not sent on a shared subscription (section 4.8.2).
//
// Shared subscriptions are served to 5.0 clients only: for a 3.1.1 client
// "$share/..." stays an ordinary filter, as it was before 5.0.

// shareTag marks a message a session holds because its group chose it: what
// the broker needs to offer the message to another member.
type shareTag struct {
	g        *topictree.Group
	pub      *packet.Publish // as routed: the publisher's QoS and properties
	expireAt time.Duration   // broker clock; 0: no Message Expiry Interval
}

// sharedTarget is one member chosen for one message.
type sharedTarget struct {
	s   *session
	sub topictree.Sub
	g   *topictree.Group
}

// publishShared gives p to one member of every shared subscription group
// it matches, and returns how many groups took it. Only called when the
// tree holds a group.
func (b *Broker) publishShared(p *packet.Publish) int {
	var gbuf [4]*topictree.Group
	var tbuf [4]sharedTarget
	targets := tbuf[:0]
	b.mu.RLock()
	defer b.mu.RUnlock()
	b.subMu.RLock()
	for _, g := range b.tree.MatchShared(p.Topic, gbuf[:0]) {
		if s, sub, ok := b.pickMember(g, p.QoS, nil, false); ok {
			targets = append(targets, sharedTarget{s, sub, g})
		}
	}
	b.subMu.RUnlock()
	if len(targets) == 0 {
		return 0
	}
	for _, t := range targets {
		var tag *shareTag // QoS 0 is sent at once or not at all: nothing to hand on
		if qos := min(p.QoS, t.sub.QoS); qos > 0 {
			tag = &shareTag{g: t.g, pub: p}
			if p.Props != nil && p.Props.MessageExpiry != nil {
				tag.expireAt = b.since() + time.Duration(*p.Props.MessageExpiry)*time.Second
			}
		}
		t.s.deliver(b, p, min(p.QoS, t.sub.QoS), t.sub.RetainAsPublished && p.Retain, t.sub.IDs, tag, nil)
	}
	return len(targets)
}

// pickMember chooses the member of g that gets a message of QoS qos by the
// policy above, never exclude; onlineOnly leaves offline members out.
// b.mu and b.subMu are held (read): b.mu -> subMu -> session.mu.
func (b *Broker) pickMember(g *topictree.Group, qos byte, exclude *session, onlineOnly bool) (*session, topictree.Sub, bool) {
	n := len(g.Members)
	start := g.Start()
	online, any := -1, -1
	for k := range n {
		i := (start + k) % n
		m := &g.Members[i]
		s := b.sessions[m.ClientID]
		if s == nil || s == exclude {
			continue
		}
		q := min(qos, m.QoS)
		s.mu.Lock()
		connected := s.conn != nil
		room := connected && (q == 0 || len(s.inflight)+len(s.queue) < s.window)
		s.mu.Unlock()
		if room {
			return s, *m, true
		}
		if connected && online < 0 {
			online = i
		}
		if any < 0 {
			any = i
		}
	}
	switch {
	case online >= 0:
		return b.sessions[g.Members[online].ClientID], g.Members[online], true
	case any >= 0 && !onlineOnly:
		return b.sessions[g.Members[any].ClientID], g.Members[any], true
	}
	return nil, topictree.Sub{}, false
}

// redeliver offers a message that member from held for its group to
// another member, as a new message for that member; it reports whether one
// took it. b.mu is held.
func (b *Broker) redeliver(t *shareTag, from *session, onlineOnly bool) bool {
	b.subMu.RLock()
	s, sub, ok := b.pickMember(t.g, t.pub.QoS, from, onlineOnly)
	b.subMu.RUnlock()
	if !ok {
		return false
	}
	p := t.pub
	if t.expireAt > 0 {
		left := t.expireAt - b.since()
		if left <= 0 {
			b.drop(from.id, p.Topic, p.QoS, events.CauseExpired, "Message Expiry Interval passed before another share group member took it")
			return true
		}
		p = withExpiry(p, left) // [MQTT-3.3.2-6] the time it waited counts
	}
	s.deliver(b, p, min(p.QoS, sub.QoS), sub.RetainAsPublished && p.Retain, sub.IDs, t, nil)
	b.emit(events.Event{Kind: events.Log, ClientID: s.id, Topic: p.Topic, QoS: min(p.QoS, sub.QoS),
		Detail: fmt.Sprintf("shared subscription $share/%s/%s: message of %s redelivered", t.g.Name, t.g.Filter, from.id)})
	return true
}

// handOffQueued moves the messages queued for s by its share groups, never
// sent, to connected members of those groups: s went offline and others
// can take them now. Messages no other connected member takes stay. b.mu
// is held and s is offline.
func (b *Broker) handOffQueued(s *session) {
	if b.closed {
		return
	}
	s.mu.Lock()
	if len(s.tags) == 0 {
		s.mu.Unlock()
		return
	}
	queued := s.takeTagged()
	s.mu.Unlock()
	var keep []queuedTag
	for _, q := range queued {
		if !b.redeliver(q.tag, s, true) {
			keep = append(keep, q)
		}
	}
	if len(keep) > 0 {
		s.mu.Lock()
		for _, q := range keep {
			s.requeue(b, q)
		}
		s.mu.Unlock()
	}
}

// handOffEnded acts for the share groups of s, whose session ended: its
// queued messages and unacknowledged QoS 1 messages go to another member;
// a QoS 2 message it was sent and had not acknowledged goes to no one
// [MQTT-4.8.2-5]. queued and flights were taken from s; b.mu is held.
func (b *Broker) handOffEnded(s *session, queued []queuedTag, flights []*flight) {
	lost := func(p *packet.Publish, g *topictree.Group, why string) {
		b.dropped.Add(1)
		b.emit(events.Event{Kind: events.Drop, ClientID: s.id, Topic: p.Topic, QoS: p.QoS, Cause: events.CauseSessionEnded,
			Statement: "MQTT-4.8.2-5", Detail: fmt.Sprintf("shared subscription $share/%s/%s: %s", g.Name, g.Filter, why)})
	}
	if b.closed {
		return // every session ends with the broker
	}
	for _, q := range queued {
		if !b.redeliver(q.tag, s, false) {
			lost(q.tag.pub, q.tag.g, "queued message, no other member left")
		}
	}
	for _, f := range flights {
		switch {
		case f.tag == nil || f.state == packet.PUBCOMP:
			// Not shared, or received (PUBREC came): nothing to hand on.
		case f.state == packet.PUBREC:
			lost(f.pub, f.tag.g, fmt.Sprintf("QoS 2 message sent as packet %d and not acknowledged; not given to another member", f.pub.PacketID))
		case !b.redeliver(f.tag, s, false):
			lost(f.pub, f.tag.g, "unacknowledged QoS 1 message, no other member left")
		}
	}
}

// queuedTag is a queued message taken out of a session with its tag.
type queuedTag struct {
	m   *packet.Publish
	tag *shareTag
}

// takeTagged takes the queued messages a share group gave s out of its
// queue, in order. s.mu is held.
func (s *session) takeTagged() []queuedTag {
	var out []queuedTag
	kept := s.queue[:0]
	for _, m := range s.queue {
		if t, ok := s.tags[m]; ok {
			out = append(out, queuedTag{m, t})
			if s.ds != nil {
				s.ds.st.DeleteMessage(s.id, s.ds.takeSeq(m))
			}
			delete(s.tags, m)
			delete(s.expires, m)
			s.queuedBytes -= len(m.Topic) + len(m.Payload)
			continue
		}
		kept = append(kept, m)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	if len(s.tags) == 0 {
		s.tags = nil
	}
	if len(s.expires) == 0 {
		s.expires = nil
	}
	return out
}

// requeue puts back a message takeTagged took and no other member took.
// Its Message Expiry Interval runs from the original routing. s.mu is held.
func (s *session) requeue(b *Broker, q queuedTag) {
	if s.tags == nil {
		s.tags = map[*packet.Publish]*shareTag{}
	}
	s.tags[q.m] = q.tag
	if q.tag.expireAt > 0 {
		if s.expires == nil {
			s.expires = map[*packet.Publish]time.Duration{}
		}
		s.expires[q.m] = q.tag.expireAt
	}
	s.queuedBytes += len(q.m.Topic) + len(q.m.Payload)
	s.queue = append(s.queue, q.m)
	if s.ds != nil {
		s.persistQueued(b, q.m)
	}
}

// rejected reports a shared message a member refused with a reason code of
// 0x80 or more: it is discarded, not offered to another member
// [MQTT-4.8.2-6]. s.mu is held.
func (s *session) rejected(b *Broker, f *flight, code byte, ack packet.Type) {
	if f.tag == nil {
		return
	}
	b.dropped.Add(1)
	b.emit(events.Event{Kind: events.Drop, ClientID: s.id, Topic: f.pub.Topic, QoS: f.pub.QoS, Cause: events.CauseRejected, Code: int(code),
		Statement: "MQTT-4.8.2-6", Detail: fmt.Sprintf("shared subscription $share/%s/%s: %s reason 0x%02X; not offered to another member", f.tag.g.Name, f.tag.g.Filter, ack, code)})
}

// subscribeShared adds the client to the share group of filter, a valid
// "$share/{name}/{rest}" filter.
func (b *Broker) subscribeShared(clientID string, sub packet.Subscription, id uint32) {
	name, rest, _ := topictree.SplitShared(sub.Filter)
	inner := sub
	inner.Filter = rest
	b.subMu.Lock()
	b.tree.SubscribeShared(clientID, name, inner, id)
	b.subMu.Unlock()
}

// unsubscribeTree removes one subscription of clientID from the tree:
// a share group membership when shared. b.subMu is held.
func (b *Broker) unsubscribeTree(clientID, filter string, shared bool) bool {
	if shared {
		name, rest, _ := topictree.SplitShared(filter)
		return b.tree.UnsubscribeShared(clientID, name, rest)
	}
	return b.tree.Unsubscribe(clientID, filter)
}

// aclFilter is the filter the ACL and the topic limits judge for a
// subscription: the topic filter of a shared subscription, without
// "$share/{ShareName}/".
func aclFilter(filter string, shared bool) string {
	if !shared {
		return filter
	}
	_, rest, _ := topictree.SplitShared(filter)
	return rest
}
