package client

import (
	"io"
	"sync"
)

// readBufferSize is the buffer a client borrows while packets flow: big
// enough to take most small packets in one read.
const readBufferSize = 2048

// tinySize is the buffer every client keeps inline. A quiet link's next
// read goes there (a PINGRESP, an ack or a small PUBLISH fits), so a client
// waiting for its next packet holds no pooled buffer.
const tinySize = 16

// readBufs are the borrowed read buffers, shared by every client.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}

// inbuf is the client's read side: a buffered reader over the conn whose
// buffer is borrowed from readBufs only while bytes come in faster than a
// tiny read, and handed back once the link is quiet. Used by the reader
// goroutine only.
type inbuf struct {
	c      *Client
	pooled *[]byte // the borrowed buffer; nil: the tiny one is in use
	r, w   int32   // unread bytes are buffer()[r:w]
	quiet  bool    // the last read returned fewer than tinySize bytes
	// inPacket: a packet is being decoded, so a park deadline firing now
	// must not end the read (see Client.retryRead).
	inPacket bool
	tiny     [tinySize]byte
}

// buffer is the buffer in use.
func (b *inbuf) buffer() []byte {
	if b.pooled != nil {
		return *b.pooled
	}
	return b.tiny[:]
}

// empty reports whether no read bytes are waiting to be decoded.
func (b *inbuf) empty() bool { return b.r == b.w }

// release hands the borrowed buffer back; only when nothing is buffered.
func (b *inbuf) release() {
	if b.r != b.w || b.pooled == nil {
		return
	}
	readBufs.Put(b.pooled)
	b.pooled, b.r, b.w = nil, 0, 0
}

// borrow takes a pooled buffer; nothing is buffered.
func (b *inbuf) borrow() {
	b.pooled, b.r, b.w = readBufs.Get().(*[]byte), 0, 0
}

// fill reads at least one more byte into the buffer, or fails. It is
// called only when everything buffered has been consumed: a quiet link
// reads into the tiny buffer, a busy one into a borrowed one.
func (b *inbuf) fill() error {
	if b.quiet {
		b.release()
	} else if b.pooled == nil {
		b.borrow()
	}
	b.r, b.w = 0, 0
	buf := b.buffer()
	for range 100 { // a conn returning nothing and no error 100 times is broken
		n, err := b.c.conn.Read(buf)
		b.w = int32(n)
		if n > 0 {
			b.quiet = n < tinySize
			return nil
		}
		if err != nil {
			if b.c.retryRead(err, b.inPacket) {
				continue
			}
			return err
		}
	}
	return io.ErrNoProgress
}

// ReadByte lets packet.ReadPacket take the fixed header byte by byte.
func (b *inbuf) ReadByte() (byte, error) {
	if b.r == b.w {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	v := b.buffer()[b.r]
	b.r++
	return v, nil
}

// Read copies buffered bytes; a large read with nothing buffered goes
// straight to the conn.
func (b *inbuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= readBufferSize {
			return b.readDirect(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buffer()[b.r:b.w])
	b.r += int32(n)
	return n, nil
}

func (b *inbuf) readDirect(p []byte) (int, error) {
	for range 100 {
		n, err := b.c.conn.Read(p)
		if n > 0 {
			b.quiet = false
			return n, nil
		}
		if err == nil || b.c.retryRead(err, b.inPacket) {
			continue
		}
		return 0, err
	}
	return 0, io.ErrNoProgress
}
