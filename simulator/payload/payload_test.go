package payload

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

func TestHeaderSizeAgrees(t *testing.T) {
	if HeaderSize != profile.HeaderSize {
		t.Fatalf("payload.HeaderSize %d != profile.HeaderSize %d", HeaderSize, profile.HeaderSize)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	h := Header{Run: 0xdeadbeef, Device: 17999, Seq: 1<<40 + 3, Sent: now}
	b := AppendHeader(nil, h)
	if len(b) != HeaderSize {
		t.Fatalf("header is %d bytes", len(b))
	}
	got, err := ParseHeader(append(b, "body"...))
	if err != nil || got.Run != h.Run || got.Device != h.Device || got.Seq != h.Seq || !got.Sent.Equal(now) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range [][]byte{nil, b[:HeaderSize-1], append([]byte("XX"), b[2:]...)} {
		if _, err := ParseHeader(bad); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}

func TestBodies(t *testing.T) {
	now := time.Unix(1700000000, 0)
	cases := []struct {
		name string
		p    profile.Payload
		json bool
		size int
	}{
		{"fixed", profile.Payload{Kind: profile.PayloadFixed, Size: 100}, false, 100 - HeaderSize},
		{"template", profile.Payload{Kind: profile.PayloadTemplate, Template: `{"id":{{.Index}},"seq":{{.Seq}}}`}, true, -1},
		{"walk", profile.Payload{Kind: profile.PayloadRandomWalk, Start: 20, Step: 1, Min: 0, Max: 21}, true, -1},
		{"sine", profile.Payload{Kind: profile.PayloadSine, Amplitude: 5, Offset: 20, Period: time.Minute}, true, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBody(tc.p, true, rand.New(rand.NewPCG(1, 2)), profile.Vars{Index: 3})
			for seq := uint64(1); seq <= 50; seq++ {
				out := b.Append(nil, seq, now.Add(time.Duration(seq)*time.Second))
				if tc.size >= 0 && len(out) != tc.size {
					t.Fatalf("size %d, want %d", len(out), tc.size)
				}
				if tc.json {
					var v map[string]float64
					if err := json.Unmarshal(out, &v); err != nil {
						t.Fatalf("not JSON: %s: %v", out, err)
					}
					if x, ok := v["value"]; ok && tc.name == "walk" && (x < 0 || x > 21) {
						t.Fatalf("walk left its bounds: %g", x)
					}
					if x, ok := v["value"]; ok && tc.name == "sine" && (x < 15 || x > 25) {
						t.Fatalf("sine out of range: %g", x)
					}
				}
			}
		})
	}
}
