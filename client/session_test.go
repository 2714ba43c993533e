package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// sessionLink connects a client with opts to a fresh fake server that
// answers CONNACK ack, and returns both ends once Dial has returned, so
// whatever the client resent on connecting is already on the wire.
func sessionLink(t *testing.T, opts Options, ack *packet.Connack) (*Client, *Raw) {
	t.Helper()
	s := newFakeServer(t)
	type result struct {
		c   *Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, _, err := Dial(ctxT(t, 5*time.Second), s.addr(), opts)
		res <- result{c, err}
	}()
	srv, _ := s.accept(t)
	if err := srv.WritePacket(ack); err != nil {
		t.Fatalf("fake server: write CONNACK: %v", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("connect to fake server: %v", r.err)
	}
	t.Cleanup(func() { _ = r.c.Close() })
	return r.c, srv
}

// cut closes the server side and waits until the client has wound down.
func cut(t *testing.T, c *Client, srv *Raw) {
	t.Helper()
	_ = srv.Close()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("client did not see the link end")
	}
}

func write(t *testing.T, srv *Raw, p packet.Packet) {
	t.Helper()
	if err := srv.WritePacket(p); err != nil {
		t.Fatalf("fake server: write %s: %v", p.Type(), err)
	}
}

func requirePending(t *testing.T, toks ...*Token) {
	t.Helper()
	for i, tok := range toks {
		select {
		case <-tok.Done():
			t.Fatalf("token %d completed (%v), want still pending", i, tok.Err())
		default:
		}
	}
}

// TestSessionResendsInOrder breaks a link with a QoS 1 publish unacked, a
// QoS 2 one unreceived and two past PUBREC (acked out of order), then
// reconnects with Session Present 1: the client resends the PUBLISHes with
// DUP 1 and their ids, in first-sent order, and the PUBRELs in PUBREC
// order [MQTT-4.4.0-1] [MQTT-4.6.0-1] [MQTT-4.6.0-3], before anything new;
// the allocator skips held ids; the old Tokens complete with the new acks.
func TestSessionResendsInOrder(t *testing.T) {
	sess := NewSession()
	opts := Options{ClientID: "sess", Session: sess}
	ctx := ctxT(t, 10*time.Second)
	c1, srv1 := sessionLink(t, opts, &packet.Connack{})
	payload := []byte("d")
	toks := []*Token{
		c1.PublishAsync(ctx, "t/a", 1, false, []byte("a")),
		c1.PublishAsync(ctx, "t/b", 2, false, []byte("b")),
		c1.PublishAsync(ctx, "t/c", 2, false, []byte("c")),
		c1.PublishAsync(ctx, "t/d", 2, true, payload),
	}
	payload[0] = 'X' // the caller may reuse its buffer once PublishAsync returns
	for want := uint16(1); want <= 4; want++ {
		if p := expect[*packet.Publish](t, srv1); p.PacketID != want || p.Dup {
			t.Fatalf("first PUBLISH = id %d dup %v, want id %d dup false", p.PacketID, p.Dup, want)
		}
	}
	for _, id := range []uint16{3, 2} {
		write(t, srv1, &packet.Pubrec{PacketID: id})
		if rel := expect[*packet.Pubrel](t, srv1); rel.PacketID != id {
			t.Fatalf("PUBREL %d, want %d", rel.PacketID, id)
		}
	}
	cut(t, c1, srv1)
	requirePending(t, toks...)
	if out, in := sess.Pending(); out != 4 || in != 0 {
		t.Fatalf("session holds %d outgoing, %d incoming; want 4, 0", out, in)
	}

	c2, srv2 := sessionLink(t, opts, &packet.Connack{SessionPresent: true})
	if p := expect[*packet.Publish](t, srv2); p.PacketID != 1 || !p.Dup || p.QoS != 1 || p.Topic != "t/a" || string(p.Payload) != "a" {
		t.Fatalf("resend 1 = %+v, want PUBLISH id 1 DUP QoS 1 t/a \"a\"", p)
	}
	if p := expect[*packet.Publish](t, srv2); p.PacketID != 4 || !p.Dup || p.QoS != 2 || !p.Retain || p.Topic != "t/d" || string(p.Payload) != "d" {
		t.Fatalf("resend 2 = %+v, want PUBLISH id 4 DUP QoS 2 retained t/d \"d\"", p)
	}
	for _, id := range []uint16{3, 2} {
		if rel := expect[*packet.Pubrel](t, srv2); rel.PacketID != id {
			t.Fatalf("resent PUBREL %d, want %d (PUBREC order)", rel.PacketID, id)
		}
	}
	// Rewound onto the held ids, the allocator must still skip them [MQTT-2.3.1-2].
	c2.mu.Lock()
	c2.ids.last = 0
	c2.mu.Unlock()
	fresh := c2.PublishAsync(ctx, "t/e", 1, false, []byte("e"))
	if p := expect[*packet.Publish](t, srv2); p.PacketID != 5 || p.Dup {
		t.Fatalf("new PUBLISH = id %d dup %v, want id 5 (1..4 held) dup false", p.PacketID, p.Dup)
	}
	write(t, srv2, &packet.Puback{PacketID: 1})
	write(t, srv2, &packet.Pubrec{PacketID: 4})
	if rel := expect[*packet.Pubrel](t, srv2); rel.PacketID != 4 {
		t.Fatalf("PUBREL %d, want 4", rel.PacketID)
	}
	for _, id := range []uint16{4, 3, 2} {
		write(t, srv2, &packet.Pubcomp{PacketID: id})
	}
	write(t, srv2, &packet.Puback{PacketID: 5})
	for i, tok := range append(toks, fresh) {
		if err := tok.Wait(ctx); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	c2.mu.Lock()
	n := len(c2.ids.inflight)
	c2.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d ids still in flight after every ack", n)
	}
}

