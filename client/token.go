package client

import (
	"context"
	"sync/atomic"

	"github.com/mqttfleet/mqttfleet/packet"
)

// opKind says which exchange a packet identifier is reserved for.
type opKind uint8

const (
	opPublish1    opKind = iota + 1 // QoS 1 PUBLISH awaiting PUBACK
	opPublish2                      // QoS 2 PUBLISH awaiting PUBREC, then PUBCOMP
	opSubscribe                     // SUBSCRIBE awaiting SUBACK
	opUnsubscribe                   // UNSUBSCRIBE awaiting UNSUBACK
)

// closedChan is shared by tokens that complete before they are returned, so
// QoS 0 publishes allocate no channel.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Token tracks one asynchronous operation: a QoS 1/2 publish until its final
// acknowledgement, or a subscribe/unsubscribe until its ack.
type Token struct {
	done  chan struct{}
	state atomic.Uint32 // 0 pending, 1 completed
	err   error         // written once before done is closed
	codes []byte        // SUBACK return codes / MQTT 5 UNSUBACK reason codes

	// Bookkeeping for the exchange; guarded by Client.mu while in flight.
	kind    opKind
	qos     byte
	relSent bool         // QoS 2: PUBREC arrived and PUBREL was sent
	queued  bool         // a Session's message not yet resent on this connection
	rc      byte         // QoS 2: the PUBREC reason code
	id      uint16       // packet identifier
	sent    atomic.Int64 // Client.now() when the packet was handed to the conn
	filters []string     // subscribe/unsubscribe filters, for events

	// With a Session: the message to resend (a copy, DUP set) until PUBREC,
	// and the resend order (session.go).
	msg *packet.Publish
	seq uint64
}

func newToken(kind opKind) *Token {
	return &Token{done: make(chan struct{}), kind: kind}
}

// okToken is the shared result of every successful QoS 0 publish, so that
// path allocates no Token.
var okToken = doneToken(nil)

// doneToken returns an already completed token.
func doneToken(err error) *Token {
	t := &Token{done: closedChan, err: err}
	t.state.Store(1)
	return t
}

// complete records the outcome; only the first call counts.
func (t *Token) complete(err error) {
	if !t.state.CompareAndSwap(0, 1) {
		return
	}
	t.err = err
	close(t.done)
}

// Done is closed when the operation has finished.
func (t *Token) Done() <-chan struct{} { return t.done }

// Err is the outcome once Done is closed: nil on success. Before that it is nil.
func (t *Token) Err() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}

// PacketID is the packet identifier the operation used (0 for QoS 0).
func (t *Token) PacketID() uint16 { return t.id }

// Wait blocks until the operation finishes or ctx ends. When ctx ends first
// the operation stays in flight (its packet identifier stays reserved until
// the ack arrives or the link ends) and ctx's error is returned.
func (t *Token) Wait(ctx context.Context) error {
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idSpace hands out packet identifiers 1..65535 and maps those in flight to
// their tokens [MQTT-2.3.1-1] [MQTT-2.3.1-2]. Guarded by Client.mu.
type idSpace struct {
	last     uint16 // the identifier issued last; allocation continues after it
	peak     int    // largest size the map reached since it was last dropped
	inflight map[uint16]*Token
}

// alloc reserves a free identifier for t. It never returns 0 and never an
// identifier still in flight; it wraps from 65535 to 1.
func (s *idSpace) alloc(t *Token) (uint16, error) {
	if len(s.inflight) >= 65535 {
		return 0, ErrNoPacketID
	}
	if s.inflight == nil {
		s.inflight = make(map[uint16]*Token)
	}
	// At most 65535 steps: at least one identifier is free.
	for range 65535 {
		s.last++
		if s.last == 0 {
			s.last = 1
		}
		if _, used := s.inflight[s.last]; !used {
			s.inflight[s.last] = t
			if len(s.inflight) > s.peak {
				s.peak = len(s.inflight)
			}
			return s.last, nil
		}
	}
	return 0, ErrNoPacketID
}

// free releases id [MQTT-2.3.1-3]. A map that once held many entries is
// dropped when it empties, since Go maps never shrink and a fleet holds
// thousands of clients.
func (s *idSpace) free(id uint16) {
	delete(s.inflight, id)
	if len(s.inflight) == 0 && s.peak > 64 {
		s.inflight = nil
		s.peak = 0
	}
}

// hold puts t, a session's message resent under its own identifier, in flight.
func (s *idSpace) hold(t *Token) {
	if s.inflight == nil {
		s.inflight = make(map[uint16]*Token)
	}
	s.inflight[t.id] = t
	if len(s.inflight) > s.peak {
		s.peak = len(s.inflight)
	}
}

// take removes and returns every token in flight.
func (s *idSpace) take() map[uint16]*Token {
	m := s.inflight
	s.inflight = nil
	s.peak = 0
	return m
}

// ackKind maps an acknowledgement packet type to the exchange it ends.
func ackKind(t packet.Type) opKind {
	switch t {
	case packet.PUBACK:
		return opPublish1
	case packet.PUBREC, packet.PUBCOMP:
		return opPublish2
	case packet.SUBACK:
		return opSubscribe
	case packet.UNSUBACK:
		return opUnsubscribe
	}
	return 0
}
