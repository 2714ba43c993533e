package packet

import (
	"bytes"
	"io"
	"testing"
)

// TestAppendPublishNoAllocs: with capacity in dst, encoding a PUBLISH (with
// and without MQTT 5 properties) allocates nothing.
func TestAppendPublishNoAllocs(t *testing.T) {
	cases := map[byte]*Publish{
		V311: benchPublish(4096),
		V5: {QoS: 2, PacketID: 9, Topic: "a/b", Payload: []byte("hello"), Props: &Properties{
			PayloadFormat: u8p(1), ContentType: "text/plain", HasContentType: true, CorrelationData: []byte{1},
			SubscriptionIDs: []uint32{1, 300}, User: []UserProperty{{"k", "v"}}}},
	}
	for v, p := range cases {
		dst := make([]byte, 0, 8192)
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			if dst, err = Append(dst[:0], p, v); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("v%d: %v allocs per Append, want 0", v, allocs)
		}
	}
}

// TestReadPacketOneBuffer: a 4 KB PUBLISH read from a connection costs the
// body buffer, the *Publish and the topic string, and no second payload copy;
// the payload aliases the body buffer.
func TestReadPacketOneBuffer(t *testing.T) {
	p := benchPublish(4096)
	raw, _ := Append(nil, p, V311)
	src := &loopReader{b: raw}
	r := NewReader(src, Options{})
	var got Packet
	allocs := testing.AllocsPerRun(50, func() {
		var err error
		if got, err = r.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Errorf("%v allocs per ReadPacket, want at most 3 (body, *Publish, topic)", allocs)
	}
	var m runtimeMem
	m.check(t, func() { _, _ = r.ReadPacket() }, uint64(len(raw))*3/2)
	pub := got.(*Publish)
	if !bytes.Equal(pub.Payload, p.Payload) {
		t.Fatal("payload differs")
	}
	// The payload runs to the end of the body buffer: its capacity ends there.
	if cap(pub.Payload) != len(pub.Payload) {
		t.Errorf("payload cap %d, len %d: not a view of the packet buffer", cap(pub.Payload), len(pub.Payload))
	}
}

// TestEncodePooled: Encode reuses its buffers, so a steady stream of
// PUBLISHes costs no allocation per packet on average.
func TestEncodePooled(t *testing.T) {
	p := benchPublish(1024)
	allocs := testing.AllocsPerRun(100, func() {
		if err := Encode(io.Discard, p, V311); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= 1 {
		t.Errorf("%v allocs per Encode, want < 1", allocs)
	}
}
