package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// TestReadPacketAllocatesWhatArrives: a header announcing the protocol
// maximum followed by 1 KB costs about what arrived, not 256 MB.
func TestReadPacketAllocatesWhatArrives(t *testing.T) {
	stream := append([]byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 't'}, bytes.Repeat([]byte{'x'}, 1<<10)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadPacket(bytes.NewReader(stream), Options{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want io.ErrUnexpectedEOF", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("reading 1 KB of a packet announced as 256 MB allocated %d bytes", got)
	}
}

// TestReadPacketGrowsToWholeBody: bodies larger than the first chunk,
// arriving in pieces, decode whole through every reader shape.
func TestReadPacketGrowsToWholeBody(t *testing.T) {
	for _, size := range []int{0, 1, firstChunk - 3, firstChunk, firstChunk + 1, 3*firstChunk + 7, 1 << 20} {
		payload := bytes.Repeat([]byte{0xa5}, size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		raw, err := Append(nil, &Publish{Topic: "a/b", Payload: payload}, V311)
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]io.Reader{
			"bytes":  bytes.NewReader(raw),
			"half":   iotest.HalfReader(bytes.NewReader(raw)),
			"bufio":  bufio.NewReader(iotest.HalfReader(bytes.NewReader(raw))),
			"reader": nil,
		} {
			var p Packet
			if r == nil {
				p, err = NewReader(iotest.HalfReader(bytes.NewReader(raw)), Options{}).ReadPacket()
			} else {
				p, err = ReadPacket(r, Options{})
			}
			if err != nil {
				t.Fatalf("size %d, %s: %v", size, name, err)
			}
			if got := p.(*Publish).Payload; !bytes.Equal(got, payload) {
				t.Fatalf("size %d, %s: payload differs (%d bytes)", size, name, len(got))
			}
		}
		// Cut one byte short: the end of stream is unexpected, never a panic.
		if _, err := ReadPacket(iotest.HalfReader(bytes.NewReader(raw[:len(raw)-1])), Options{}); !errors.Is(err, io.ErrUnexpectedEOF) && size > 0 {
			t.Fatalf("size %d cut short: %v", size, err)
		}
	}
}
