package netem

// The proxy cuts a direction's byte stream into whole MQTT control packets
// (fixed header: type and flags in the first byte, then the remaining length
// as a variable byte integer of 1 to 4 bytes), so that loss, duplication and
// reordering act on packets: a lost PUBLISH is one lost message, not a torn
// stream the peer must reject.
//
// Framing is exact when the packet faults are on a direction before its first
// byte, or when they arrive while the direction is quiet: MQTT peers write
// whole packets, so a read that follows a quiet spell starts at a packet
// boundary. The first bytes framed must parse as a plausible fixed header
// (a known type with the flags the standard fixes for it); anything else —
// another protocol, or bytes joined mid-packet — switches the direction to
// raw mode, where each read is one unit.

// frameMode is how a pipe cuts its stream.
type frameMode uint8

const (
	frameUnsynced frameMode = iota // no packet boundary known yet: the next read is tried as one
	frameMQTT                      // following MQTT packet boundaries
	frameRaw                       // not MQTT: each read is a unit
)

// maxRemaining is the largest remaining length MQTT can encode (268,435,455).
const maxRemaining = 268_435_455

// framer splits one direction's stream. Owned by the reader goroutine.
type framer struct {
	mode    frameMode
	pending []byte // the start of a packet whose end has not been read yet
	// Two buffers take turns holding pending: the units of one split may
	// lie in one while the cut packet's start is kept in the other.
	bufs [2][]byte
	cur  int
}

// maxKeptBuf bounds the capacity a framer keeps between packets: a huge
// packet grows a buffer once, and it is let go after.
const maxKeptBuf = 1 << 20

// keep stores the start of a cut packet in the buffer not in use.
func (fr *framer) keep(rest []byte, n int) {
	fr.cur ^= 1
	dst := fr.bufs[fr.cur][:0]
	if cap(dst) < len(rest) {
		// Room for the whole packet when it is small; a large one grows as it comes.
		dst = make([]byte, 0, max(min(n, 64<<10), len(rest)))
	}
	dst = append(dst, rest...)
	fr.bufs[fr.cur] = dst
	fr.pending = dst
}

// unit is one packet (typ 1..15) or one raw read (typ 0), at off in the
// buffer split returned: units of one call lie in order, back to back.
type unit struct {
	b   []byte
	off int
	typ byte
}

// validFlags reports whether the fixed header's first byte is one an MQTT
// 3.1.1 or 5.0 peer may send: PUBLISH any flags but QoS 3; PUBREL, SUBSCRIBE
// and UNSUBSCRIBE 0010; every other type 0000.
func validFlags(b byte) bool {
	typ, fl := b>>4, b&0x0f
	switch typ {
	case 0:
		return false
	case 3:
		return fl&0x06 != 0x06
	case 6, 8, 10:
		return fl == 0x02
	default:
		return fl == 0
	}
}

// header parses a fixed header at the start of b: the packet's total length,
// or 0 when b is too short to tell, or -1 when it is no MQTT header.
func header(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	if !validFlags(b[0]) {
		return -1
	}
	rem, mul := 0, 1
	for i := 1; i <= 4; i++ {
		if i >= len(b) {
			return 0
		}
		rem += int(b[i]&0x7f) * mul
		if b[i]&0x80 == 0 {
			if rem > maxRemaining {
				return -1
			}
			return 1 + i + rem
		}
		mul <<= 7
	}
	return -1 // a fifth length byte: not MQTT
}

// split cuts b into units appended to out, and returns the buffer they lie
// in: b itself, or b joined to the start of a packet an earlier read cut.
// Bytes of an unfinished packet are copied and kept for the next call.
func (fr *framer) split(b []byte, out []unit) ([]unit, []byte) {
	if fr.mode == frameRaw {
		return append(out, unit{b: b}), b
	}
	if len(fr.pending) > 0 {
		b = append(fr.pending, b...)
		fr.bufs[fr.cur] = b[:0]
		if cap(b) > maxKeptBuf {
			fr.bufs[fr.cur] = nil // used once more, for this call's units, then let go
		}
		fr.pending = nil
	}
	base, off := b, 0
	for off < len(base) {
		rest := base[off:]
		n := header(rest)
		if n < 0 {
			// Not MQTT, or joined mid-packet: give up on framing this direction.
			fr.mode = frameRaw
			return append(out, unit{b: rest, off: off}), base
		}
		fr.mode = frameMQTT
		if n == 0 || n > len(rest) {
			fr.keep(rest, n)
			return out, base
		}
		out = append(out, unit{b: rest[:n:n], off: off, typ: rest[0] >> 4})
		off += n
	}
	return out, base
}

// flush returns the bytes of an unfinished packet, which are passed on as
// they are once packet faults are gone, and forgets the framing: bytes that
// pass unframed (the splice path) leave no boundary to follow.
func (fr *framer) flush() []byte {
	b := fr.pending
	fr.pending = nil
	fr.bufs = [2][]byte{} // the caller owns b now
	fr.mode = frameUnsynced
	return b
}
