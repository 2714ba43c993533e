package broker

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/auth"
	"github.com/mqttfleet/mqttfleet/packet"
)

// FuzzConn feeds arbitrary byte streams to a live broker connection: a
// fresh broker per input (small limits and the deny ACL, so those paths run
// too), the stream written on an in-memory pipe after, if connect is set, a
// valid CONNECT. After each input: no panic (the fuzzer reports one), the
// broker ends the connection once the peer closes, Close returns, and no
// goroutine is left; every 256 inputs the live heap is checked.
//
// Run it long with: go test -run '^$' -fuzz '^FuzzConn$' -fuzztime 10m ./broker
func FuzzConn(f *testing.F) {
	encV := func(version byte, ps ...packet.Packet) []byte {
		var buf bytes.Buffer
		for _, p := range ps {
			if err := packet.Encode(&buf, p, version); err != nil {
				f.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	enc := func(ps ...packet.Packet) []byte { return encV(packet.V311, ps...) }
	f.Add(false, enc(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: "c", KeepAlive: 30,
		UsernameFlag: true, Username: "sub", Will: &packet.Will{Topic: "w", Payload: []byte("gone"), QoS: 1, Retain: true}}))
	f.Add(true, enc(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#", QoS: 2}, {Filter: "hidden/x", QoS: 1}}},
		&packet.Publish{Topic: "hidden/x", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("p")},
		&packet.Publish{Topic: "test/ok", QoS: 2, PacketID: 3, Payload: []byte("p")},
		&packet.Pubrel{PacketID: 3}, &packet.Pingreq{}, &packet.Unsubscribe{PacketID: 4, Filters: []string{"#"}}, &packet.Disconnect{}))
	f.Add(true, []byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 't'})
	f.Add(false, []byte{0x10, 0xff, 0xff, 0xff, 0x7f})
	f.Add(true, enc(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: "again"}))
	// An MQTT 5.0 session: properties, subscription options, reason codes,
	// a topic alias (refused), DISCONNECT with the will.
	u32 := func(v uint32) *uint32 { return &v }
	u16 := func(v uint16) *uint16 { return &v }
	f.Add(false, encV(packet.V5, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "", KeepAlive: 30,
		Props:        &packet.Properties{SessionExpiry: u32(60), ReceiveMaximum: u16(2)},
		UsernameFlag: true, Username: "sub", Will: &packet.Will{Topic: "w", Payload: []byte("gone"), QoS: 1, Props: &packet.Properties{}}},
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 1}}},
		&packet.Publish{Topic: "test/ok", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("p"),
			Props: &packet.Properties{MessageExpiry: u32(1), ContentType: "text/plain", HasContentType: true}},
		&packet.Publish{Topic: "test/ok", QoS: 2, PacketID: 3, Payload: []byte("p"), Props: &packet.Properties{TopicAlias: u16(1)}},
		&packet.Unsubscribe{PacketID: 4, Filters: []string{"#", "none"}}, &packet.Disconnect{ReasonCode: 0x04}))
	// A 5.0 client that takes the broker's Topic Aliases (two, then full
	// topics), with a Maximum Packet Size a first alias would overflow.
	f.Add(false, encV(packet.V5, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "alias", CleanSession: true,
		Props: &packet.Properties{TopicAliasMaximum: u16(2), MaximumPacketSize: u32(26)}},
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#", QoS: 1}}},
		&packet.Publish{Topic: "test/one", Payload: []byte("p")}, &packet.Publish{Topic: "test/one", QoS: 1, PacketID: 2, Payload: []byte("p")},
		&packet.Publish{Topic: "test/two", Payload: []byte("0123456789")}, &packet.Publish{Topic: "test/three", Payload: []byte("p")},
		&packet.Puback{PacketID: 1}, &packet.Pingreq{}))

	dir := f.TempDir()
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(denyACL), 0o600); err != nil {
		f.Fatal(err)
	}
	connect := enc(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: "fuzz", CleanSession: true,
		UsernameFlag: true, Username: "sub"})
	var runs int
	var heapBase uint64
	f.Fuzz(func(t *testing.T, withConnect bool, data []byte) {
		before := runtime.NumGoroutine()
		cfg := DefaultConfig()
		cfg.Listeners = nil
		cfg.Auth = auth.Config{AllowAnonymous: true, ACLFile: acl}
		cfg.ConnectTimeout = 2 * time.Second
		cfg.MaxSubscriptions, cfg.MaxTopicLevels, cfg.MaxRetainedMessages, cfg.MaxQueuedBytes = 4, 8, 4, 1024
		cfg.MaxInflight, cfg.MaxQueued, cfg.OutboundBuffer = 2, 4, 8
		b, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cli, srv := net.Pipe()
		b.ServeConn(srv)
		drained := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, cli); close(drained) }()
		_ = cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if withConnect {
			data = append(append([]byte(nil), connect...), data...)
		}
		_, _ = cli.Write(data) // fails once the broker has closed the connection: fine
		_ = cli.Close()
		<-drained
		deadline := time.Now().Add(5 * time.Second)
		for b.Stats().Connections != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the broker still holds the connection 5 s after the peer closed it")
			}
			time.Sleep(time.Millisecond)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Fatalf("%d goroutines after the input, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(time.Millisecond)
		}
		if runs++; runs%256 == 1 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if heapBase == 0 {
				heapBase = ms.HeapAlloc
			} else if ms.HeapAlloc > heapBase+64<<20 {
				t.Fatalf("live heap %d MB after %d inputs, %d MB after the first", ms.HeapAlloc>>20, runs, heapBase>>20)
			}
		}
	})
}
