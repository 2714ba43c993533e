package client

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Session is the client side of an MQTT session, kept across connections
// [MQTT-4.1.0-1]: the outgoing QoS 1/2 messages not yet completed and the
// incoming QoS 2 packet identifiers between PUBREC and PUBREL. A Client is
// one connection; give each connection of one device the same Session in
// Options.Session (with CleanSession false, and in MQTT 5 a Session Expiry
// Interval above 0, or the broker keeps nothing) and:
//
//   - on CONNACK with Session Present 1 the client resends, before Connect
//     returns and so before anything new, every message it holds in the
//     order first sent: PUBLISH with DUP 1 and its packet identifier, or
//     PUBREL for those past PUBREC [MQTT-4.4.0-1] [MQTT-4.6.0-1]
//     [MQTT-4.6.0-3]. At most the inflight window (MaxInflight, capped by a
//     5.0 Receive Maximum) goes out at once; each final ack then lets the
//     next one out. Incoming QoS 2 identifiers still held are answered
//     PUBREC but not delivered again [MQTT-4.3.3-2].
//   - on Session Present 0 (the broker has no session: a clean start, a
//     lapsed expiry, or a broker that lost it) the client drops the session:
//     held messages are not resent — a QoS 2 message resent as new could be
//     delivered twice — and their Tokens fail with ErrSessionLost.
//
// The Token of a publish still in flight when a link ends stays pending
// (Publish keeps waiting, within its context) and completes when the resend
// is acknowledged on a later connection, or fails with ErrSessionLost. Only
// publishes move between connections: SUBSCRIBE and UNSUBSCRIBE still fail
// with the link. A Session serves one connection at a time
// (ErrSessionInUse); the zero value is an empty session. It lives in
// memory only.
type Session struct {
	// seq orders the messages: taken when a PUBLISH is first sent and again
	// when its PUBREC arrives, so resent PUBLISHes keep their first order
	// and PUBRELs the order of their PUBRECs [MQTT-4.6.0-1] [MQTT-4.6.0-3].
	seq atomic.Uint64

	mu    sync.Mutex
	owner *Client             // the connection using the session; nil between connections
	out   []*Token            // outgoing publishes held, in resend order
	in2   map[uint16]struct{} // incoming QoS 2 ids between PUBREC and PUBREL
	last  uint16              // packet identifier issued last: allocation continues after it
}

// NewSession returns an empty session.
func NewSession() *Session { return &Session{} }

// Pending counts what the session holds between connections: outgoing
// messages awaiting completion and incoming QoS 2 identifiers awaiting
// PUBREL. While a connection uses the session it holds that state itself
// and Pending reports 0, 0.
func (s *Session) Pending() (outgoing, incoming int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.out), len(s.in2)
}

// Clear drops everything the session holds, failing the Tokens of held
// messages with an error wrapping ErrSessionLost; use it to give up on them
// (e.g. before reconnecting with a clean session, or for good). It refuses
// with ErrSessionInUse while a connection uses the session.
func (s *Session) Clear() error {
	s.mu.Lock()
	if s.owner != nil {
		s.mu.Unlock()
		return fmt.Errorf("clear session: %w", ErrSessionInUse)
	}
	out := s.out
	s.out, s.in2 = nil, nil
	s.mu.Unlock()
	failHeld(out, fmt.Errorf("session cleared: %w", ErrSessionLost))
	return nil
}

// attach reserves the session for c before its CONNECT.
func (s *Session) attach(c *Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != nil {
		return ErrSessionInUse
	}
	s.owner = c
	return nil
}

// release frees the session after a failed CONNECT; it holds what it held.
func (s *Session) release(c *Client) {
	s.mu.Lock()
	if s.owner == c {
		s.owner = nil
	}
	s.mu.Unlock()
}

// take hands the session's state to its connection after CONNACK. With
// Session Present 0 the state is dropped and returned as lost, for the
// caller to fail outside the lock.
func (s *Session) take(present bool) (out []*Token, in2 map[uint16]struct{}, last uint16, lost []*Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, in2, last = s.out, s.in2, s.last
	s.out, s.in2 = nil, nil
	if !present {
		return nil, nil, last, out
	}
	return out, in2, last, nil
}

// keep takes back the state of a connection that ended and frees the
// session for the next one.
func (s *Session) keep(c *Client, out []*Token, in2 map[uint16]struct{}, last uint16) {
	slices.SortFunc(out, func(a, b *Token) int { return cmp.Compare(a.seq, b.seq) })
	s.mu.Lock()
	s.out, s.in2, s.last = out, in2, last
	if s.owner == c {
		s.owner = nil
	}
	s.mu.Unlock()
}

// failHeld fails the tokens of messages a session will not resend.
func failHeld(out []*Token, err error) {
	for _, t := range out {
		t.complete(err)
	}
}

// resendPacket is what goes out again for a held message: the PUBLISH with
// DUP 1 [MQTT-3.3.1-1], or the PUBREL once PUBREC came [MQTT-4.3.3-1].
func (t *Token) resendPacket() packet.Packet {
	if t.relSent {
		return &packet.Pubrel{PacketID: t.id}
	}
	m := *t.msg
	m.PacketID = t.id
	return &m
}

// keepForResend records what a publish needs to be resent on a later
// connection: a copy of the message (PublishAsync does not retain the
// caller's payload) with DUP already set, and its place in the order.
func (s *Session) keepForResend(t *Token, p *packet.Publish) {
	m := *p
	m.Payload = slices.Clone(p.Payload)
	m.Dup = true
	t.msg = &m
	t.seq = s.seq.Add(1)
}
