package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// epoch is the origin of every client's monotonic nanosecond stamps; one
// for the process rather than a time.Time in each client.
var epoch = time.Now()

// Client is one MQTT connection. Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	conn    net.Conn
	in      inbuf // read side; reader goroutine only
	ropts   packet.Options
	version byte

	// Flags, kept together so they share one word (a fleet holds thousands
	// of clients); each says what guards it.
	pingDefault bool        // PingTimeout follows keepAlive; fixed at Connect
	canParkConn bool        // conn is plain TCP; fixed at Connect
	wclosed     bool        // DISCONNECT was written; guarded by wsem [MQTT-3.14.4-2]
	ended       bool        // the reader is winding down: no new timer work; guarded by mu
	msgEnd      bool        // the link ended: msgs is closed once made; guarded by mu
	canPark     bool        // the reader still tries to park; reader goroutine only
	parkArmed   bool        // the park read deadline is set; reader goroutine only
	parked      atomic.Bool // the poller holds the conn and no reader runs
	acksQueued  atomic.Bool // len(acks) > 0, readable without ackMu
	sink        events.Sink

	keepAlive   time.Duration // as sent on the wire, or as the MQTT 5 server imposed
	pingTimeout time.Duration

	wsem chan struct{} // one slot: holding it grants the right to write

	lastSent atomic.Int64 // now() when the last write completed
	lastRecv atomic.Int64 // now() when the last packet arrived
	pingSent atomic.Int64 // now() of the outstanding PINGREQ; 0 when none

	window chan struct{} // one slot per outgoing QoS 1/2 publish in flight

	mu     sync.Mutex
	ids    idSpace
	err    error        // why the link ended; nil while it is up
	cause  events.Cause // the event cause matching err
	timer  *time.Timer  // keepalive timer; nil when keepalive is off
	bg     sync.WaitGroup
	quit   chan struct{}        // closed when the link starts ending
	done   chan struct{}        // closed when the link has ended and the reader is done
	msgs   chan *packet.Publish // made on first use; guarded by mu
	closed sync.Once

	// resendQ holds a Session's messages waiting for a window slot after
	// the first resend (session_resend.go); guarded by mu, changed only by
	// the reader once it runs.
	resendQ []*Token

	// Parking (see park.go).
	startedAt int64                // now() when the current reader goroutine started; reader only
	rmsgs     chan *packet.Publish // the reader's copy of msgs once made

	ackMu sync.Mutex
	acks  []ack // acks waiting for the write slot, oldest first; guarded by ackMu

	recv2  map[uint16]struct{} // reader only: incoming QoS 2 ids between PUBREC and PUBREL [MQTT-4.3.3-2]
	reauth *reauthState        // with Options.Auth (MQTT 5): a re-authentication's AUTH hand-over (auth.go)
	// aliasIn maps the broker's Topic Aliases on this connection to their
	// topics (alias.go); reader only, made with the first alias.
	aliasIn map[uint16]string
	// aliasOut is the Topic Alias state of our PUBLISHes (alias_out.go);
	// nil unless Options.TopicAliases and the server allows aliases. Set
	// before the reader starts, then used by the write slot holder only.
	aliasOut *aliasOut

	// Scratch ack packets, used only by the holder of the write slot.
	puback  packet.Puback
	pubrec  packet.Pubrec
	pubrel  packet.Pubrel
	pubcomp packet.Pubcomp
}

