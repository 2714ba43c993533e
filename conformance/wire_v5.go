package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"unicode/utf8"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Reading what a 5.0 broker sends byte by byte. The codec decodes leniently
// where the standard lets a receiver be lenient, and a decoded packet no
// longer shows how it was encoded; the encoding rules a sender must follow
// (shortest Variable Byte Integers, a Property Length wherever the packet
// has properties, well-formed properties) are checked here on the bytes
// themselves, independently of the codec.

// tap is a connection that keeps every byte the broker sent on it.
type tap struct {
	net.Conn
	mu sync.Mutex
	in []byte
}

func (t *tap) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	t.mu.Lock()
	t.in = append(t.in, b[:n]...)
	t.mu.Unlock()
	return n, err
}

// received returns a copy of the bytes read so far.
func (t *tap) received() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.in...)
}

// dialTap opens a traced TCP connection that keeps what the broker sends,
// and a Raw over it speaking the spec's protocol level.
func (e *env) dialTap(name string) (*client.Raw, *tap) {
	t := &tap{Conn: e.dial(name).Conn()}
	r := client.NewRaw(t, e.version())
	e.conns = append(e.conns, r)
	return r, t
}

// connectTap is connectOK on a connection that keeps what the broker sends.
func (e *env) connectTap(cp *packet.Connect) (*client.Raw, *packet.Connack, *tap) {
	_, t := e.dialTap(cp.ClientID)
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	r, ack, err := client.RawConnect(ctx, t, cp)
	e.conns = append(e.conns, r)
	Expect(err).NotTo(HaveOccurred(), "CONNECT %s", cp.ClientID)
	Expect(ack.ReturnCode).To(Equal(packet.Accepted), "CONNACK reason code for %s", cp.ClientID)
	return r, ack, t
}

// wireFrame is one control packet as the broker put it on the wire.
type wireFrame struct {
	first byte // packet type and flags
	body  []byte
}

func (f wireFrame) kind() packet.Type { return packet.Type(f.first >> 4) }

// size is the frame's length on the wire: fixed header and body.
func (f wireFrame) size() int {
	return 1 + len(packet.AppendRemainingLength(nil, len(f.body))) + len(f.body)
}

// splitWire cuts what a broker sent into frames, requiring every Remaining
// Length to be a shortest Variable Byte Integer [MQTT-1.5.5-1]. Bytes of a
// frame cut short (the connection closed inside it) are an error.
func splitWire(b []byte) ([]wireFrame, error) {
	var out []wireFrame
	for len(b) > 0 {
		n, l, err := shortestVarint(b[1:])
		if err != nil {
			return out, fmt.Errorf("frame %d (%s): Remaining Length: %w", len(out)+1, packet.Type(b[0]>>4), err)
		}
		if len(b) < 1+l+n {
			return out, fmt.Errorf("frame %d (%s): %d of %d body bytes before the end", len(out)+1, packet.Type(b[0]>>4), len(b)-1-l, n)
		}
		out = append(out, wireFrame{first: b[0], body: b[1+l : 1+l+n]})
		b = b[1+l+n:]
	}
	return out, nil
}

var (
	errVBILong     = errors.New("variable byte integer longer than 4 bytes")
	errVBIShort    = errors.New("variable byte integer cut short")
	errVBINotLeast = errors.New("variable byte integer not in its shortest form [MQTT-1.5.5-1]")
)

// shortestVarint decodes a Variable Byte Integer at the start of b and
// returns its value and length, refusing any encoding longer than needed: a
// last byte of 0 after a continuation byte adds nothing.
func shortestVarint(b []byte) (v, n int, err error) {
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, errVBIShort
		}
		v |= int(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0, errVBINotLeast
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errVBILong
}

// Property value encodings (5.0 section 2.2.2.2).
const (
	propByte = iota + 1
	propU16
	propU32
	propVBI
	propString
	propBinary
	propPair
)

// propKinds maps each 5.0 property identifier to its value's encoding.
var propKinds = map[byte]int{
	0x01: propByte, 0x02: propU32, 0x03: propString, 0x08: propString, 0x09: propBinary, 0x0B: propVBI,
	0x11: propU32, 0x12: propString, 0x13: propU16, 0x15: propString, 0x16: propBinary, 0x17: propByte,
	0x18: propU32, 0x19: propByte, 0x1A: propString, 0x1C: propString, 0x1F: propString, 0x21: propU16,
	0x22: propU16, 0x23: propU16, 0x24: propByte, 0x25: propByte, 0x26: propPair, 0x27: propU32,
	0x28: propByte, 0x29: propByte, 0x2A: propByte,
}

// wireReader walks a frame body, recording the first error.
type wireReader struct {
	b   []byte
	err error
}

func (w *wireReader) fail(format string, a ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, a...)
	}
}

