package netem

import (
	"bytes"
	"testing"
)

func TestFixedHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want int
	}{
		{"empty", nil, 0},
		{"type only", []byte{0x30}, 0},
		{"pingreq", []byte{0xc0, 0x00}, 2},
		{"publish qos 1, one length byte", []byte{0x32, 0x05}, 7},
		{"two length bytes", []byte{0x30, 0x80, 0x01}, 3 + 128},
		{"two length bytes, the second missing", []byte{0x30, 0x80}, 0},
		{"largest length", []byte{0x30, 0xff, 0xff, 0xff, 0x7f}, 5 + maxRemaining},
		{"fifth length byte", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, -1},
		{"type 0", []byte{0x00, 0x00}, -1},
		{"publish qos 3", []byte{0x36, 0x00}, -1},
		{"subscribe with flags 0000", []byte{0x80, 0x00}, -1},
		{"pubrel with flags 0010", []byte{0x62, 0x02}, 4},
		{"pingreq with flags", []byte{0xc1, 0x00}, -1},
		{"http", []byte("GET / HTTP/1.1"), -1},
	} {
		if got := header(tc.b); got != tc.want {
			t.Errorf("%s: header(% x) = %d, want %d", tc.name, tc.b, got, tc.want)
		}
	}
}

// TestSplitAcrossReads: packets cut anywhere by reads come out whole, the
// same whichever way the stream was cut.
func TestSplitAcrossReads(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i := range 50 {
		p := append([]byte{0x30, byte(3 + i)}, 0, 1, 't')
		p = append(p, bytes.Repeat([]byte{byte(i)}, i)...)
		stream = append(stream, p...)
		want = append(want, p)
	}
	big := append([]byte{0x30, 0x80, 0x02}, make([]byte, 256)...) // two length bytes
	stream = append(stream, big...)
	want = append(want, big)
	for _, cut := range []int{1, 2, 3, 7, 64, len(stream)} {
		var fr framer
		var got [][]byte
		for i := 0; i < len(stream); i += cut {
			units, _ := fr.split(stream[i:min(i+cut, len(stream))], nil)
			for _, u := range units {
				if u.typ != 3 {
					t.Fatalf("cut %d: unit type %d", cut, u.typ)
				}
				got = append(got, append([]byte(nil), u.b...))
			}
		}
		if len(got) != len(want) || len(fr.pending) != 0 || fr.mode != frameMQTT {
			t.Fatalf("cut %d: %d packets, %d bytes pending, mode %d; want %d packets", cut, len(got), len(fr.pending), fr.mode, len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("cut %d: packet %d = % x, want % x", cut, i, got[i], want[i])
			}
		}
	}
}

func TestSplitFallsBackToRaw(t *testing.T) {
	var fr framer
	units, _ := fr.split([]byte{0xc0, 0x00, 'G', 'E', 'T'}, nil)
	if len(units) != 2 || units[0].typ != 12 || units[1].typ != 0 || string(units[1].b) != "GET" || fr.mode != frameRaw {
		t.Fatalf("units %+v mode %d: want the PINGREQ, then the rest raw", units, fr.mode)
	}
	if u, _ := fr.split([]byte{0xc0, 0x00}, nil); len(u) != 1 || u[0].typ != 0 {
		t.Fatalf("raw mode stays raw: %+v", u)
	}
	if pre := fr.flush(); pre != nil || fr.mode != frameUnsynced {
		t.Fatalf("flush: %v, mode %d", pre, fr.mode)
	}
}
