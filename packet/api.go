package packet

import (
	"io"
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
func Decode(b []byte, opt Options) (Packet, int, error) {
	panic("packet.Decode: not implemented yet")
}

// ReadPacket reads and decodes one packet from r. The fixed header is read
// first, so a packet over opt.MaxPacketSize is refused before its body is
// allocated. The packet body is read into one fresh buffer; Publish.Payload
// aliases it.
func ReadPacket(r io.Reader, opt Options) (Packet, error) {
	panic("packet.ReadPacket: not implemented yet")
}

// Append encodes p for the given protocol level and appends it to dst.
// Encoding a PUBLISH allocates nothing beyond growing dst.
func Append(dst []byte, p Packet, version byte) ([]byte, error) {
	panic("packet.Append: not implemented yet")
}

// Encode writes p, encoded for the given protocol level, to w in one Write.
func Encode(w io.Writer, p Packet, version byte) error {
	panic("packet.Encode: not implemented yet")
}
