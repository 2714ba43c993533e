package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Raw is a connection with no automatic behaviour: no acks, no pings, no
// packet identifiers. Conformance probes use it to send exactly the bytes or
// packets they want and to read exactly what comes back. Not safe for
// concurrent reads; writes are single Write calls.
type Raw struct {
	conn    net.Conn
	version byte
	maxSize int
	buf     []byte // bytes read but not yet decoded
	rbuf    []byte // read scratch
}

// NewRaw wraps conn; version (packet.V31, V311 or V5) decides how packets
// other than CONNECT are encoded and decoded.
func NewRaw(conn net.Conn, version byte) *Raw {
	r := &Raw{conn: conn}
	r.SetVersion(version)
	return r
}

// RawConnect writes cp over conn and reads the answer, which must be a
// CONNACK. The Raw uses cp's protocol level (V311 if it is none of 3, 4, 5,
// so a probe can send an unsupported level and still read the refusal). The
// whole exchange is bounded by ctx, or by DefaultConnectTimeout without a
// deadline. The Raw is returned even on error, so the test can look further.
func RawConnect(ctx context.Context, conn net.Conn, cp *packet.Connect) (*Raw, *packet.Connack, error) {
	r := NewRaw(conn, cp.ProtocolLevel)
	timeout := DefaultConnectTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Nanosecond)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
	defer stop()
	if err := r.WritePacketVersion(cp, cp.ProtocolLevel); err != nil {
		return r, nil, err
	}
	p, err := r.ReadPacket(timeout)
	if err != nil {
		return r, nil, fmt.Errorf("raw connect: %w", err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		return r, nil, fmt.Errorf("raw connect: got %s instead of CONNACK: %w", p.Type(), ErrProtocol)
	}
	return r, ack, nil
}

// Conn returns the underlying connection.
func (r *Raw) Conn() net.Conn { return r.conn }

// Version returns the protocol level used for encoding and decoding.
func (r *Raw) Version() byte { return r.version }

// SetVersion changes the protocol level used for encoding and decoding.
func (r *Raw) SetVersion(version byte) {
	switch version {
	case packet.V31, packet.V311, packet.V5:
		r.version = version
	default:
		r.version = packet.V311
	}
}

// SetMaxPacketSize refuses incoming packets larger than n bytes (0: no limit).
func (r *Raw) SetMaxPacketSize(n int) { r.maxSize = n }

// Close closes the connection.
func (r *Raw) Close() error { return r.conn.Close() }

// WriteBytes writes b as it is, in one Write.
func (r *Raw) WriteBytes(b []byte) error {
	if _, err := r.conn.Write(b); err != nil {
		return fmt.Errorf("raw: write %d bytes: %w", len(b), err)
	}
	return nil
}

// WritePacket encodes p with the Raw's protocol level and writes it.
func (r *Raw) WritePacket(p packet.Packet) error {
	return r.WritePacketVersion(p, r.version)
}

// WritePacketVersion encodes p for the given protocol level and writes it.
func (r *Raw) WritePacketVersion(p packet.Packet, version byte) error {
	b, err := packet.Append(nil, p, version)
	if err != nil {
		return fmt.Errorf("raw: encode %s: %w", p.Type(), err)
	}
	if _, err := r.conn.Write(b); err != nil {
		return fmt.Errorf("raw: write %s: %w", p.Type(), err)
	}
	return nil
}

// ReadPacket reads the next packet, waiting at most timeout (0: no limit).
// A timeout error matches errors.Is(err, os.ErrDeadlineExceeded). Bytes of a
// packet cut short by the timeout are kept for the next call. A packet that
// fails to decode is returned as the error and everything read so far is
// dropped, since its end cannot be trusted.
func (r *Raw) ReadPacket(timeout time.Duration) (packet.Packet, error) {
	if err := r.setReadDeadline(timeout); err != nil {
		return nil, err
	}
	opt := packet.Options{Version: r.decodeVersion(), MaxPacketSize: r.maxSize}
	for range 1 << 20 { // bounded: every pass reads at least one byte or returns
		if len(r.buf) > 0 {
			p, n, err := packet.Decode(r.buf, opt)
			if err == nil {
				r.buf = r.buf[n:] // p may alias what it used; that part is never written again
				if len(r.buf) == 0 {
					r.buf = nil
				}
				return p, nil
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				r.buf = nil
				return nil, fmt.Errorf("raw: decode: %w", err)
			}
		}
		if err := r.fill(); err != nil {
			if len(r.buf) > 0 && (errors.Is(err, io.EOF) || isReset(err)) {
				return nil, fmt.Errorf("raw: connection closed inside a packet (%d bytes read): %w", len(r.buf), err)
			}
			return nil, fmt.Errorf("raw: read packet: %w", err)
		}
	}
	return nil, errors.New("raw: read packet: too many reads")
}

// fill reads what the conn has into buf.
func (r *Raw) fill() error {
	if r.rbuf == nil {
		r.rbuf = make([]byte, 4096)
	}
	n, err := r.conn.Read(r.rbuf)
	r.buf = append(r.buf, r.rbuf[:n]...)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (r *Raw) decodeVersion() byte {
	if r.version == packet.V31 {
		return packet.V311
	}
	return r.version
}

func (r *Raw) setReadDeadline(timeout time.Duration) error {
	var d time.Time
	if timeout > 0 {
		d = time.Now().Add(timeout)
	}
	if err := r.conn.SetReadDeadline(d); err != nil {
		return fmt.Errorf("raw: set read deadline: %w", err)
	}
	return nil
}

// ExpectClosed waits up to timeout for the peer to close the connection
// (EOF or reset) without sending anything more. It returns nil then, and an
// error naming what arrived or that the connection stayed open otherwise.
func (r *Raw) ExpectClosed(timeout time.Duration) error {
	if len(r.buf) > 0 {
		return r.unexpected()
	}
	if err := r.setReadDeadline(timeout); err != nil {
		return err
	}
	err := r.fill()
	switch {
	case len(r.buf) > 0:
		return r.unexpected()
	case errors.Is(err, io.EOF) || isReset(err):
		return nil
	default:
		return fmt.Errorf("raw: expected the peer to close within %v: %w", timeout, err)
	}
}

// unexpected describes bytes that arrived when a close was expected.
func (r *Raw) unexpected() error {
	p, _, err := packet.Decode(r.buf, packet.Options{Version: r.decodeVersion()})
	if err == nil {
		return fmt.Errorf("raw: expected the peer to close, got %s", p.Type())
	}
	return fmt.Errorf("raw: expected the peer to close, got %d bytes (% x)", len(r.buf), r.buf[:min(len(r.buf), 16)])
}

// isReset tells whether err is the peer resetting the connection.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}
