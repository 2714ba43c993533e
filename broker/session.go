package broker

import (
	"fmt"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// session is the state the broker keeps for one client ID: subscriptions,
// outgoing QoS 1/2 messages (inflight and queued) and incoming QoS 2 packet
// IDs awaiting PUBREL. It outlives its connection when not clean.
//
// Nothing here is specific to 3.1.1: MQTT 5 adds an expiry (a timer that
// calls dropSession), per-message properties (carried on packet.Publish) and
// a receive maximum (the window, today MaxInflight).
type session struct {
	id string

	// Guarded by Broker.mu. The session expiry interval in seconds: 0 ends
	// the session with its connection (3.1.1 clean session), expiryNever
	// keeps it (3.1.1 persistent session); else it ends that long after
	// the connection (MQTT 5, expiry.go).
	expiry uint32
	exp    timerEntry   // queued to end the session while offline (expiry.go)
	will   *pendingWill // a will waiting out its Will Delay Interval (expiry.go)
	willT  timerEntry   // queued to publish will

	mu       sync.Mutex // guards the fields below; order: b.mu -> s.mu -> conn.omu
	conn     *conn      // the online connection, nil while offline
	subs     map[string]packet.Subscription
	inflight []*flight           // sent, awaiting acknowledgement, in send order
	queue    []*packet.Publish   // QoS 1/2 waiting for the window or for the client to come back
	inQoS2   map[uint16]struct{} // incoming QoS 2 IDs between PUBREC and PUBREL [MQTT-4.3.3-2]
	nextID   uint16

	// readAs is set once a subscription was granted that a deny rule only
	// overlaps: from then on every message is checked against the ACL as
	// this user before delivery (live and retained), so the deny is honoured
	// per message. nil: no check, the common case.
	readAs *string

	// expires holds, for queued messages with an MQTT 5 Message Expiry
	// Interval, when they expire (broker clock); nil while there are none.
	expires map[*packet.Publish]time.Duration

	// What the client attached now accepts (MQTT 5 Receive Maximum and
	// Maximum Packet Size; 3.1.1: max_inflight and no limit).
	window int
	maxOut int

	queuedBytes int    // topic and payload bytes in queue (max_queued_bytes)
	user        string // user name of the last connection attached

	// MQTT 5 shared subscriptions (shared.go); both nil for a session that
	// has none. tags marks the queued messages a share group gave this
	// session (a flight carries its own tag once sent); sharedSubs names
	// the filters of subs that are share group memberships.
	tags       map[*packet.Publish]*shareTag
	sharedSubs map[string]struct{}

	// ds is the persistence state of a persistent session with
	// persistence on (persist.go); nil otherwise.
	ds *durable
}

// flight is one outgoing QoS 1/2 message awaiting its acknowledgement.
type flight struct {
	pub   *packet.Publish
	state packet.Type // the packet awaited: PUBACK, PUBREC or PUBCOMP
	tag   *shareTag   // set when a share group chose this session (shared.go)
	seq   uint64      // its record in the store (persist.go); 0 when not stored
}

func newSession(id string, expiry uint32) *session {
	return &session{id: id, expiry: expiry}
}

// subscriptionsFull reports whether adding filter would take the session
// past max subscriptions (replacing one it holds never does), and how many
// it holds.
func (s *session) subscriptionsFull(filter string, max int) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, have := s.subs[filter]
	return len(s.subs), !have && len(s.subs) >= max
}