// TestSessionIncomingQoS2NotRedelivered: the client received a QoS 2
// PUBLISH and sent PUBREC, and the link broke before the broker saw it; the
// broker resends the PUBLISH on the new connection. With a Session the
// repeat is answered PUBREC but not delivered [MQTT-4.3.3-2]; without one
// (a connection forgets its ids) it is delivered again.
func TestSessionIncomingQoS2NotRedelivered(t *testing.T) {
	for _, tc := range []struct {
		name string
		sess *Session
		want int // deliveries of the one message
	}{
		{"with session", NewSession(), 1},
		{"without session", nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{ClientID: "in2", Session: tc.sess}
			c1, srv1 := sessionLink(t, opts, &packet.Connack{})
			write(t, srv1, &packet.Publish{QoS: 2, PacketID: 9, Topic: "t", Payload: []byte("once")})
			expect[*packet.Pubrec](t, srv1)
			if m := <-c1.Messages(); m == nil || string(m.Payload) != "once" {
				t.Fatalf("first delivery = %+v", m)
			}
			cut(t, c1, srv1)
			if tc.sess != nil {
				if out, in := tc.sess.Pending(); out != 0 || in != 1 {
					t.Fatalf("session holds %d outgoing, %d incoming; want 0, 1", out, in)
				}
			}
			c2, srv2 := sessionLink(t, opts, &packet.Connack{SessionPresent: true})
			write(t, srv2, &packet.Publish{QoS: 2, PacketID: 9, Topic: "t", Payload: []byte("once"), Dup: true})
			if p := expect[*packet.Pubrec](t, srv2); p.PacketID != 9 {
				t.Fatalf("PUBREC %d, want 9", p.PacketID)
			}
			write(t, srv2, &packet.Pubrel{PacketID: 9})
			expect[*packet.Pubcomp](t, srv2)
			// The client delivers before it answers: the count is settled.
			if got := 1 + len(c2.Messages()); got != tc.want {
				t.Fatalf("%d deliveries, want %d", got, tc.want)
			}
			// After PUBREL the id is fresh: a new message under it is delivered.
			write(t, srv2, &packet.Publish{QoS: 2, PacketID: 9, Topic: "t", Payload: []byte("next")})
			expect[*packet.Pubrec](t, srv2)
			if got := 1 + len(c2.Messages()); got != tc.want+1 {
				t.Fatalf("%d deliveries after a new message, want %d", got, tc.want+1)
			}
		})
	}
}

