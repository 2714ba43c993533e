package client

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestConnectSendsOptions checks that every option reaches the CONNECT.
func TestConnectSendsOptions(t *testing.T) {
	will := &packet.Will{Topic: "w/t", Payload: []byte("bye"), QoS: 1, Retain: true}
	opts := Options{ClientID: "opt-1", CleanSession: true, KeepAlive: 1500 * time.Millisecond,
		Username: "u", Password: []byte("p"), Will: will}
	s := newFakeServer(t)
	done := make(chan error, 1)
	go func() {
		c, _, err := Dial(ctxT(t, 5*time.Second), "tcp://"+s.addr(), opts)
		if err == nil {
			err = c.Close()
		}
		done <- err
	}()
	srv, cp := s.accept(t)
	if err := srv.WritePacket(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("connect: %v", err)
	}
	if cp.ClientID != "opt-1" || !cp.CleanSession || cp.KeepAlive != 2 || cp.ProtocolLevel != packet.V311 || cp.ProtocolName != "MQTT" {
		t.Errorf("CONNECT = %+v; want id opt-1, clean, keepalive 2 (1.5s rounded up), level 4 MQTT", cp)
	}
	if !cp.UsernameFlag || cp.Username != "u" || !cp.PasswordFlag || string(cp.Password) != "p" {
		t.Errorf("credentials = %v %q %v %q; want u/p with flags", cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password)
	}
	if cp.Will == nil || cp.Will.Topic != "w/t" || string(cp.Will.Payload) != "bye" || cp.Will.QoS != 1 || !cp.Will.Retain {
		t.Errorf("will = %+v; want w/t bye QoS 1 retained", cp.Will)
	}
	// Close drops the link without DISCONNECT: the server sees only the close.
	if err := srv.ExpectClosed(5 * time.Second); err != nil {
		t.Errorf("after Close: %v", err)
	}
}

func TestConnackRefused(t *testing.T) {
	rec := events.NewRecorder()
	s := newFakeServer(t)
	type result struct {
		ack *packet.Connack
		err error
	}
	res := make(chan result, 1)
	go func() {
		_, ack, err := Dial(ctxT(t, 5*time.Second), s.addr(), Options{ClientID: "refused", Events: rec})
		res <- result{ack, err}
	}()
	srv, _ := s.accept(t)
	if err := srv.WritePacket(&packet.Connack{ReturnCode: packet.RefusedNotAuthorized}); err != nil {
		t.Fatal(err)
	}
	r := <-res
	var ce *ConnackError
	if !errors.As(r.err, &ce) || ce.Code != packet.RefusedNotAuthorized || r.ack == nil || r.ack.ReturnCode != 5 {
		t.Fatalf("Dial = %+v, %v; want CONNACK 5 and *ConnackError{5}", r.ack, r.err)
	}
	if err := srv.ExpectClosed(5 * time.Second); err != nil {
		t.Errorf("refused client did not close the link: %v", err)
	}
	if n := rec.Count(events.And(events.Is(events.ConnAck), func(e events.Event) bool { return e.Code == 5 && e.Latency > 0 })); n != 1 {
		t.Errorf("ConnAck events with code 5 and a latency: %d, want 1", n)
	}
}

// TestPacketIDsOnTheWire publishes across the 65535 -> 1 wrap while one
// identifier stays in flight, and checks the ids the server sees.
func TestPacketIDsOnTheWire(t *testing.T) {
	c, srv := connectFake(t, Options{ClientID: "ids"})
	c.mu.Lock()
	c.ids.last = 65532
	c.mu.Unlock()
	ctx := ctxT(t, 10*time.Second)

	held := c.PublishAsync(ctx, "t", 1, false, []byte("held")) // 65533, never acked
	if got := expect[*packet.Publish](t, srv).PacketID; got != 65533 {
		t.Fatalf("first id = %d, want 65533", got)
	}
	var got []uint16
	for i := range 4 {
		tok := c.PublishAsync(ctx, "t", 1, false, []byte{byte(i)})
		p := expect[*packet.Publish](t, srv)
		got = append(got, p.PacketID)
		if err := srv.WritePacket(&packet.Puback{PacketID: p.PacketID}); err != nil {
			t.Fatal(err)
		}
		if err := tok.Wait(ctx); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	want := []uint16{65534, 65535, 1, 2}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("ids = %v, want %v", got, want)
	}
	// Rewind the allocator onto the held id: it must be skipped [MQTT-2.3.1-2].
	c.mu.Lock()
	c.ids.last = 65532
	c.mu.Unlock()
	tok := c.PublishAsync(ctx, "t", 1, false, nil)
	if p := expect[*packet.Publish](t, srv); p.PacketID != 65534 {
		t.Fatalf("id after rewind = %d, want 65534 (65533 is in flight)", p.PacketID)
	}
	// Acking the held one frees it: a later rewind may reuse it [MQTT-2.3.1-3].
	if err := srv.WritePacket(&packet.Puback{PacketID: 65533}); err != nil {
		t.Fatal(err)
	}
	if err := held.Wait(ctx); err != nil {
		t.Fatalf("held publish: %v", err)
	}
	if err := srv.WritePacket(&packet.Puback{PacketID: 65534}); err != nil {
		t.Fatal(err)
	}
	if err := tok.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.ids.last = 65532
	n := len(c.ids.inflight)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d ids still in flight after all acks", n)
	}
	c.PublishAsync(ctx, "t", 1, false, nil)
	if p := expect[*packet.Publish](t, srv); p.PacketID != 65533 {
		t.Fatalf("id after freeing = %d, want 65533", p.PacketID)
	}
}

