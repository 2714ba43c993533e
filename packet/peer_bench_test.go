package packet_test

import (
	"bytes"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2/packets"
)

// The peer benchmarks run mochi-mqtt's codec on the same PUBLISH packets in
// the same run, so docs/benchmarks.md can give ratios rather than raw figures
// from one machine.

var peerSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"4KB", 4096}}

func mochiPublish(size int) *mochi.Packet {
	return &mochi.Packet{
		FixedHeader:     mochi.FixedHeader{Type: mochi.Publish, Qos: 1},
		ProtocolVersion: 4,
		TopicName:       "fleet/device-0001/telemetry",
		PacketID:        42,
		Payload:         bytes.Repeat([]byte{'x'}, size),
	}
}

// BenchmarkPeerEncodePublish is BenchmarkEncodePublish for mochi-mqtt.
func BenchmarkPeerEncodePublish(b *testing.B) {
	for _, s := range peerSizes {
		b.Run(s.name, func(b *testing.B) {
			pk := mochiPublish(s.size)
			var buf bytes.Buffer
			buf.Grow(s.size + 128)
			if err := pk.PublishEncode(&buf); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				_ = pk.PublishEncode(&buf)
			}
		})
	}
}

// BenchmarkPeerDecodePublish is BenchmarkDecodePublish for mochi-mqtt: fixed
// header, then body.
func BenchmarkPeerDecodePublish(b *testing.B) {
	for _, s := range peerSizes {
		b.Run(s.name, func(b *testing.B) {
			var buf bytes.Buffer
			if err := mochiPublish(s.size).PublishEncode(&buf); err != nil {
				b.Fatal(err)
			}
			raw := buf.Bytes()
			hdr := 1
			for raw[hdr]&0x80 != 0 {
				hdr++
			}
			hdr++
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				pk := mochi.Packet{ProtocolVersion: 4}
				if err := pk.FixedHeader.Decode(raw[0]); err != nil {
					b.Fatal(err)
				}
				if err := pk.PublishDecode(raw[hdr:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
