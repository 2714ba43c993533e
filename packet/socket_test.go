package packet

import (
	"net"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestReaderOverTCP sends every valid fixture of each version with Encode
// over a real socket on 127.0.0.1 and reads them back with a Reader,
// switching the Reader's version after CONNECT as a server does.
func TestReaderOverTCP(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, v := range []byte{V311, V5} {
		var want []Packet
		for _, f := range allFixtures() {
			if f.want != nil && f.version == v && f.max == 0 {
				if _, ok := f.want.(*Connect); !ok {
					want = append(want, f.want)
				}
			}
		}
		connect := &Connect{ProtocolName: "MQTT", ProtocolLevel: v, CleanSession: true, ClientID: "c"}
		want = append([]Packet{connect}, want...)

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				sent <- err
				return
			}
			defer c.Close()
			for _, p := range want {
				if err := Encode(c, p, v); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		conn, err := ln.Accept()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := NewReader(conn, Options{MaxPacketSize: 1 << 16})
		for i, w := range want {
			p, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("v%d packet %d: %v", v, i, err)
			}
			if i == 0 {
				r.SetVersion(p.(*Connect).ProtocolLevel)
			}
			if !reflect.DeepEqual(p, w) {
				t.Fatalf("v%d packet %d: got %#v want %#v", v, i, p, w)
			}
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
}
