package packet

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

func FuzzDecode311(f *testing.F) { fuzzDecode(f, V311) }

func FuzzDecode5(f *testing.F) { fuzzDecode(f, V5) }

// fuzzDecode checks, for any input: no panic; ReadPacket agrees with Decode;
// and whatever decodes re-encodes to bytes that decode to an equal packet and
// re-encode to themselves (the encoding is canonical).
func fuzzDecode(f *testing.F, version byte) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	opt := Options{Version: version}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := Decode(b, opt)
		p2, err2 := ReadPacket(bytes.NewReader(b), opt)
		agree(t, p, err, p2, err2, len(b))
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("Decode used %d of %d bytes", n, len(b))
		}
		v := version
		if c, ok := p.(*Connect); ok {
			v = c.ProtocolLevel
		}
		enc, err := Append(nil, p, v)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", p, err)
		}
		p3, n3, err := Decode(enc, opt)
		if err != nil {
			t.Fatalf("re-decode % X (from % X): %v", enc, b[:n], err)
		}
		if n3 != len(enc) || !reflect.DeepEqual(p, p3) {
			t.Fatalf("round trip changed the packet:\n%#v\n%#v", p, p3)
		}
		enc2, err := Append(nil, p3, v)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: % X vs % X (%v)", enc, enc2, err)
		}
	})
}

// fuzzSeeds are the inputs both decode targets start from: every packet of
// the shared fixture table, valid and malformed. TestFuzzSeedsCoverV5 holds
// them to every 5.0 packet type with properties.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for _, fx := range allFixtures() {
		seeds = append(seeds, fx.bytes())
	}
	return seeds
}

// agree checks that ReadPacket gives what Decode gives for the same bytes.
func agree(t *testing.T, p Packet, err error, p2 Packet, err2 error, n int) {
	t.Helper()
	var e, e2 *Error
	switch {
	case err == io.ErrUnexpectedEOF:
		if !(err2 == io.ErrUnexpectedEOF || n == 0 && err2 == io.EOF) {
			t.Fatalf("Decode wants more input, ReadPacket says %v", err2)
		}
	case errors.As(err, &e):
		if !errors.As(err2, &e2) || e.Statement != e2.Statement || e.Code != e2.Code {
			t.Fatalf("Decode error %v, ReadPacket error %v", err, err2)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("partial packets differ: %#v vs %#v", p, p2)
		}
	case err != nil:
		t.Fatalf("Decode error of unexpected kind: %v", err)
	default:
		if err2 != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("Decode gave %#v, ReadPacket %#v, %v", p, p2, err2)
		}
	}
}
