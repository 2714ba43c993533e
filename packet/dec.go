package packet

import (
	"bytes"
	"unicode/utf8"
)

// dec walks one packet body. Running out of bytes inside a body is a
// Malformed Packet, never io.ErrUnexpectedEOF: the remaining length already
// told us how much there is.
type dec struct {
	b  []byte
	i  int
	t  Type
	v5 bool
}

// id picks the statement ID of the protocol version being decoded; both lists
// reuse ID strings with different meanings, so the choice matters.
func (d *dec) id(v311, v5 string) string {
	if d.v5 {
		return v5
	}
	return v311
}

func (d *dec) malformed(stmt, format string, args ...any) *Error {
	return errf(d.t, stmt, CodeMalformed, format, args...)
}

func (d *dec) protocol(stmt, format string, args ...any) *Error {
	return errf(d.t, stmt, CodeProtocolError, format, args...)
}

func (d *dec) left() int { return len(d.b) - d.i }

func (d *dec) short(what string, need int) *Error {
	return d.malformed("", "%s needs %d bytes, only %d left in the packet", what, need, d.left())
}

func (d *dec) u8(what string) (byte, error) {
	if d.left() < 1 {
		return 0, d.short(what, 1)
	}
	v := d.b[d.i]
	d.i++
	return v, nil
}

func (d *dec) u16(what string) (uint16, error) {
	if d.left() < 2 {
		return 0, d.short(what, 2)
	}
	v := uint16(d.b[d.i])<<8 | uint16(d.b[d.i+1])
	d.i += 2
	return v, nil
}

func (d *dec) u32(what string) (uint32, error) {
	if d.left() < 4 {
		return 0, d.short(what, 4)
	}
	b := d.b[d.i:]
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	d.i += 4
	return v, nil
}

// varint reads a Variable Byte Integer inside the body (property lengths and
// Subscription Identifiers).
func (d *dec) varint(what string) (uint32, error) {
	v, n, err := parseVarint(d.b[d.i:])
	switch err {
	case nil:
	case errVarintShort:
		return 0, d.malformed("", "%s: variable byte integer runs past the packet", what)
	case errVarintLong:
		return 0, d.malformed("", "%s: variable byte integer longer than 4 bytes", what)
	default: // errVarintNonMinimal
		return 0, d.malformed("MQTT-1.5.5-1", "%s: variable byte integer not in its shortest form", what)
	}
	d.i += n
	return v, nil
}

// bin reads Binary Data (two-byte length, then bytes). The result aliases the
// packet buffer.
func (d *dec) bin(what string) ([]byte, error) {
	if d.left() < 2 {
		return nil, d.malformed("", "%s length needs 2 bytes, only %d left in the packet", what, d.left())
	}
	n := uint16(d.b[d.i])<<8 | uint16(d.b[d.i+1])
	d.i += 2
	if d.left() < int(n) {
		return nil, d.short(what, int(n))
	}
	v := d.b[d.i : d.i+int(n) : d.i+int(n)]
	d.i += int(n)
	return v, nil
}

// str reads a UTF-8 Encoded String and checks it [MQTT-1.5.3-1], [MQTT-1.5.3-2].
func (d *dec) str(what string) (string, error) {
	b, err := d.bin(what)
	if err != nil {
		return "", err
	}
	if stmt, msg := checkUTF8(b, d.v5); stmt != "" {
		return "", d.malformed(stmt, "%s: %s", what, msg)
	}
	return string(b), nil
}

// done refuses bytes beyond what the packet's fields declare.
func (d *dec) done(stmt string) error {
	if d.left() != 0 {
		return d.malformed(stmt, "%d trailing bytes after the last field", d.left())
	}
	return nil
}

// checkUTF8 returns the statement and reason when b is not an MQTT UTF-8
// string: ill-formed, a surrogate (utf8.Valid refuses those), or U+0000.
func checkUTF8(b []byte, v5 bool) (stmt, msg string) {
	if !utf8.Valid(b) {
		if v5 {
			return "MQTT-1.5.4-1", "ill-formed UTF-8"
		}
		return "MQTT-1.5.3-1", "ill-formed UTF-8"
	}
	if bytes.IndexByte(b, 0) >= 0 {
		if v5 {
			return "MQTT-1.5.4-2", "contains U+0000"
		}
		return "MQTT-1.5.3-2", "contains U+0000"
	}
	return "", ""
}
