package broker

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/auth"
	"github.com/mqttfleet/mqttfleet/internal/seedcover"
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
	for _, s := range connFuzzSeeds(f) {
		f.Add(s.withConnect, s.data)
	}
	dir := f.TempDir()
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(denyACL), 0o600); err != nil {
		f.Fatal(err)
	}
	connect := connFuzzConnect(f)
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

// connFuzzSeed is one FuzzConn input: the stream, and whether the fuzzer
// writes connFuzzConnect before it.
type connFuzzSeed struct {
	withConnect bool
	data        []byte
}

// connFuzzConnect is the 3.1.1 CONNECT written before inputs that ask for it.
func connFuzzConnect(tb testing.TB) []byte {
	return encodeAll(tb, packet.V311, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: "fuzz",
		CleanSession: true, UsernameFlag: true, Username: "sub"})
}

func encodeAll(tb testing.TB, version byte, ps ...packet.Packet) []byte {
	tb.Helper()
	var buf []byte
	for _, p := range ps {
		var err error
		if buf, err = packet.Append(buf, p, version); err != nil {
			tb.Fatal(err)
		}
	}
	return buf
}

// connFuzzSeeds are where FuzzConn starts: 3.1.1 sessions and broken
// headers, and in MQTT 5.0 every packet type with properties (checked by
// TestConnFuzzSeedsCoverV5). A broker stops reading at the first packet it
// refuses, so the packets a client must not send (CONNACK, SUBACK,
// UNSUBACK, PINGRESP) and AUTH, which this broker refuses, each open a seed
// of their own after a CONNECT.
func connFuzzSeeds(tb testing.TB) []connFuzzSeed {
	enc := func(ps ...packet.Packet) []byte { return encodeAll(tb, packet.V311, ps...) }
	enc5 := func(ps ...packet.Packet) []byte { return encodeAll(tb, packet.V5, ps...) }
	seeds := []connFuzzSeed{
		{false, enc(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: "c", KeepAlive: 30,
			UsernameFlag: true, Username: "sub", Will: &packet.Will{Topic: "w", Payload: []byte("gone"), QoS: 1, Retain: true}})},
		{true, enc(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#", QoS: 2}, {Filter: "hidden/x", QoS: 1}}},
			&packet.Publish{Topic: "hidden/x", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("p")},
			&packet.Publish{Topic: "test/ok", QoS: 2, PacketID: 3, Payload: []byte("p")},
			&packet.Pubrel{PacketID: 3}, &packet.Pingreq{}, &packet.Unsubscribe{PacketID: 4, Filters: []string{"#"}}, &packet.Disconnect{})},
		{true, []byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 't'}},
		{false, []byte{0x10, 0xff, 0xff, 0xff, 0x7f}},
		{true, enc(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: "again"})},
	}

	// An MQTT 5.0 session, every packet with properties: a will with
	// properties, subscription options, the broker's own deliveries
	// acknowledged (it numbers them from 1: the QoS 1 message, then the
	// QoS 2 one), a topic alias set and then used, DISCONNECT with the will.
	u32 := func(v uint32) *uint32 { return &v }
	u16 := func(v uint16) *uint16 { return &v }
	u8 := func(v byte) *byte { return &v }
	user := func(k, v string) *packet.Properties {
		return &packet.Properties{User: []packet.UserProperty{{Key: k, Value: v}}}
	}
	reason := func(r string) *packet.Properties { return &packet.Properties{ReasonString: r, HasReasonString: true} }
	connect5 := func(id string) *packet.Connect {
		return &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: id, KeepAlive: 30, CleanSession: true,
			Props: user("device", id)}
	}
	seeds = append(seeds, connFuzzSeed{false, enc5(
		&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "", KeepAlive: 30,
			Props:        &packet.Properties{SessionExpiry: u32(60), ReceiveMaximum: u16(2), TopicAliasMaximum: u16(4), RequestProblemInfo: u8(1)},
			UsernameFlag: true, Username: "sub",
			Will: &packet.Will{Topic: "w", Payload: []byte("gone"), QoS: 1, Props: &packet.Properties{
				WillDelay: u32(1), MessageExpiry: u32(30), PayloadFormat: u8(1), User: []packet.UserProperty{{Key: "k", Value: "v"}}}}},
		&packet.Subscribe{PacketID: 1, Props: user("s", "1"), Subscriptions: []packet.Subscription{
			{Filter: "#", QoS: 2, RetainAsPublished: true, RetainHandling: 1},
			{Filter: "test/+", QoS: 1, NoLocal: true}}},
		&packet.Publish{Topic: "test/ok", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("p"),
			Props: &packet.Properties{MessageExpiry: u32(1), ContentType: "text/plain", HasContentType: true}},
		&packet.Puback{PacketID: 1, Props: reason("ok")},
		&packet.Publish{Topic: "test/ok", QoS: 2, PacketID: 3, Payload: []byte("p"),
			Props: &packet.Properties{TopicAlias: u16(1), ResponseTopic: "r/1", HasResponseTopic: true, CorrelationData: []byte{1}}},
		&packet.Pubrel{PacketID: 3, Props: reason("rel")},
		&packet.Pubrec{PacketID: 2, Props: reason("rec")},
		&packet.Pubcomp{PacketID: 2, Props: reason("comp")},
		&packet.Publish{QoS: 0, Payload: []byte("via alias"), Props: &packet.Properties{TopicAlias: u16(1)}},
		&packet.Pingreq{},
		&packet.Unsubscribe{PacketID: 4, Filters: []string{"#", "none"}, Props: user("u", "1")},
		&packet.Disconnect{ReasonCode: 0x04, Props: &packet.Properties{SessionExpiry: u32(0), ReasonString: "bye", HasReasonString: true}})})
	// A 5.0 client that takes the broker's Topic Aliases (two, then full
	// topics), with a Maximum Packet Size a first alias would overflow.
	seeds = append(seeds, connFuzzSeed{false, enc5(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "alias", CleanSession: true,
		Props: &packet.Properties{TopicAliasMaximum: u16(2), MaximumPacketSize: u32(26)}},
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#", QoS: 1}}},
		&packet.Publish{Topic: "test/one", Payload: []byte("p")}, &packet.Publish{Topic: "test/one", QoS: 1, PacketID: 2, Payload: []byte("p")},
		&packet.Publish{Topic: "test/two", Payload: []byte("0123456789")}, &packet.Publish{Topic: "test/three", Payload: []byte("p")},
		&packet.Puback{PacketID: 1}, &packet.Pingreq{})})
	// Shared subscriptions and Subscription Identifiers: a member of a
	// group, an overlapping subscription with an identifier, a message to
	// both, a bad ShareName.
	seeds = append(seeds, connFuzzSeed{false, enc5(connect5("member"),
		&packet.Subscribe{PacketID: 1, Props: &packet.Properties{SubscriptionIDs: []uint32{7}}, Subscriptions: []packet.Subscription{
			{Filter: "$share/g/test/#", QoS: 2}, {Filter: "test/+", QoS: 1}}},
		&packet.Subscribe{PacketID: 2, Subscriptions: []packet.Subscription{{Filter: "$share/a+b/test/x"}}},
		&packet.Publish{Topic: "test/s", QoS: 1, PacketID: 3, Payload: []byte("p")},
		&packet.Puback{PacketID: 1}, &packet.Pubrec{PacketID: 2}, &packet.Pubcomp{PacketID: 2},
		&packet.Unsubscribe{PacketID: 4, Filters: []string{"$share/g/test/#"}}, &packet.Disconnect{})})
	// What the broker refuses, each after its own CONNECT.
	for _, p := range []packet.Packet{
		&packet.Auth{ReasonCode: 0x19, Props: &packet.Properties{AuthMethod: "SCRAM-SHA-1", HasAuthMethod: true, AuthData: []byte("n,,n=u")}},
		&packet.Connack{Props: &packet.Properties{ReceiveMaximum: u16(1), ReasonString: "x", HasReasonString: true}},
		&packet.Suback{PacketID: 1, ReturnCodes: []byte{0x00, 0x80}, Props: reason("x")},
		&packet.Unsuback{PacketID: 1, ReasonCodes: []byte{0x11}, Props: reason("x")},
		&packet.Pingresp{},
	} {
		seeds = append(seeds, connFuzzSeed{false, enc5(connect5("refused-"+p.Type().String()), p)})
	}
	return seeds
}

// FuzzConn starts from every MQTT 5.0 packet type, with properties where the
// type has them, as the broker reads its seeds: each stream from its first
// byte (after connFuzzConnect where asked), 5.0 from a level-5 CONNECT on.
func TestConnFuzzSeedsCoverV5(t *testing.T) {
	var streams [][]byte
	for _, s := range connFuzzSeeds(t) {
		data := s.data
		if s.withConnect {
			data = append(connFuzzConnect(t), data...)
		}
		streams = append(streams, data)
	}
	if m := seedcover.Missing(packet.V311, streams...); m != nil {
		t.Errorf("no FuzzConn seed holds these 5.0 packets with properties: %v", m)
	}
}