// deliver hands a routed message to the session with the effective QoS
// (minimum of the publish and the subscription). QoS 0 goes straight to the
// connection, or nowhere while offline; QoS 1/2 is queued behind the
// inflight window, bounded by MaxQueued. ids are the MQTT 5 Subscription
// Identifiers of the matching subscriptions, sent with the message
// [MQTT-3.3.4-3]; tag marks a message a share group chose this session for.
// shared caches one QoS 0 copy per routed message so fan-out allocates it
// once; a copy with identifiers is the session's own.
func (s *session) deliver(b *Broker, pub *packet.Publish, qos byte, retain bool, ids []uint32, tag *shareTag, shared **packet.Publish) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readAs != nil && !b.auth.CanRead(*s.readAs, s.id, pub.Topic) {
		return // withheld: a deny rule names this topic (see auth.Subscribe)
	}
	props := pub.Props
	if len(ids) > 0 {
		props = withSubIDs(props, ids)
	}
	if qos == 0 {
		if s.conn == nil {
			return
		}
		var p *packet.Publish
		if !retain && shared != nil && len(ids) == 0 {
			if *shared == nil {
				*shared = &packet.Publish{Topic: pub.Topic, Payload: pub.Payload, Props: pub.Props}
			}
			p = *shared
		} else {
			p = &packet.Publish{Topic: pub.Topic, Payload: pub.Payload, Props: props, Retain: retain}
		}
		if !s.fits(b, p) {
			return
		}
		s.conn.sendPublish(p)
		return
	}
	if len(s.queue) >= b.cfg.MaxQueued {
		b.drop(s.id, pub.Topic, qos, events.CauseQueueFull, "session queue full")
		return
	}
	size := len(pub.Topic) + len(pub.Payload)
	if s.queuedBytes+size > b.cfg.MaxQueuedBytes {
		b.dropForLimit(limitQueuedBytes, s.id, pub.Topic, qos, fmt.Sprintf("session queue holds %d bytes", s.queuedBytes))
		return
	}
	s.queuedBytes += size
	m := &packet.Publish{Topic: pub.Topic, QoS: qos, Retain: retain, Payload: pub.Payload, Props: props}
	if pub.Props != nil && pub.Props.MessageExpiry != nil {
		if s.expires == nil {
			s.expires = map[*packet.Publish]time.Duration{}
		}
		s.expires[m] = b.since() + time.Duration(*pub.Props.MessageExpiry)*time.Second
	}
	if tag != nil {
		if s.tags == nil {
			s.tags = map[*packet.Publish]*shareTag{}
		}
		s.tags[m] = tag
	}
	s.queue = append(s.queue, m)
	if s.ds != nil {
		s.persistQueued(b, m)
	}
	s.pump(b)
}

// pump moves queued messages into the inflight window and sends them, in
// order. s.mu is held.
func (s *session) pump(b *Broker) {
	for len(s.queue) > 0 && len(s.inflight) < s.window && s.conn != nil {
		m := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.queuedBytes -= len(m.Topic) + len(m.Payload)
		var tag *shareTag
		if s.tags != nil {
			tag = s.tags[m]
			delete(s.tags, m)
		}
		var seq uint64
		if s.ds != nil {
			seq = s.ds.takeSeq(m)
		}
		if !s.unexpired(b, m) || !s.fits(b, m) {
			if s.ds != nil {
				s.ds.st.DeleteMessage(s.id, seq)
			}
			continue
		}
		m.PacketID = s.newPacketID()
		want := packet.PUBACK
		if m.QoS == 2 {
			want = packet.PUBREC
		}
		if s.ds != nil {
			s.ds.st.PutFlight(s.id, seq, m.PacketID, byte(want))
		}
		s.inflight = append(s.inflight, &flight{pub: m, state: want, tag: tag, seq: seq})
		s.conn.send(m, false)
	}
	if len(s.queue) == 0 {
		s.queue = nil
	}
}

// newPacketID returns an ID not used by any inflight message. s.mu is held.
func (s *session) newPacketID() uint16 {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if s.find(s.nextID) < 0 {
			return s.nextID
		}
	}
}

// find returns the inflight index of id, or -1. s.mu is held.
func (s *session) find(id uint16) int {
	for i, f := range s.inflight {
		if f.pub.PacketID == id {
			return i
		}
	}
	return -1
}

// resend sends, after CONNACK on a resumed session, every unacknowledged
// message in its original order with DUP set, and PUBREL for those past
// PUBREC [MQTT-4.4.0-1]; then fills the window from the queue. s.mu is held.
func (s *session) resend(b *Broker) {
	for _, f := range s.inflight {
		if f.state == packet.PUBCOMP {
			s.conn.send(&packet.Pubrel{PacketID: f.pub.PacketID}, false)
			continue
		}
		// A copy: the previous connection's writer may still hold the old one.
		cp := *f.pub
		cp.Dup = true
		f.pub = &cp
		s.conn.send(&cp, false)
	}
	s.pump(b)
}

