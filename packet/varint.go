package packet

import "errors"

var (
	errVarintShort      = errors.New("variable byte integer truncated")
	errVarintLong       = errors.New("variable byte integer longer than 4 bytes")
	errVarintNonMinimal = errors.New("variable byte integer not minimal")
)

// parseVarint decodes a Variable Byte Integer from the start of b. A
// non-minimal encoding (a last byte of 0 after a continuation) is refused:
// MQTT 5 forbids it [MQTT-1.5.5-1] and 3.1.1's algorithm never produces it.
func parseVarint(b []byte) (uint32, int, error) {
	var v uint32
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, errVarintShort
		}
		c := b[i]
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				return 0, 0, errVarintNonMinimal
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errVarintLong
}

// varintLen is the encoded size of v (v <= MaxRemainingLength).
func varintLen(v int) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	}
	return 4
}

func appendVarint(dst []byte, v int) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

func appendU16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendU32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendBin appends a two-byte length and b; the caller has checked len(b).
func appendBin(dst []byte, b []byte) []byte {
	dst = appendU16(dst, uint16(len(b)))
	return append(dst, b...)
}

func appendStr(dst []byte, s string) []byte {
	dst = appendU16(dst, uint16(len(s)))
	return append(dst, s...)
}