func TestInflightWindowBlocks(t *testing.T) {
	c, srv := connectFake(t, Options{ClientID: "window", MaxInflight: 2})
	ctx := ctxT(t, 10*time.Second)
	t1 := c.PublishAsync(ctx, "t", 1, false, nil)
	t2 := c.PublishAsync(ctx, "t", 2, false, nil)
	p1 := expect[*packet.Publish](t, srv)
	expect[*packet.Publish](t, srv)

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	t3 := c.PublishAsync(short, "t", 1, false, nil)
	if err := t3.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third publish with a full window: err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("third publish gave up after %v, before its context ended", el)
	}

	// Publish "4" starts waiting for a slot. A second short publish made
	// after it also runs out of time, so the window was still full all along
	// and "4" has had those 200 ms to go out if it did not wait; it has not
	// returned, so it is blocked on the window, before the PUBACK exists.
	got := make(chan *Token, 1)
	started := make(chan struct{})
	go func() { close(started); got <- c.PublishAsync(ctx, "t", 1, false, []byte("4")) }()
	<-started
	short2, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if err := c.PublishAsync(short2, "t", 1, false, nil).Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish with the window still full: err = %v, want DeadlineExceeded", err)
	}
	select {
	case t4 := <-got:
		t.Fatalf("publish 4 returned (%v) while the window was full", t4.Err())
	default:
	}

	// One ack opens one slot: the waiting publish goes through.
	if err := srv.WritePacket(&packet.Puback{PacketID: p1.PacketID}); err != nil {
		t.Fatal(err)
	}
	if err := t1.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	p4 := expect[*packet.Publish](t, srv)
	if string(p4.Payload) != "4" {
		t.Fatalf("got payload %q after the window opened, want 4", p4.Payload)
	}
	t4 := <-got
	select {
	case <-t2.Done():
		t.Fatalf("QoS 2 publish finished without PUBREC/PUBCOMP")
	case <-t4.Done():
		t.Fatalf("publish finished without PUBACK: %v", t4.Err())
	default:
	}
}

// TestQoS2Outgoing walks the PUBREC -> PUBREL -> PUBCOMP flow [MQTT-4.3.3-1].
func TestQoS2Outgoing(t *testing.T) {
	rec := events.NewRecorder()
	c, srv := connectFake(t, Options{ClientID: "q2out", Events: rec})
	ctx := ctxT(t, 10*time.Second)
	tok := c.PublishAsync(ctx, "a/b", 2, true, []byte("x"))
	p := expect[*packet.Publish](t, srv)
	if p.QoS != 2 || p.Dup || !p.Retain || p.PacketID == 0 || p.Topic != "a/b" {
		t.Fatalf("PUBLISH = %+v", p)
	}
	if err := srv.WritePacket(&packet.Pubrec{PacketID: p.PacketID}); err != nil {
		t.Fatal(err)
	}
	if rel := expect[*packet.Pubrel](t, srv); rel.PacketID != p.PacketID {
		t.Fatalf("PUBREL id %d, want %d", rel.PacketID, p.PacketID)
	}
	select {
	case <-tok.Done():
		t.Fatalf("publish finished before PUBCOMP: %v", tok.Err())
	default:
	}
	if err := srv.WritePacket(&packet.Pubcomp{PacketID: p.PacketID}); err != nil {
		t.Fatal(err)
	}
	if err := tok.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := rec.Wait(ctx, events.Is(events.PublishAcked))
	if err != nil || e.QoS != 2 || e.PacketID != p.PacketID || e.Latency <= 0 || e.Source != events.SourceClient {
		t.Fatalf("PublishAcked event = %+v, %v", e, err)
	}
}

