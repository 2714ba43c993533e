package packet

import (
	"fmt"
	"io"
	"sync"
)

// Options control decoding.
type Options struct {
	// Version is the protocol level negotiated on the connection (V31, V311
	// or V5). It decides whether packets other than CONNECT carry MQTT 5
	// properties. CONNECT itself is decoded by its own protocol level.
	// Zero means V311.
	Version byte
	// MaxPacketSize is the largest whole packet (fixed header included)
	// accepted; a larger one is refused before its body is allocated.
	// Zero means no limit beyond MaxRemainingLength.
	MaxPacketSize int
}

// Decode decodes one packet from the start of b and returns it with the
// number of bytes it used. When b holds only part of a packet, the error is
// io.ErrUnexpectedEOF. Slices in the result (such as Publish.Payload) alias b.
//
// Any other failure is an *Error. When the fixed header was valid and the
// whole packet is in b, n is the packet's full length even if the body then
// fails to decode; after a fixed-header error n is 0. A CONNECT with an unsupported protocol level returns the
// partial *Connect (ProtocolName, ProtocolLevel) with an error matching
// ErrUnsupportedProtocolLevel (Code 0x84, [MQTT-3.1.2-2]); a CONNECT with a
// wrong protocol name returns the same partial *Connect with a Protocol Error
// naming [MQTT-3.1.2-1]. A SUBSCRIBE or UNSUBSCRIBE whose only fault is a
// topic filter breaking the filter rules is returned whole with that
// filter's error (Code 0x8F), so a server can answer it with a failure code.
// A packet over opt.MaxPacketSize fails with
// ErrPacketTooLarge before the body is looked at (n is 0 then).
func Decode(b []byte, opt Options) (Packet, int, error) {
	h, err := parseHeader(b, opt)
	if err != nil {
		return nil, 0, err
	}
	n := h.size + h.remain
	if len(b) < n {
		return nil, 0, io.ErrUnexpectedEOF
	}
	p, err := decodeBody(h, b[h.size:n:n], opt)
	return p, n, err
}

// ReadPacket reads and decodes one packet from r. The fixed header is read
// first, so a packet over opt.MaxPacketSize is refused before its body is
// allocated. The packet body is read into one fresh buffer; Publish.Payload
// aliases it. That buffer grows with the bytes received, never to the
// announced length up front, so a peer that announces a large packet and
// sends little costs little. A clean end of stream before the first byte is io.EOF; an end
// inside a packet is io.ErrUnexpectedEOF; other errors, and the partial
// *Connect returned with them, are as for Decode. For a long-lived connection use
// Reader, which buffers.
func ReadPacket(r io.Reader, opt Options) (Packet, error) {
	if br, ok := r.(io.ByteReader); ok {
		return readPacket(br, r, opt)
	}
	return readPacket(&oneByteReader{r: r}, r, opt)
}

// Append encodes p for the given protocol level and appends it to dst.
// Encoding a PUBLISH allocates nothing beyond growing dst.
// Version 0 means V311. On error dst is returned as it was.
func Append(dst []byte, p Packet, version byte) ([]byte, error) {
	out, err := appendPacket(dst, p, version)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Encode writes p, encoded for the given protocol level, to w in one Write.
func Encode(w io.Writer, p Packet, version byte) error {
	bp := encodeBufs.Get().(*[]byte)
	defer func() {
		// Keep only modest buffers, so one huge PUBLISH does not pin memory.
		if cap(*bp) <= 64<<10 {
			encodeBufs.Put(bp)
		}
	}()
	b, err := Append((*bp)[:0], p, version)
	if err != nil {
		return err
	}
	*bp = b
	// io.Writer must not retain b, so the buffer can go back to the pool.
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", p.Type(), err)
	}
	return nil
}

// encodeBufs recycles Encode's buffers between calls and connections.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