// TestSessionPresentZeroDropsSession: the broker answers Session Present 0,
// so it has none of the old state: nothing is resent, the held Tokens fail
// with ErrSessionLost, and a QoS 2 id received before is a new message.
func TestSessionPresentZeroDropsSession(t *testing.T) {
	sess := NewSession()
	opts := Options{ClientID: "lost", Session: sess}
	ctx := ctxT(t, 10*time.Second)
	c1, srv1 := sessionLink(t, opts, &packet.Connack{})
	t1 := c1.PublishAsync(ctx, "t", 1, false, []byte("1"))
	t2 := c1.PublishAsync(ctx, "t", 2, false, []byte("2"))
	expect[*packet.Publish](t, srv1)
	expect[*packet.Publish](t, srv1)
	write(t, srv1, &packet.Publish{QoS: 2, PacketID: 9, Topic: "in", Payload: []byte("old")})
	expect[*packet.Pubrec](t, srv1)
	cut(t, c1, srv1)
	if out, in := sess.Pending(); out != 2 || in != 1 {
		t.Fatalf("session holds %d outgoing, %d incoming; want 2, 1", out, in)
	}

	c2, srv2 := sessionLink(t, opts, &packet.Connack{SessionPresent: false})
	for i, tok := range []*Token{t1, t2} {
		if err := tok.Wait(ctx); !errors.Is(err, ErrSessionLost) {
			t.Fatalf("token %d: %v, want ErrSessionLost", i, err)
		}
	}
	if out, in := sess.Pending(); out != 0 || in != 0 {
		t.Fatalf("session holds %d outgoing, %d incoming after Session Present 0; want 0, 0", out, in)
	}
	// The first thing the client sends is the answer to this, so it resent nothing.
	write(t, srv2, &packet.Publish{QoS: 2, PacketID: 9, Topic: "in", Payload: []byte("new")})
	expect[*packet.Pubrec](t, srv2)
	if n := len(c2.Messages()); n != 1 {
		t.Fatalf("%d deliveries of a new message under a dropped id, want 1", n)
	}
}