// TestQoS2IncomingExactlyOnce sends a QoS 2 PUBLISH, its DUP repeat before
// PUBREL, then PUBREL, then the same id again as a new message
// [MQTT-4.3.3-2]: two deliveries in all, one per message.
func TestQoS2IncomingExactlyOnce(t *testing.T) {
	c, srv := connectFake(t, Options{ClientID: "q2in"})
	steps := []struct {
		send       packet.Packet
		want       packet.Type
		deliveries int // messages delivered once the answer is read
	}{
		{&packet.Publish{QoS: 2, PacketID: 7, Topic: "t", Payload: []byte("one")}, packet.PUBREC, 1},
		{&packet.Publish{QoS: 2, PacketID: 7, Topic: "t", Payload: []byte("one"), Dup: true}, packet.PUBREC, 1},
		{&packet.Pubrel{PacketID: 7}, packet.PUBCOMP, 1},
		{&packet.Pubrel{PacketID: 7}, packet.PUBCOMP, 1}, // a repeated PUBREL is answered, delivers nothing
		{&packet.Publish{QoS: 2, PacketID: 7, Topic: "t", Payload: []byte("two")}, packet.PUBREC, 2},
		{&packet.Publish{QoS: 1, PacketID: 8, Topic: "t", Payload: []byte("q1")}, packet.PUBACK, 3},
	}
	for i, s := range steps {
		if err := srv.WritePacket(s.send); err != nil {
			t.Fatal(err)
		}
		p, err := srv.ReadPacket(5 * time.Second)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if p.Type() != s.want {
			t.Fatalf("step %d: got %s, want %s", i, p.Type(), s.want)
		}
		// The client delivers before it answers, so the count is settled now.
		if n := len(c.Messages()); n != s.deliveries {
			t.Fatalf("step %d: %d deliveries, want %d", i, n, s.deliveries)
		}
	}
	for _, want := range []string{"one", "two", "q1"} {
		if m := <-c.Messages(); string(m.Payload) != want {
			t.Fatalf("delivered %q, want %q", m.Payload, want)
		}
	}
}

func TestPingTimeout(t *testing.T) {
	rec := events.NewRecorder()
	const keepAlive, pingTimeout = time.Second, time.Second
	lost := make(chan error, 1)
	// beforeDial precedes the CONNECT write the keepalive counts from, and
	// connected follows it: the link may not end before beforeDial +
	// keepAlive + pingTimeout (PINGREQ after a keepalive of silence, then
	// the full ping timeout), and should end soon after connected + the same.
	beforeDial := time.Now()
	c, srv := connectFake(t, Options{ClientID: "silent", KeepAlive: keepAlive, PingTimeout: pingTimeout,
		Events: rec, OnConnectionLost: func(err error) { lost <- err }})
	connected := time.Now()
	// The server reads the PINGREQ and never answers.
	expect[*packet.Pingreq](t, srv)
	select {
	case <-c.Done():
	case <-time.After(keepAlive + pingTimeout + 3*time.Second):
		t.Fatalf("link still up %v after connecting with an unanswered PINGREQ", time.Since(connected))
	}
	ended := time.Now()
	if el := ended.Sub(beforeDial); el < keepAlive+pingTimeout {
		t.Errorf("link declared dead %v after dialing, before keepalive + ping timeout %v", el, keepAlive+pingTimeout)
	}
	if el := ended.Sub(connected); el > keepAlive+pingTimeout+1500*time.Millisecond {
		t.Errorf("link declared dead %v after connecting, want about %v", el, keepAlive+pingTimeout)
	}
	if !errors.Is(c.Err(), ErrPingTimeout) {
		t.Errorf("Err() = %v, want ErrPingTimeout", c.Err())
	}
	if err := <-lost; !errors.Is(err, ErrPingTimeout) {
		t.Errorf("OnConnectionLost(%v), want ErrPingTimeout", err)
	}
	if _, err := rec.WaitFor(time.Second, events.And(events.Is(events.KeepaliveExpired), events.From(events.SourceClient))); err != nil {
		t.Errorf("no KeepaliveExpired event: %v", err)
	}
	if e, err := rec.WaitFor(time.Second, events.Is(events.Disconnect)); err != nil || e.Cause != events.CauseKeepalive {
		t.Errorf("Disconnect event = %+v, %v; want cause keepalive", e, err)
	}
	if err := srv.ExpectClosed(5 * time.Second); err != nil {
		t.Errorf("server side: %v", err)
	}
}

