// Package payload builds what simulated devices publish: a small binary
// measurement header followed by a body from a generator (fixed size,
// template, or a JSON sensor reading following a random walk or a sine).
//
// The header lets every receiver tell, per publishing device, which messages
// it got, twice or out of order, and how long each took end to end:
//
//	offset size field
//	0      2    magic "MF"
//	2      1    version (1)
//	3      1    flags (reserved, 0)
//	4      4    run ID (big endian), so messages of other runs are ignored
//	8      4    device: global index of the publisher
//	12     8    sequence number, 1 for the device's first message
//	20     8    send time, Unix nanoseconds
package payload

import (
	"encoding/binary"
	"errors"
	"time"
)

// HeaderSize is the size of the measurement header.
const HeaderSize = 28

const (
	magic0  = 'M'
	magic1  = 'F'
	version = 1
)

// Header is the measurement header of one message.
type Header struct {
	Run    uint32
	Device uint32
	Seq    uint64
	Sent   time.Time
}

// ErrNoHeader: the payload does not start with a measurement header.
var ErrNoHeader = errors.New("payload: no measurement header")

// AppendHeader appends the encoded header to dst.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, magic0, magic1, version, 0)
	dst = binary.BigEndian.AppendUint32(dst, h.Run)
	dst = binary.BigEndian.AppendUint32(dst, h.Device)
	dst = binary.BigEndian.AppendUint64(dst, h.Seq)
	return binary.BigEndian.AppendUint64(dst, uint64(h.Sent.UnixNano()))
}

// ParseHeader decodes the header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize || b[0] != magic0 || b[1] != magic1 || b[2] != version {
		return Header{}, ErrNoHeader
	}
	return Header{
		Run:    binary.BigEndian.Uint32(b[4:]),
		Device: binary.BigEndian.Uint32(b[8:]),
		Seq:    binary.BigEndian.Uint64(b[12:]),
		Sent:   time.Unix(0, int64(binary.BigEndian.Uint64(b[20:]))),
	}, nil
}

// SentNanos returns the send time of a header-carrying payload without
// building a time.Time; ok is false when b has no header.
func SentNanos(b []byte) (int64, bool) {
	if len(b) < HeaderSize || b[0] != magic0 || b[1] != magic1 || b[2] != version {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[20:])), true
}
