package packet

import (
	"bufio"
	"io"
)

// Reader reads packets from a connection through a buffer, so the fixed
// header costs no system call per byte. Each packet body still gets its own
// buffer, because decoded packets alias it.
type Reader struct {
	br  *bufio.Reader
	opt Options
}

// NewReader returns a Reader over r decoding with opt.
func NewReader(r io.Reader, opt Options) *Reader {
	return &Reader{br: bufio.NewReader(r), opt: opt}
}

// SetVersion sets the protocol level used for packets after CONNECT, once
// the connection has negotiated it.
func (r *Reader) SetVersion(v byte) { r.opt.Version = v }

// SetMaxPacketSize sets the largest packet accepted (0: no limit).
func (r *Reader) SetMaxPacketSize(n int) { r.opt.MaxPacketSize = n }

// ReadPacket reads and decodes the next packet, as the package function does.
func (r *Reader) ReadPacket() (Packet, error) { return readPacket(r.br, r.br, r.opt) }

// oneByteReader gives an unbuffered io.Reader a ReadByte, so the fixed
// header is never over-read from a stream the caller still owns.
type oneByteReader struct {
	r   io.Reader
	buf [1]byte
}

func (o *oneByteReader) ReadByte() (byte, error) {
	if _, err := io.ReadFull(o.r, o.buf[:]); err != nil {
		return 0, err
	}
	return o.buf[0], nil
}

// readPacket reads the fixed header byte by byte from br, checks it
// (flags, size limit) and only then allocates and reads the body from r.
func readPacket(br io.ByteReader, r io.Reader, opt Options) (Packet, error) {
	var hb [5]byte
	first, err := br.ReadByte()
	if err != nil {
		return nil, err // io.EOF: the stream ended between packets
	}
	hb[0] = first
	// Refuse a bad first byte at once rather than wait for more input.
	if err := checkFlags(Type(first>>4), first&0x0f, opt.v5()); err != nil {
		return nil, err
	}
	n := 1
	var h header
	for {
		c, err := br.ReadByte()
		if err != nil {
			return nil, eofIsUnexpected(err)
		}
		hb[n] = c
		n++
		h, err = parseHeader(hb[:n], opt)
		if err != io.ErrUnexpectedEOF {
			if err != nil {
				return nil, err
			}
			break
		}
		if n == len(hb) {
			// parseHeader refuses a fifth length byte before we get here.
			return nil, errf(h.t, "", CodeMalformed, "remaining length longer than 4 bytes")
		}
	}
	body, err := readBody(r, h.remain)
	if err != nil {
		return nil, err
	}
	return decodeBody(h, body, opt)
}

// firstChunk is the most readBody reserves for a body beyond the bytes
// already buffered: packets up to it, nearly all MQTT traffic, cost one
// exact allocation as before. The remaining length is the peer's claim,
// not a fact: a buffer the size of the claim would let one socket reserve
// 256 MB with 5 bytes, so above firstChunk memory follows what arrives.
const firstChunk = 16 << 10

// buffered is implemented by readers that already hold bytes read from the
// stream (bufio.Reader, the broker's connection reader).
type buffered interface{ Buffered() int }

// readBody reads an n-byte packet body. A body that is small or already
// buffered is read into one exact buffer (the common case, one
// allocation); a larger one into a buffer that grows geometrically with
// the bytes actually received, so memory follows what the peer sent and
// never what it announced.
func readBody(r io.Reader, n int) ([]byte, error) {
	have := firstChunk
	if br, ok := r.(buffered); ok {
		have = max(have, br.Buffered())
	}
	if n <= have {
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, eofIsUnexpected(err)
		}
		return body, nil
	}
	body := make([]byte, 0, have)
	for len(body) < n {
		if len(body) == cap(body) {
			// Double, as append would, but never past the announced size.
			grown := make([]byte, len(body), min(n, 2*cap(body)))
			copy(grown, body)
			body = grown
		}
		m, err := io.ReadFull(r, body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err != nil {
			return nil, eofIsUnexpected(err)
		}
	}
	return body, nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