// TestPingAnswered: an idle client pings, the answer keeps it up, and the
// round trip is reported.
func TestPingAnswered(t *testing.T) {
	rec := events.NewRecorder()
	c, srv := connectFake(t, Options{ClientID: "pinger", KeepAlive: time.Second, Events: rec})
	for i := range 2 {
		expect[*packet.Pingreq](t, srv)
		if err := srv.WritePacket(&packet.Pingresp{}); err != nil {
			t.Fatal(err)
		}
		if _, err := rec.WaitN(ctxT(t, 5*time.Second), events.Is(events.Ping), i+1); err != nil {
			t.Fatal(err)
		}
	}
	if c.Err() != nil {
		t.Fatalf("link ended: %v", c.Err())
	}
	for _, e := range rec.Filter(events.Is(events.Ping)) {
		if e.Latency <= 0 || e.ClientID != "pinger" {
			t.Errorf("Ping event %+v: want a round-trip latency and the client ID", e)
		}
	}
}

func TestDisconnectSendsDisconnect(t *testing.T) {
	rec := events.NewRecorder()
	c, srv := connectFake(t, Options{ClientID: "bye", Events: rec})
	done := make(chan error, 1)
	go func() { done <- c.Disconnect(ctxT(t, 5*time.Second)) }()
	expect[*packet.Disconnect](t, srv)
	if err := srv.ExpectClosed(5 * time.Second); err != nil {
		t.Errorf("after DISCONNECT: %v", err)
	}
	_ = srv.Close()
	if err := <-done; err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if !errors.Is(c.Err(), ErrDisconnected) {
		t.Errorf("Err() = %v, want ErrDisconnected", c.Err())
	}
	if e, err := rec.WaitFor(time.Second, events.Is(events.Disconnect)); err != nil || e.Cause != events.CauseClientDisconnect {
		t.Errorf("Disconnect event = %+v, %v; want cause client_disconnect", e, err)
	}
	if err := c.Publish(ctxT(t, time.Second), "t", 0, false, nil); err == nil {
		t.Errorf("publish after Disconnect succeeded")
	}
}

func TestPeerDropFailsInflight(t *testing.T) {
	rec := events.NewRecorder()
	c, srv := connectFake(t, Options{ClientID: "dropped", Events: rec})
	tok := c.PublishAsync(ctxT(t, 5*time.Second), "t", 1, false, nil)
	expect[*packet.Publish](t, srv)
	_ = srv.Close()
	if err := tok.Wait(ctxT(t, 5*time.Second)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("in-flight publish after the peer dropped: %v, want a connection error", err)
	}
	<-c.Done()
	if e, err := rec.WaitFor(time.Second, events.Is(events.Disconnect)); err != nil || e.Cause != events.CauseIOError {
		t.Errorf("Disconnect event = %+v, %v; want cause io_error", e, err)
	}
	if _, ok := <-c.Messages(); ok {
		t.Errorf("Messages not closed after the link ended")
	}
}

