package packet

import (
	"bytes"
	"testing"
)

var benchSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"4KB", 4096}}

func benchPublish(size int) *Publish {
	return &Publish{QoS: 1, PacketID: 42, Topic: "fleet/device-0001/telemetry", Payload: bytes.Repeat([]byte{'x'}, size)}
}

// BenchmarkEncodePublish appends a QoS 1 PUBLISH into a reused buffer.
func BenchmarkEncodePublish(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			p := benchPublish(s.size)
			dst := make([]byte, 0, s.size+128)
			dst, _ = Append(dst, p, V311)
			b.SetBytes(int64(len(dst)))
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = Append(dst[:0], p, V311)
			}
		})
	}
}

// BenchmarkDecodePublish decodes a QoS 1 PUBLISH from a byte slice.
func BenchmarkDecodePublish(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			raw, _ := Append(nil, benchPublish(s.size), V311)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Decode(raw, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadPublish reads PUBLISH packets through a Reader, the way a
// connection does (body buffer allocated per packet).
func BenchmarkReadPublish(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			raw, _ := Append(nil, benchPublish(s.size), V311)
			src := &loopReader{b: raw}
			r := NewReader(src, Options{})
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.ReadPacket(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// loopReader repeats b forever.
type loopReader struct {
	b []byte
	i int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.b[l.i:])
		n += c
		l.i = (l.i + c) % len(l.b)
	}
	return n, nil
}
