package packet

import (
	"bytes"
	"testing"
)

// TestFrame: a framed packet decodes as the encoder's own, and the length
// prefix takes 1 to 4 bytes at the spec's boundaries [MQTT-2.2.3].
func TestFrame(t *testing.T) {
	var enc bytes.Buffer
	if err := Encode(&enc, &Pingreq{}, V311); err != nil {
		t.Fatal(err)
	}
	if got := Frame(0xC0); !bytes.Equal(got, enc.Bytes()) {
		t.Fatalf("Frame(0xC0) = % x, want % x", got, enc.Bytes())
	}
	for n, want := range map[int]int{0: 1, 127: 1, 128: 2, 16383: 2, 16384: 3, 2097151: 3, 2097152: 4, MaxRemainingLength: 4} {
		if got := len(AppendRemainingLength(nil, n)); got != want {
			t.Errorf("remaining length %d takes %d bytes, want %d", n, got, want)
		}
	}
	p := Frame(0x30, []byte{0, 1, 't'}, []byte("hi"))
	if !bytes.Equal(p, []byte{0x30, 5, 0, 1, 't', 'h', 'i'}) {
		t.Fatalf("Frame(PUBLISH) = % x", p)
	}
}