// TestSessionReceiveMaximumBoundsResend: a 5.0 broker allows one message in
// flight, so the three held ones go out one per PUBACK, and a new publish
// waits behind them; a PUBACK for a held message not yet resent on this
// connection is ignored.
func TestSessionReceiveMaximumBoundsResend(t *testing.T) {
	sess := NewSession()
	opts := Options{ClientID: "rm", ProtocolLevel: packet.V5, Session: sess}
	ctx := ctxT(t, 10*time.Second)
	c1, srv1 := sessionLink(t, opts, &packet.Connack{})
	toks := make([]*Token, 3)
	for i := range toks {
		toks[i] = c1.PublishAsync(ctx, "t", 1, false, []byte{byte('0' + i)})
		expect[*packet.Publish](t, srv1)
	}
	cut(t, c1, srv1)

	one := uint16(1)
	c2, srv2 := sessionLink(t, opts, &packet.Connack{SessionPresent: true, Props: &packet.Properties{ReceiveMaximum: &one}})
	fresh := make(chan *Token, 1)
	go func() { fresh <- c2.PublishAsync(ctx, "t", 1, false, []byte("new")) }()
	if p := expect[*packet.Publish](t, srv2); p.PacketID != 1 || !p.Dup {
		t.Fatalf("first resend = id %d dup %v, want id 1 dup", p.PacketID, p.Dup)
	}
	// An ack for id 3, not resent yet, must not complete it nor free a slot.
	write(t, srv2, &packet.Puback{PacketID: 3})
	// Barrier: the client answers this QoS 1 PUBLISH; anything it wrongly
	// sent before would come first.
	write(t, srv2, &packet.Publish{QoS: 1, PacketID: 100, Topic: "in"})
	if a := expect[*packet.Puback](t, srv2); a.PacketID != 100 {
		t.Fatalf("PUBACK %d, want 100", a.PacketID)
	}
	requirePending(t, toks...)
	for _, id := range []uint16{1, 2} {
		write(t, srv2, &packet.Puback{PacketID: id})
		if p := expect[*packet.Publish](t, srv2); p.PacketID != id+1 || !p.Dup || string(p.Payload) != string(rune('0'+id)) {
			t.Fatalf("after PUBACK %d: PUBLISH id %d dup %v %q, want the held id %d", id, p.PacketID, p.Dup, p.Payload, id+1)
		}
	}
	write(t, srv2, &packet.Puback{PacketID: 3})
	p := expect[*packet.Publish](t, srv2)
	if p.Dup || string(p.Payload) != "new" || p.PacketID < 4 {
		t.Fatalf("after the held ones: PUBLISH %+v, want the new one (DUP 0, id > 3)", p)
	}
	write(t, srv2, &packet.Puback{PacketID: p.PacketID})
	for i, tok := range append(toks, <-fresh) {
		if err := tok.Wait(ctx); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
}

// TestSessionOneConnectionAtATime: a Session in use refuses a second
// connection and Clear; once the link ends, Clear fails the held Tokens.
func TestSessionOneConnectionAtATime(t *testing.T) {
	sess := NewSession()
	opts := Options{ClientID: "one", Session: sess}
	ctx := ctxT(t, 10*time.Second)
	c1, srv1 := sessionLink(t, opts, &packet.Connack{})
	tok := c1.PublishAsync(ctx, "t", 1, false, nil)
	expect[*packet.Publish](t, srv1)

	a, b := net.Pipe()
	defer b.Close()
	if _, _, err := Connect(ctx, a, opts); !errors.Is(err, ErrSessionInUse) {
		t.Fatalf("second Connect with the session in use: %v, want ErrSessionInUse", err)
	}
	if err := sess.Clear(); !errors.Is(err, ErrSessionInUse) {
		t.Fatalf("Clear while in use: %v, want ErrSessionInUse", err)
	}
	cut(t, c1, srv1)
	requirePending(t, tok)
	if err := sess.Clear(); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	if err := tok.Wait(context.Background()); !errors.Is(err, ErrSessionLost) {
		t.Fatalf("held token after Clear: %v, want ErrSessionLost", err)
	}
}

// TestSessionAcrossRepeatedCuts: a held message's state moves on with each
// connection. Its QoS 2 PUBLISH is resent on the second connection, which
// gets PUBREC and breaks before PUBCOMP; the third resends only the PUBREL
// with the same id, and its PUBCOMP completes the first connection's Token.
func TestSessionAcrossRepeatedCuts(t *testing.T) {
	sess := NewSession()
	opts := Options{ClientID: "cuts", Session: sess}
	ctx := ctxT(t, 10*time.Second)
	c1, srv1 := sessionLink(t, opts, &packet.Connack{})
	tok := c1.PublishAsync(ctx, "t", 2, false, []byte("x"))
	id := expect[*packet.Publish](t, srv1).PacketID
	cut(t, c1, srv1)

	c2, srv2 := sessionLink(t, opts, &packet.Connack{SessionPresent: true})
	if p := expect[*packet.Publish](t, srv2); p.PacketID != id || !p.Dup {
		t.Fatalf("second connection resent id %d dup %v, want id %d dup", p.PacketID, p.Dup, id)
	}
	write(t, srv2, &packet.Pubrec{PacketID: id})
	expect[*packet.Pubrel](t, srv2)
	cut(t, c2, srv2)
	requirePending(t, tok)
	if out, _ := sess.Pending(); out != 1 {
		t.Fatalf("session holds %d outgoing after the second cut, want 1", out)
	}

	_, srv3 := sessionLink(t, opts, &packet.Connack{SessionPresent: true})
	if rel := expect[*packet.Pubrel](t, srv3); rel.PacketID != id {
		t.Fatalf("third connection resent PUBREL %d, want %d", rel.PacketID, id)
	}
	write(t, srv3, &packet.Pubcomp{PacketID: id})
	if err := tok.Wait(ctx); err != nil {
		t.Fatalf("token after PUBCOMP on the third connection: %v", err)
	}
}
