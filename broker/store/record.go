package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Records are a version byte and fixed fields in big endian; a message is
// kept as an MQTT 5 PUBLISH (so its properties go with it) decoded by the
// packet codec, which checks it as it would a client's.

const recordVersion = 1

// Retained is a stored retained message.
type Retained struct {
	Pub      *packet.Publish
	ExpireAt time.Time // zero: no Message Expiry Interval
}

// Message is a stored outgoing QoS 1/2 message of a session.
type Message struct {
	Pub      *packet.Publish
	ExpireAt time.Time // zero: no Message Expiry Interval
}

// Sub is a stored subscription with its MQTT 5 options and identifier.
type Sub struct {
	packet.Subscription
	Shared bool   // a $share/ membership
	ID     uint32 // Subscription Identifier, 0 for none
}

// Session is the stored record of a persistent session.
type Session struct {
	Expiry    uint32    // Session Expiry Interval in seconds (0xFFFFFFFF: never)
	OfflineAt time.Time // when its connection ended; zero while online
	User      string    // user name of the last connection
	Subs      []Sub
}

func appendTime(b []byte, t time.Time) []byte {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendPub(b []byte, p *packet.Publish) []byte {
	cp := *p
	cp.Dup = false
	cp.PacketID = 0
	if cp.QoS > 0 {
		cp.PacketID = 1 // the codec wants one; the real one is in the flight record
	}
	enc, err := packet.Append(nil, &cp, packet.V5)
	if err != nil {
		// The broker only stores what it decoded, so it encodes; keep the
		// record decodable anyway (decode reports it).
		enc = nil
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
	return append(b, enc...)
}

func (r Retained) encode() []byte {
	b := []byte{recordVersion}
	b = appendTime(b, r.ExpireAt)
	return appendPub(b, r.Pub)
}

func (m Message) encode() []byte {
	b := []byte{recordVersion}
	b = appendTime(b, m.ExpireAt)
	return appendPub(b, m.Pub)
}

func (s Session) encode() []byte {
	b := []byte{recordVersion}
	b = binary.BigEndian.AppendUint32(b, s.Expiry)
	b = appendTime(b, s.OfflineAt)
	b = appendStr(b, s.User)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Subs)))
	for _, sub := range s.Subs {
		b = appendStr(b, sub.Filter)
		var flags byte
		if sub.NoLocal {
			flags |= 1
		}
		if sub.RetainAsPublished {
			flags |= 2
		}
		if sub.Shared {
			flags |= 4
		}
		b = append(b, sub.QoS, flags, sub.RetainHandling)
		b = binary.BigEndian.AppendUint32(b, sub.ID)
	}
	return b
}

// reader decodes a record, remembering the first error.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("record ends early")

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) time() time.Time {
	v := r.take(8)
	if v == nil {
		return time.Time{}
	}
	n := int64(binary.BigEndian.Uint64(v))
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (r *reader) str() string { return string(r.take(int(r.u32()))) }

func (r *reader) version() {
	if v := r.u8(); r.err == nil && v != recordVersion {
		r.err = fmt.Errorf("record version %d, want %d", v, recordVersion)
	}
}

func (r *reader) pub() *packet.Publish {
	enc := r.take(int(r.u32()))
	if r.err != nil {
		return nil
	}
	// Own copy: bbolt's values live only as long as the transaction.
	enc = append([]byte(nil), enc...)
	p, n, err := packet.Decode(enc, packet.Options{Version: packet.V5})
	if err != nil {
		r.err = fmt.Errorf("message: %w", err)
		return nil
	}
	pub, ok := p.(*packet.Publish)
	if !ok || n != len(enc) {
		r.err = fmt.Errorf("message: not one PUBLISH")
		return nil
	}
	pub.PacketID = 0
	return pub
}

func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the record", len(r.b))
	}
	return r.err
}

func decodeRetained(b []byte) (Retained, error) {
	r := reader{b: b}
	r.version()
	var rec Retained
	rec.ExpireAt = r.time()
	rec.Pub = r.pub()
	return rec, r.end()
}

func decodeMessage(b []byte) (Message, error) {
	r := reader{b: b}
	r.version()
	var m Message
	m.ExpireAt = r.time()
	m.Pub = r.pub()
	if r.err == nil && m.Pub.QoS == 0 {
		r.err = errors.New("a QoS 0 message is never stored for a session")
	}
	return m, r.end()
}

func decodeSession(b []byte) (Session, error) {
	r := reader{b: b}
	r.version()
	var s Session
	s.Expiry = r.u32()
	s.OfflineAt = r.time()
	s.User = r.str()
	n := r.u32()
	if r.err == nil && int(n) > len(r.b) {
		r.err = fmt.Errorf("%d subscriptions in %d bytes", n, len(r.b))
	}
	for i := 0; i < int(n) && r.err == nil; i++ {
		var sub Sub
		sub.Filter = r.str()
		sub.QoS = r.u8()
		flags := r.u8()
		sub.NoLocal, sub.RetainAsPublished, sub.Shared = flags&1 != 0, flags&2 != 0, flags&4 != 0
		sub.RetainHandling = r.u8()
		sub.ID = r.u32()
		if r.err == nil && (sub.QoS > 2 || sub.RetainHandling > 2 || sub.Filter == "") {
			r.err = fmt.Errorf("subscription %q: QoS %d, retain handling %d", sub.Filter, sub.QoS, sub.RetainHandling)
		}
		s.Subs = append(s.Subs, sub)
	}
	return s, r.end()
}
