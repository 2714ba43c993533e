package packet

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// TestUnsupportedLevel checks what a broker gets for a CONNECT it must refuse
// with CONNACK 0x01: the sentinel error and the partial packet.
func TestUnsupportedLevel(t *testing.T) {
	raw := fixture{raw: "10 0E | 00 04 4D 51 54 54 | 06 | 02 | 00 3C | 00 02 63 31"}.bytes()
	want := &Connect{ProtocolName: "MQTT", ProtocolLevel: 6}
	p, n, err := Decode(raw, Options{})
	if !errors.Is(err, ErrUnsupportedProtocolLevel) || errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("Decode err %v, want ErrUnsupportedProtocolLevel", err)
	}
	if n != len(raw) || !reflect.DeepEqual(p, want) {
		t.Fatalf("Decode gave %#v, %d; want %#v, %d", p, n, want, len(raw))
	}
	p, err = ReadPacket(bytes.NewReader(raw), Options{})
	if !errors.Is(err, ErrUnsupportedProtocolLevel) || !reflect.DeepEqual(p, want) {
		t.Fatalf("ReadPacket gave %#v, %v", p, err)
	}
}

// countingReader counts the bytes taken from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestMaxPacketSizeBeforeAllocation claims a 200 MB PUBLISH and checks the
// refusal comes from the header alone: 5 bytes read, no big allocation.
func TestMaxPacketSizeBeforeAllocation(t *testing.T) {
	const claimed = 200 << 20
	hdr := appendVarint([]byte{0x30}, claimed)
	opt := Options{MaxPacketSize: 1 << 20}
	var err error
	var cr *countingReader
	allocs := testing.AllocsPerRun(10, func() {
		cr = &countingReader{r: io.MultiReader(bytes.NewReader(hdr), zeroReader{})}
		_, err = ReadPacket(cr, opt)
	})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodePacketTooLarge || !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("err %v, want *Error with Code 0x95", err)
	}
	if cr.n != len(hdr) {
		t.Fatalf("read %d bytes, want only the %d header bytes", cr.n, len(hdr))
	}
	var ms runtimeMem
	ms.check(t, func() { _, _ = ReadPacket(bytes.NewReader(hdr), opt) }, 1<<20)
	if allocs > 10 {
		t.Fatalf("%v allocations for a refused header", allocs)
	}
	// Decode refuses the same header before it looks for the body.
	if _, _, err := Decode(hdr, opt); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("Decode err %v, want ErrPacketTooLarge", err)
	}
}

// zeroReader would feed a body forever; the test fails if it is ever read.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestEncodeOneWrite(t *testing.T) {
	var w writeCounter
	p := &Publish{QoS: 1, PacketID: 3, Topic: "a/b", Payload: []byte("hello")}
	if err := Encode(&w, p, V5); err != nil {
		t.Fatal(err)
	}
	if w.calls != 1 {
		t.Fatalf("%d Write calls, want 1", w.calls)
	}
	got, _, err := Decode(w.buf.Bytes(), Options{Version: V5})
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip: %#v, %v", got, err)
	}
}

type writeCounter struct {
	buf   bytes.Buffer
	calls int
}

func (w *writeCounter) Write(b []byte) (int, error) { w.calls++; return w.buf.Write(b) }

func TestAppendErrors(t *testing.T) {
	big := make([]byte, MaxRemainingLength)
	cases := map[string]struct {
		p Packet
		v byte
	}{
		"AUTH in 3.1.1":          {&Auth{}, V311},
		"nil packet":             {nil, V311},
		"topic over 65535":       {&Publish{Topic: string(make([]byte, 70000))}, V311},
		"remaining length":       {&Publish{Topic: "t", Payload: big}, V311},
		"filter over 65535":      {&Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: string(make([]byte, 70000))}}}, V5},
		"reason string too long": {&Puback{PacketID: 1, Props: &Properties{HasReasonString: true, ReasonString: string(make([]byte, 70000))}}, V5},
	}
	for name, c := range cases {
		dst := []byte{1, 2}
		out, err := Append(dst, c.p, c.v)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if !bytes.Equal(out, dst) {
			t.Errorf("%s: dst changed on error", name)
		}
	}
}

// TestFilterErrorKeepsPacket: a SUBSCRIBE/UNSUBSCRIBE that is well formed
// except for a filter breaking the filter rules comes back whole with the
// filter's error, so a broker can answer that filter with a failure code.
func TestFilterErrorKeepsPacket(t *testing.T) {
	cases := []struct {
		name, raw string
		version   byte
		want      Packet
		stmt      string
	}{
		{"SUBSCRIBE 3.1.1", "82 0F 00 05 | 00 05 61 2F 23 2F 62 | 01 | 00 02 6F 6B | 02", V311,
			&Subscribe{PacketID: 5, Subscriptions: []Subscription{{Filter: "a/#/b", QoS: 1}, {Filter: "ok", QoS: 2}}}, "MQTT-4.7.1-2"},
		{"SUBSCRIBE v5", "82 0B 00 05 | 00 | 00 02 2B 61 | 00 | 00 00 | 01", V5,
			&Subscribe{PacketID: 5, Subscriptions: []Subscription{{Filter: "+a"}, {Filter: "", QoS: 1}}}, "MQTT-4.7.1-2"},
		{"UNSUBSCRIBE 3.1.1", "A2 0A 00 06 | 00 02 6F 6B | 00 02 61 23", V311,
			&Unsubscribe{PacketID: 6, Filters: []string{"ok", "a#"}}, "MQTT-4.7.1-2"},
	}
	for _, c := range cases {
		raw := fixture{raw: c.raw}.bytes()
		opt := Options{Version: c.version}
		p, n, err := Decode(raw, opt)
		var e *Error
		if !errors.As(err, &e) || e.Statement != c.stmt || e.Code != CodeTopicFilterInvalid || e.Packet != c.want.Type() {
			t.Errorf("%s: err %v, want %s with code 0x8F", c.name, err, c.stmt)
		}
		if n != len(raw) || !reflect.DeepEqual(p, c.want) {
			t.Errorf("%s: got %#v (n %d), want %#v", c.name, p, n, c.want)
		}
		p2, err2 := ReadPacket(bytes.NewReader(raw), opt)
		if !reflect.DeepEqual(p2, c.want) || !errors.As(err2, &e) || e.Statement != c.stmt {
			t.Errorf("%s: ReadPacket gave %#v, %v", c.name, p2, err2)
		}
	}
	// A structural fault after a bad filter still wins: no packet.
	raw := fixture{raw: "82 0A 00 05 | 00 02 61 23 | 01 | 00 01 23 | 07"}.bytes()
	if p, _, err := Decode(raw, Options{}); p != nil || err == nil {
		t.Errorf("reserved QoS bits after a bad filter: %#v, %v", p, err)
	}
}