func (w *wireReader) take(n int, what string) []byte {
	if w.err != nil {
		return nil
	}
	if len(w.b) < n {
		w.fail("%s: %d bytes needed, %d left", what, n, len(w.b))
		return nil
	}
	v := w.b[:n]
	w.b = w.b[n:]
	return v
}

func (w *wireReader) u16(what string) int {
	v := w.take(2, what)
	if v == nil {
		return 0
	}
	return int(v[0])<<8 | int(v[1])
}

func (w *wireReader) varint(what string) int {
	if w.err != nil {
		return 0
	}
	v, n, err := shortestVarint(w.b)
	if err != nil {
		w.fail("%s: %w", what, err)
		return 0
	}
	w.b = w.b[n:]
	return v
}

// str reads a UTF-8 Encoded String and requires it well-formed.
func (w *wireReader) str(what string) string {
	s := w.take(w.u16(what+" length"), what)
	if w.err == nil && !utf8.Valid(s) {
		w.fail("%s is not well-formed UTF-8: % x", what, s)
	}
	return string(s)
}

// props reads a Property Length and the properties it covers, each with a
// known identifier and a well-formed value; both halves of a User Property
// must be well-formed UTF-8 [MQTT-1.5.7-1].
func (w *wireReader) props() {
	n := w.varint("Property Length")
	inner := &wireReader{b: w.take(n, "properties")}
	for w.err == nil && inner.err == nil && len(inner.b) > 0 {
		id := inner.varint("property identifier")
		kind, ok := propKinds[byte(id)]
		if !ok && inner.err == nil {
			inner.fail("unknown property identifier 0x%02X", id)
		}
		switch kind {
		case propByte:
			inner.take(1, "byte property")
		case propU16:
			inner.take(2, "two-byte property")
		case propU32:
			inner.take(4, "four-byte property")
		case propVBI:
			inner.varint("Variable Byte Integer property")
		case propString:
			inner.str(fmt.Sprintf("string property 0x%02X", id))
		case propBinary:
			inner.take(inner.u16("binary length"), "binary property")
		case propPair:
			inner.str("User Property name")
			inner.str("User Property value")
		}
	}
	if inner.err != nil {
		w.fail("properties: %w", inner.err)
	}
}

// checkServerFrame walks one packet a 5.0 broker sent, field by field, and
// returns the first departure from the encoding rules: a Property Length on
// every packet that has properties, zero when there are none
// [MQTT-2.2.2-1]; shortest Variable Byte Integers [MQTT-1.5.5-1]; User
// Properties of well-formed UTF-8 [MQTT-1.5.7-1]; CONNACK flag bits 7-1
// zero [MQTT-3.2.2-1]; the PUBLISH Topic Name first, as a UTF-8 Encoded
// String [MQTT-3.3.2-1]. Acknowledgements may end after the packet
// identifier or the reason code (5.0 sections 3.4.2.1 and 3.14.2.1).
func checkServerFrame(f wireFrame) error {
	w := &wireReader{b: f.body}
	switch f.kind() {
	case packet.CONNACK:
		flags := w.take(1, "acknowledge flags")
		if flags != nil && flags[0]&0xFE != 0 {
			return fmt.Errorf("CONNACK acknowledge flags 0x%02X: bits 7-1 are reserved [MQTT-3.2.2-1]", flags[0])
		}
		w.take(1, "reason code")
		w.props()
	case packet.PUBLISH:
		w.str("Topic Name")
		if f.first&0x06 != 0 {
			w.u16("packet identifier")
		}
		w.props()
		w.b = nil // the payload
	case packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP:
		w.u16("packet identifier")
		if len(w.b) > 0 {
			w.take(1, "reason code")
		}
		if len(w.b) > 0 {
			w.props()
		}
	case packet.SUBACK, packet.UNSUBACK:
		w.u16("packet identifier")
		w.props()
		if w.err == nil && len(w.b) == 0 {
			w.fail("no reason codes")
		}
		w.b = nil
	case packet.DISCONNECT, packet.AUTH:
		if len(w.b) > 0 {
			w.take(1, "reason code")
		}
		if len(w.b) > 0 {
			w.props()
		}
	case packet.PINGRESP:
	default:
		return fmt.Errorf("a server does not send %s", f.kind())
	}
	if w.err == nil && len(w.b) > 0 {
		w.fail("% x left after the last field", w.b)
	}
	if w.err != nil {
		return fmt.Errorf("%s: %w", f.kind(), w.err)
	}
	return nil
}

// checkWire splits everything t received into frames and checks each with
// checkServerFrame; it returns the frames.
func checkWire(t *tap) []wireFrame {
	frames, err := splitWire(t.received())
	Expect(err).NotTo(HaveOccurred(), "what the broker sent")
	for i, f := range frames {
		Expect(checkServerFrame(f)).To(Succeed(), "frame %d the broker sent", i+1)
	}
	return frames
}