// Connect sends CONNECT over conn with everything opts asks for (will,
// credentials, clean session, keepalive) and waits for the CONNACK. On
// success the returned Client owns conn. A refused CONNACK returns the
// CONNACK and a *ConnackError, and closes conn; so does any other failure.
func Connect(ctx context.Context, conn net.Conn, opts Options) (*Client, *packet.Connack, error) {
	pingDefault := opts.PingTimeout <= 0
	opts = opts.withDefaults()
	c := &Client{
		pingDefault: pingDefault,
		opts:        opts,
		conn:        conn,
		ropts:       packet.Options{Version: opts.ProtocolLevel, MaxPacketSize: opts.MaxPacketSize},
		version:     opts.ProtocolLevel,
		sink:        opts.Events,
		keepAlive:   time.Duration(opts.keepAliveSeconds()) * time.Second,
		pingTimeout: opts.PingTimeout,
		wsem:        make(chan struct{}, 1),
		quit:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	c.in.c = c
	c.canParkConn = parkable(conn)
	c.canPark = c.canParkConn
	if c.version == packet.V5 && opts.Auth != nil {
		c.reauth = &reauthState{in: make(chan *packet.Auth, 1)}
	}
	if c.version == packet.V31 {
		c.ropts.Version = packet.V311 // 3.1 and 3.1.1 packets after CONNECT are alike
	}
	if s := opts.Session; s != nil {
		if err := s.attach(c); err != nil {
			_ = conn.Close()
			return nil, nil, fmt.Errorf("connect: %w", err)
		}
	}
	ack, err := c.handshake(ctx)
	if err != nil {
		_ = conn.Close()
		if opts.Session != nil {
			opts.Session.release(c)
		}
		return nil, ack, err
	}
	c.applyServerLimits(ack)
	c.enableAliasOut(ack)
	c.window = make(chan struct{}, c.opts.MaxInflight)
	var first []packet.Packet // a Session's messages to resend at once (session_resend.go)
	if opts.Session != nil {
		first = c.resumeSession(ack.SessionPresent)
	}
	c.lastRecv.Store(c.now())
	if c.keepAlive > 0 {
		c.mu.Lock()
		c.timer = time.AfterFunc(c.keepAlive-time.Duration(c.now()-c.lastSent.Load()), c.onTimer)
		c.mu.Unlock()
	}
	go c.readLoop()
	if len(first) > 0 {
		// A failed resend ends the link like any write error, and the
		// session gets its messages back; Connect itself succeeded.
		c.resendFirst(ctx, first)
	}
	return c, ack, nil
}

// handshake writes CONNECT and reads CONNACK in the caller's goroutine,
// bounded by ctx and ConnectTimeout through the conn's deadlines.
func (c *Client) handshake(ctx context.Context) (*packet.Connack, error) {
	deadline := time.Now().Add(c.opts.ConnectTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("connect: set deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	cp := c.opts.connectPacket()
	if cp.PasswordFlag && !cp.UsernameFlag && c.version != packet.V5 {
		// Found by the client conformance suite: the CONNECT went out and
		// a strict broker closed the link on it.
		return nil, fmt.Errorf("connect: a password without a user name is not allowed before MQTT 5 [MQTT-3.1.2-22]: %w", ErrProtocol)
	}
	var ax AuthExchange // an enhanced authentication in progress (auth.go)
	if c.reauth != nil {
		var err error
		if ax, err = c.startAuth(cp); err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
	}
	buf, err := packet.Append(nil, cp, c.version)
	if err != nil {
		return nil, fmt.Errorf("connect: encode CONNECT: %w", err)
	}
	start := time.Now()
	if c.sink != nil {
		c.emit(events.Event{Kind: events.Connect, Remote: remote(c.conn), KeepAlive: int(cp.KeepAlive), Clean: cp.CleanSession})
	}
	if _, err := c.conn.Write(buf); err != nil {
		return nil, c.ctxErr(ctx, fmt.Errorf("connect: write CONNECT: %w", err))
	}
	c.lastSent.Store(c.now()) // keepalive counts from CONNECT, as the broker does
	p, err := packet.ReadPacket(&c.in, c.ropts)
	for err == nil && ax != nil {
		// The server's AUTH 0x18 until it decides, each answered [MQTT-4.12.0-3].
		a, isAuth := p.(*packet.Auth)
		if !isAuth {
			break
		}
		reply, aerr := c.authContinue(ax, a)
		if aerr != nil {
			return nil, fmt.Errorf("connect: %w", aerr)
		}
		if buf, err = packet.Append(buf[:0], reply, c.version); err != nil {
			return nil, fmt.Errorf("connect: encode AUTH: %w", err)
		}
		if _, err := c.conn.Write(buf); err != nil {
			return nil, c.ctxErr(ctx, fmt.Errorf("connect: write AUTH: %w", err))
		}
		if c.sink != nil {
			c.emit(events.Event{Kind: events.Auth, Code: int(reply.ReasonCode), Detail: c.opts.Auth.Method() + ": AUTH sent"})
		}
		p, err = packet.ReadPacket(&c.in, c.ropts)
	}
	if err != nil {
		return nil, c.ctxErr(ctx, fmt.Errorf("connect: read CONNACK: %w", err))
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		return nil, fmt.Errorf("connect: got %s instead of CONNACK: %w", p.Type(), ErrProtocol)
	}
	if c.sink != nil {
		c.emit(events.Event{Kind: events.ConnAck, Code: int(ack.ReturnCode), SessionPresent: ack.SessionPresent, Latency: time.Since(start)})
	}
	if refused(c.version, ack.ReturnCode) {
		if c.sink != nil {
			c.emit(events.Event{Kind: events.Disconnect, Cause: events.CauseRefused, Code: int(ack.ReturnCode)})
		}
		return ack, &ConnackError{Code: ack.ReturnCode}
	}
	if ax != nil {
		if err := c.authFinish(ax, ack.Props); err != nil {
			return ack, fmt.Errorf("connect: %w", err)
		}
	}
	if !stop() {
		return ack, c.ctxErr(ctx, errors.New("connect: context ended"))
	}
	if err := c.conn.SetDeadline(time.Time{}); err != nil {
		return ack, fmt.Errorf("connect: clear deadline: %w", err)
	}
	return ack, nil
}

// applyServerLimits adopts what an MQTT 5 CONNACK imposes: the Server Keep
// Alive replaces ours [MQTT-3.2.2-21], Receive Maximum caps the inflight
// window [MQTT-3.3.4-7], and an Assigned Client Identifier labels events.
func (c *Client) applyServerLimits(ack *packet.Connack) {
	if c.version != packet.V5 || ack.Props == nil {
		return
	}
	p := ack.Props
	if p.ServerKeepAlive != nil {
		c.keepAlive = time.Duration(*p.ServerKeepAlive) * time.Second
		if c.pingDefault {
			c.pingTimeout = max(c.keepAlive, minPingTimeout)
		}
	}
	if p.ReceiveMaximum != nil && int(*p.ReceiveMaximum) < c.opts.MaxInflight && *p.ReceiveMaximum > 0 {
		c.opts.MaxInflight = int(*p.ReceiveMaximum)
	}
	if p.HasAssignedClientID && c.opts.ClientID == "" {
		c.opts.ClientID = p.AssignedClientID
	}
}

// ctxErr prefers the context's error when the context ended, since a
// deadline error from the conn is then only its symptom.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// refused tells whether a CONNACK code refuses the connection: any non-zero
// 3.1.1 return code, or an MQTT 5 reason code of 0x80 and above.
func refused(version, code byte) bool {
	if version == packet.V5 {
		return code >= 0x80
	}
	return code != packet.Accepted
}

func remote(conn net.Conn) string {
	if a := conn.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// now is a monotonic timestamp in nanoseconds since the package loaded;
// never 0, so 0 can mean "none".
func (c *Client) now() int64 {
	return int64(time.Since(epoch)) + 1
}

// emit stamps e with the client's identity and hands it to the sink. Callers
// check c.sink != nil first so a client without events builds no Event.
func (c *Client) emit(e events.Event) {
	e.Time = time.Now()
	e.Source = events.SourceClient
	e.ClientID = c.opts.ClientID
	e.Device = c.opts.Device
	c.sink.Emit(e)
}

// ClientID returns the client identifier sent in CONNECT.
func (c *Client) ClientID() string { return c.opts.ClientID }

// Done is closed when the connection has ended and the reader has stopped.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the connection ended: it wraps ErrClosed, ErrDisconnected,
// ErrPingTimeout, a read/write error or a *ReasonError. Nil while connected.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Messages returns the channel incoming PUBLISHes are delivered on when
// Options.OnMessage is nil (nil otherwise). It is closed when the link ends.
// It is made on first use (here or at the first delivery), since a fleet
// of clients with OnMessage or without subscriptions never needs one.
func (c *Client) Messages() <-chan *packet.Publish {
	if c.opts.OnMessage != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.msgs == nil {
		c.msgs = make(chan *packet.Publish, c.opts.MessageBuffer)
		if c.msgEnd {
			close(c.msgs)
		}
	}
	return c.msgs
}

// linkErr is the error operations return once the link is ending.
func (c *Client) linkErr() error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("connection ended: %w", err)
	}
	return fmt.Errorf("connection ending: %w", ErrClosed)
}

// fail ends the link for the first reason given; later reasons are ignored.
func (c *Client) fail(err error, cause events.Cause) {
	c.mu.Lock()
	first := c.err == nil
	if first {
		c.err, c.cause = err, cause
	}
	c.mu.Unlock()
	if first {
		c.closeQuit()
		_ = c.conn.Close()
	}
}

// closeQuit marks the link as ending, and gives a parked reader back its
// goroutine so it sees the end. Every conn.Close outside the reader comes
// after it, so a parked descriptor is never closed while registered.
func (c *Client) closeQuit() {
	c.closed.Do(func() {
		close(c.quit)
		c.unpark()
	})
}

// Close drops the link without sending DISCONNECT, as a crash would (so the
// broker publishes the will), and waits for the reader to stop.
func (c *Client) Close() error {
	c.fail(ErrClosed, events.CauseShutdown)
	<-c.done
	return nil
}

// disconnectDrain bounds how long Disconnect waits for the broker to close
// its side after DISCONNECT.
const disconnectDrain = 2 * time.Second

// Disconnect sends DISCONNECT and closes the link [MQTT-3.14.4-1]; nothing
// is written after it [MQTT-3.14.4-2]. On TCP it half-closes first and lets
// the reader drain until the broker closes, so unread data in our receive
// buffer does not turn the close into a reset that could lose the DISCONNECT.
func (c *Client) Disconnect(ctx context.Context) error {
	if err := c.acquireWrite(ctx); err != nil {
		c.fail(ErrClosed, events.CauseShutdown)
		<-c.done
		return fmt.Errorf("disconnect: %w", err)
	}
	c.mu.Lock()
	already := c.err
	if already == nil {
		c.err, c.cause = ErrDisconnected, events.CauseClientDisconnect
	}
	c.mu.Unlock()
	if already != nil {
		c.releaseWrite()
		<-c.done
		return fmt.Errorf("disconnect: %w", c.linkErr())
	}
	c.closeQuit()
	_, err := c.writeLocked(ctx, &packet.Disconnect{})
	c.wclosed = true
	c.releaseWrite()
	if err != nil {
		_ = c.conn.Close()
		<-c.done
		return fmt.Errorf("disconnect: %w", err)
	}
	if hc, ok := c.conn.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		drain := time.Now().Add(disconnectDrain)
		if d, ok := ctx.Deadline(); ok && d.Before(drain) {
			drain = d
		}
		_ = c.conn.SetReadDeadline(drain)
		stop := context.AfterFunc(ctx, func() { _ = c.conn.Close() })
		<-c.done
		stop()
		return nil
	}
	_ = c.conn.Close()
	<-c.done
	return nil
}
