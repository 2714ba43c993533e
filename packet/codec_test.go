package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// checkResult compares a decode result with the fixture's expectation.
func checkResult(t *testing.T, f fixture, p Packet, err error) {
	t.Helper()
	if f.want == nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("want *Error, got packet %#v, err %v", p, err)
		}
		if e.Statement != f.stmt {
			t.Errorf("statement %q, want %q (%v)", e.Statement, f.stmt, e)
		}
		if f.code != 0 && e.Code != f.code {
			t.Errorf("code 0x%02X, want 0x%02X (%v)", e.Code, f.code, e)
		}
		if e.Code == 0 {
			t.Errorf("error without a reason code: %v", e)
		}
		return
	}
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(p, f.want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", p, f.want)
	}
}

// TestFixtures decodes every fixture from a slice and, for valid ones,
// encodes the result back to the same bytes.
func TestFixtures(t *testing.T) {
	for _, f := range allFixtures() {
		t.Run(f.name, func(t *testing.T) {
			raw := f.bytes()
			p, n, err := Decode(raw, f.opt())
			checkResult(t, f, p, err)
			if f.want == nil {
				return
			}
			if n != len(raw) {
				t.Errorf("used %d bytes of %d", n, len(raw))
			}
			if f.decodeOnly {
				return
			}
			enc, err := Append(nil, p, f.version)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(enc, raw) {
				t.Fatalf("encoded % X\nwant    % X", enc, raw)
			}
		})
	}
}

// TestReadPacketAgrees reads every fixture through each reading path and
// expects exactly what Decode gives.
func TestReadPacketAgrees(t *testing.T) {
	for _, f := range allFixtures() {
		t.Run(f.name, func(t *testing.T) {
			raw := f.bytes()
			paths := map[string]func() (Packet, error){
				"ByteReader":    func() (Packet, error) { return ReadPacket(bytes.NewReader(raw), f.opt()) },
				"OneByteReader": func() (Packet, error) { return ReadPacket(iotest.OneByteReader(bytes.NewReader(raw)), f.opt()) },
				"Reader": func() (Packet, error) {
					return NewReader(iotest.HalfReader(bytes.NewReader(raw)), f.opt()).ReadPacket()
				},
			}
			for name, read := range paths {
				p, err := read()
				t.Run(name, func(t *testing.T) { checkResult(t, f, p, err) })
			}
		})
	}
}

// TestPartialInput cuts every valid fixture short: Decode must ask for more
// (io.ErrUnexpectedEOF) and ReadPacket must report the cut the same way.
func TestPartialInput(t *testing.T) {
	for _, f := range allFixtures() {
		if f.want == nil {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			raw := f.bytes()
			for i := 0; i < len(raw); i++ {
				if _, _, err := Decode(raw[:i], f.opt()); err != io.ErrUnexpectedEOF {
					t.Fatalf("Decode of %d/%d bytes: err %v, want io.ErrUnexpectedEOF", i, len(raw), err)
				}
				_, err := ReadPacket(bytes.NewReader(raw[:i]), f.opt())
				want := io.ErrUnexpectedEOF
				if i == 0 {
					want = io.EOF
				}
				if err != want {
					t.Fatalf("ReadPacket of %d/%d bytes: err %v, want %v", i, len(raw), err, want)
				}
			}
		})
	}
}

// TestReaderStream reads all valid fixtures of one version back to back
// from one connection-like stream.
func TestReaderStream(t *testing.T) {
	for _, v := range []byte{V311, V5} {
		var stream []byte
		var want []Packet
		for _, f := range allFixtures() {
			if f.want != nil && f.version == v && f.max == 0 {
				stream = append(stream, f.bytes()...)
				want = append(want, f.want)
			}
		}
		r := NewReader(bufio.NewReaderSize(bytes.NewReader(stream), 16), Options{Version: v})
		for i, w := range want {
			p, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("v%d packet %d: %v", v, i, err)
			}
			if !reflect.DeepEqual(p, w) {
				t.Fatalf("v%d packet %d: got %#v want %#v", v, i, p, w)
			}
		}
		if _, err := r.ReadPacket(); err != io.EOF {
			t.Fatalf("v%d: after the last packet err %v, want io.EOF", v, err)
		}
	}
}

// TestDecodeStream decodes valid fixtures of one version back to back from
// one slice, and checks n on body errors is the packet length.
func TestDecodeStream(t *testing.T) {
	for _, v := range []byte{V311, V5} {
		var stream []byte
		var want []Packet
		for _, f := range allFixtures() {
			if f.want != nil && f.version == v && f.max == 0 {
				stream = append(stream, f.bytes()...)
				want = append(want, f.want)
			}
		}
		for i, w := range want {
			p, n, err := Decode(stream, Options{Version: v})
			if err != nil || !reflect.DeepEqual(p, w) {
				t.Fatalf("v%d packet %d: %#v, %v", v, i, p, err)
			}
			stream = stream[n:]
		}
		if len(stream) != 0 {
			t.Fatalf("v%d: %d bytes left over", v, len(stream))
		}
	}
	bad := fixture{raw: "40 03 00 07 00 | C0 00"}.bytes() // 3.1.1 PUBACK with a trailing byte, then PINGREQ
	if _, n, err := Decode(bad, Options{}); err == nil || n != 5 {
		t.Fatalf("body error: n %d, err %v; want n 5 and an error", n, err)
	}
	if p, _, err := Decode(bad[5:], Options{}); err != nil || p.Type() != PINGREQ {
		t.Fatalf("after skipping: %v, %v", p, err)
	}
}