// acked completes an outgoing flow on PUBACK or PUBCOMP. An ID the session
// does not hold is ignored (docs/broker.md, "Answers other than closing");
// an acknowledgement that does not fit the message holding the ID is a
// protocol violation, returned as the statement the client broke and why.
// code is the 5.0 reason code (0 for 3.1.1).
func (s *session) acked(b *Broker, id uint16, t packet.Type, code byte) (stmt, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(id)
	if i < 0 {
		return "", ""
	}
	f := s.inflight[i]
	if f.state != t {
		return ackMisfit(f, t)
	}
	if code >= 0x80 && t == packet.PUBACK {
		s.rejected(b, f, code, t)
	}
	s.unflight(b, i)
	return "", ""
}

// unflight ends flow i and fills the window again. s.mu is held.
func (s *session) unflight(b *Broker, i int) {
	if s.ds != nil {
		s.ds.st.DeleteMessage(s.id, s.inflight[i].seq)
	}
	copy(s.inflight[i:], s.inflight[i+1:])
	s.inflight[len(s.inflight)-1] = nil
	s.inflight = s.inflight[:len(s.inflight)-1]
	if len(s.inflight) == 0 {
		s.inflight = nil
	}
	s.pump(b)
}

// received moves an outgoing QoS 2 flow past PUBREC and answers PUBREL; an
// unknown ID, or a PUBREC resent after PUBREL, is answered PUBREL too. A
// PUBREC for a QoS 1 message is a protocol violation (see acked). A 5.0
// PUBREC with a reason code of 0x80 or more ends the flow: no PUBREL
// (MQTT 5.0 section 4.3.3).
func (s *session) received(b *Broker, id uint16, code byte) (stmt, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(id); i >= 0 {
		switch f := s.inflight[i]; f.state {
		case packet.PUBREC:
			if code >= 0x80 {
				s.rejected(b, f, code, packet.PUBREC)
				s.unflight(b, i)
				return "", ""
			}
			f.state = packet.PUBCOMP
			if s.ds != nil {
				s.ds.st.PutFlight(s.id, f.seq, id, byte(packet.PUBCOMP))
			}
		case packet.PUBACK:
			return ackMisfit(f, packet.PUBREC)
		}
	}
	if s.conn != nil {
		s.conn.send(&packet.Pubrel{PacketID: id}, false)
	}
	return "", ""
}

// ackMisfit describes acknowledgement t for flight f, which awaits another
// one: a QoS 1 message is answered by PUBACK only [MQTT-4.3.2-2], a QoS 2
// message by PUBREC and, after PUBREL, PUBCOMP [MQTT-4.3.3-2].
func ackMisfit(f *flight, t packet.Type) (stmt, why string) {
	stmt = "MQTT-4.3.3-2"
	if f.pub.QoS == 1 {
		stmt = "MQTT-4.3.2-2"
	}
	return stmt, fmt.Sprintf("%s for packet ID %d, a QoS %d message awaiting %s", t, f.pub.PacketID, f.pub.QoS, f.state)
}

// holdQoS2 records an incoming QoS 2 packet ID and reports whether it was
// new; a duplicate is acknowledged but not routed again [MQTT-4.3.3-2]. A
// new ID that would make more than limit IDs held (0: no limit) is not
// recorded and over is true: the client exceeded the broker's Receive
// Maximum [MQTT-3.3.4-7].
func (s *session) holdQoS2(id uint16, limit int) (fresh, over bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.inQoS2[id]; dup {
		return false, false
	}
	if limit > 0 && len(s.inQoS2) >= limit {
		return false, true
	}
	if s.inQoS2 == nil {
		s.inQoS2 = map[uint16]struct{}{}
	}
	s.inQoS2[id] = struct{}{}
	if s.ds != nil {
		s.ds.st.PutIncomingQoS2(s.id, id)
	}
	return true, false
}

// release forgets an incoming QoS 2 packet ID on PUBREL and reports
// whether it was held.
func (s *session) release(id uint16) bool {
	s.mu.Lock()
	_, held := s.inQoS2[id]
	delete(s.inQoS2, id)
	if held && s.ds != nil {
		s.ds.st.DeleteIncomingQoS2(s.id, id)
	}
	if len(s.inQoS2) == 0 {
		s.inQoS2 = nil
	}
	s.mu.Unlock()
	return held
}