func TestRawReadTimeoutAndExpectClosed(t *testing.T) {
	tests := []struct {
		name    string
		peer    func(r *Raw) // what the server side does
		wantErr bool
	}{
		{name: "close", peer: func(r *Raw) { _ = r.Close() }},
		{name: "packet then close", peer: func(r *Raw) { _ = r.WritePacket(&packet.Pingresp{}); _ = r.Close() }, wantErr: true},
		{name: "stays open", peer: func(*Raw) {}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			conn, err := DialConn(ctxT(t, 5*time.Second), s.addr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			r := NewRaw(conn, packet.V311)
			defer r.Close()
			peer := NewRaw(<-s.conns, packet.V311)
			defer peer.Close()

			if _, err := r.ReadPacket(50 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("ReadPacket on a silent link: %v, want os.ErrDeadlineExceeded", err)
			}
			tt.peer(peer)
			err = r.ExpectClosed(300 * time.Millisecond)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ExpectClosed = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// TestPingTimeoutWithBlockedWrite: the server stops reading, so a large
// publish blocks in Write and the PINGREQ cannot even be sent. The ping
// timeout must still end the link, and so unblock the publisher.
func TestPingTimeoutWithBlockedWrite(t *testing.T) {
	const keepAlive, pingTimeout = time.Second, time.Second
	start := time.Now()
	c, _ := connectFake(t, Options{ClientID: "stuck", KeepAlive: keepAlive, PingTimeout: pingTimeout})
	pubErr := make(chan error, 1)
	go func() {
		// Far more than loopback socket buffers hold.
		pubErr <- c.Publish(context.Background(), "big", 0, false, make([]byte, 64<<20))
	}()
	select {
	case err := <-pubErr:
		if err == nil {
			t.Fatalf("64 MiB publish to a server that does not read succeeded")
		}
	case <-time.After(keepAlive + pingTimeout + 3*time.Second):
		t.Fatalf("publish still blocked %v after connecting", time.Since(start))
	}
	<-c.Done()
	// Wider margin than TestPingTimeout: zeroing and writing 64 MiB competes
	// for the CPU (seen 2.8 s under -race).
	if el := time.Since(start); el > keepAlive+pingTimeout+2500*time.Millisecond {
		t.Errorf("link declared dead after %v, want about %v", el, keepAlive+pingTimeout)
	}
	if !errors.Is(c.Err(), ErrPingTimeout) {
		t.Errorf("Err() = %v, want ErrPingTimeout", c.Err())
	}
}

// TestPublishContextCutsBlockedWrite: a publish whose context ends while its
// write is stuck returns the context's error and ends the link, since the
// stream holds a partial packet.
func TestPublishContextCutsBlockedWrite(t *testing.T) {
	c, _ := connectFake(t, Options{ClientID: "cut"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := c.Publish(ctx, "big", 1, false, make([]byte, 64<<20))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want DeadlineExceeded", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("link still up after a cut write")
	}
}

// TestReaderKeepsReadingWhileWriteBlocked: the client's write is stuck
// (a publish bigger than the socket buffers, the server not reading) while
// the server writes QoS 1 messages that need PUBACKs. The reader must keep
// reading and queue the acks; otherwise both sides wait on full buffers for
// ever. Then the server reads: the publish, then the PUBACKs in arrival
// order [MQTT-4.6.0-2].
func TestReaderKeepsReadingWhileWriteBlocked(t *testing.T) {
	c, srv := connectFake(t, Options{ClientID: "nodeadlock", MessageBuffer: 100})
	const big = 32 << 20
	pubErr := make(chan error, 1)
	go func() { pubErr <- c.Publish(context.Background(), "up", 0, false, make([]byte, big)) }()
	// Wait until the publish is stuck in Write: the slot stays taken.
	deadline := time.Now().Add(5 * time.Second)
	for len(c.wsem) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("publish never took the write slot")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	const n = 64
	payload := make([]byte, 256<<10) // 64 x 256 KiB = 16 MiB: more than loopback buffers hold
	wrote := make(chan error, 1)
	go func() {
		for i := range n {
			if err := srv.WritePacket(&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: "down", Payload: payload}); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("server could not write %d messages: the client stopped reading", n)
	}
	p, err := srv.ReadPacket(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := p.(*packet.Publish); !ok || len(pub.Payload) != big {
		t.Fatalf("first packet from the client: %s, want the big PUBLISH", p.Type())
	}
	if err := <-pubErr; err != nil {
		t.Fatalf("publish: %v", err)
	}
	for i := range n {
		if ack := expect[*packet.Puback](t, srv); ack.PacketID != uint16(i+1) {
			t.Fatalf("PUBACK %d has id %d, want %d", i, ack.PacketID, i+1)
		}
	}
	if got := len(c.Messages()); got != n {
		t.Fatalf("%d messages delivered, want %d", got, n)
	}
}

// TestMalformedFromBroker: a malformed packet from the broker ends the link
// as a violation naming the statement.
func TestMalformedFromBroker(t *testing.T) {
	rec := events.NewRecorder()
	c, srv := connectFake(t, Options{ClientID: "malformed", Events: rec})
	// QoS 1 PUBLISH with packet identifier 0 [MQTT-2.3.1-1].
	if err := srv.WriteBytes([]byte{0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00}); err != nil {
		t.Fatal(err)
	}
	e, err := rec.WaitFor(5*time.Second, events.Is(events.Disconnect))
	if err != nil || e.Cause != events.CauseViolation || e.Statement == "" {
		t.Fatalf("Disconnect event = %+v, %v; want cause violation with a statement", e, err)
	}
	<-c.Done()
	if err := srv.ExpectClosed(5 * time.Second); err != nil {
		t.Errorf("server side: %v", err)
	}
}
