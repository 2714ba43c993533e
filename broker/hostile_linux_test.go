package broker

import (
	"bytes"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// raiseOpenFiles lifts the soft open-files limit to the hard one: the test
// holds both ends of every connection in this process.
func raiseOpenFiles(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
	}
	if lim.Cur < need {
		t.Skipf("open-files limit %d is below the %d this test needs", lim.Cur, need)
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestAnnouncedSizeReservesNothing is the acceptance test: 1,000
// sockets each announce a 256 MB packet (after a CONNECT) or a CONNECT of
// the largest legal size, send 1 KB of it and hold (one more announcing a
// 256 MB CONNECT is closed at once); the broker's heap
// must follow the bytes sent (about 1 MB in all), not the sizes announced
// (256 GB). Connections are opened in batches and the heap checked after
// each, so a broker that reserves what it is told fails at the first batch
// instead of exhausting the machine.
func TestAnnouncedSizeReservesNothing(t *testing.T) {
	const (
		conns    = 1000
		batch    = 100
		bigConns = 10 // of each batch: an announced CONNECT of the largest legal size
		body     = 1 << 10
		maxGrow  = 64 << 20
	)
	raiseOpenFiles(t, 2*conns+200)
	tb := startBroker(t, func(c *Config) { c.ConnectTimeout = time.Minute })

	var connect bytes.Buffer
	if err := packet.Encode(&connect, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanSession: true}, packet.V311); err != nil {
		t.Fatal(err)
	}
	filler := bytes.Repeat([]byte{'x'}, body)
	// A PUBLISH announcing 256 MB - 1 (the protocol maximum): topic "t", then the filler.
	hugePublish := append([]byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 't'}, filler...)
	// A CONNECT of the largest legal size (4-byte fixed header): admitted to be read.
	bigConnect := append(packet.AppendRemainingLength([]byte{0x10}, DefaultMaxConnectSize-4), filler...)

	base := liveHeap()
	// One more announces a CONNECT of the protocol maximum: refused before its body.
	huge := tb.dial(t)
	if _, err := huge.Write(append([]byte{0x10, 0xff, 0xff, 0xff, 0x7f}, filler...)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if e := tb.wait(t, events.Is(events.Disconnect)); e.Cause != events.CauseTooLarge {
		t.Fatalf("huge CONNECT: disconnect %+v, want cause too_large", e)
	}
	var sent uint64 = 5
	for i := 0; i < conns; i += batch {
		for j := 0; j < batch; j++ {
			nc := tb.dial(t)
			msg := append(append([]byte(nil), connect.Bytes()...), hugePublish...)
			if j < bigConns {
				msg = bigConnect
			}
			if _, err := nc.Write(msg); err != nil {
				t.Fatalf("write: %v", err)
			}
			sent += uint64(len(msg))
		}
		waitBytesReceived(t, tb, sent)
		if grown := int64(liveHeap()) - int64(base); grown >= maxGrow {
			t.Fatalf("after %d connections that sent %d bytes in all, the heap grew by %d MB (limit %d MB)",
				i+batch, sent, grown>>20, maxGrow>>20)
		} else if i+batch == conns {
			t.Logf("%d connections, %d bytes sent: heap grew by %.1f MB", conns, sent, float64(grown)/(1<<20))
		}
	}
	if n := tb.Stats().Connections; n != conns {
		t.Fatalf("broker holds %d connections, want %d", n, conns)
	}
}

// waitBytesReceived polls until the broker has read n bytes from its sockets.
func waitBytesReceived(t *testing.T, tb *testBroker, n uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for tb.Stats().BytesReceived < n {
		if time.Now().After(deadline) {
			t.Fatalf("broker read %d bytes, want %d", tb.Stats().BytesReceived, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConnectTooLargeCloses: before CONNECT is accepted, a first packet
// over max_connect_size closes the connection with a violation, before its
// body arrives, whatever max_packet_size allows.
func TestConnectTooLargeCloses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		header []byte
	}{
		{"protocol maximum", nil, []byte{0x10, 0xff, 0xff, 0xff, 0x7f}},
		{"one over the default", nil, packet.AppendRemainingLength([]byte{0x10}, DefaultMaxConnectSize-4+1)},
		{"configured", func(c *Config) { c.MaxConnectSize = 100 }, []byte{0x10, 100}},
		{"max_packet_size smaller", func(c *Config) { c.MaxPacketSize = 50 }, []byte{0x10, 60}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := startBroker(t, tc.edit)
			nc := tb.dial(t)
			if _, err := nc.Write(tc.header); err != nil {
				t.Fatal(err)
			}
			e := tb.wait(t, events.Is(events.Disconnect))
			if e.Cause != events.CauseTooLarge {
				t.Fatalf("disconnect cause %q (%s), want %q", e.Cause, e.Detail, events.CauseTooLarge)
			}
			if tb.rec.Count(events.Is(events.Violation)) != 1 {
				t.Fatalf("want one violation event, got %v", tb.rec.Filter(events.Is(events.Violation)))
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Fatalf("connection still open after the refusal: read %d, %v", n, err)
			}
		})
	}
}

// TestLargestLegalConnectAccepted: the default max_connect_size admits a
// CONNECT with every field at its maximum length.
func TestLargestLegalConnectAccepted(t *testing.T) {
	tb := startBroker(t, nil)
	long := string(bytes.Repeat([]byte{'a'}, 65535))
	cp := &packet.Connect{ProtocolName: "MQIsdp", ProtocolLevel: packet.V31, CleanSession: true, ClientID: long,
		Will: &packet.Will{Topic: long, Payload: bytes.Repeat([]byte{'p'}, 65535)}, UsernameFlag: true, Username: long, PasswordFlag: true, Password: []byte(long)}
	var buf bytes.Buffer
	if err := packet.Encode(&buf, cp, packet.V31); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != DefaultMaxConnectSize {
		t.Fatalf("largest CONNECT is %d bytes, DefaultMaxConnectSize %d", buf.Len(), DefaultMaxConnectSize)
	}
	nc := tb.dial(t)
	if _, err := nc.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	e := tb.wait(t, func(e events.Event) bool { return e.Kind == events.ConnAck || e.Kind == events.Disconnect })
	if e.Kind != events.ConnAck {
		t.Fatalf("largest legal CONNECT: %s %s %s", e.Kind, e.Cause, e.Detail)
	}
}
