package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// conn is one client connection. Its reader goroutine (run) owns the
// handshake, the read loop and the cleanup; other goroutines only queue
// packets on it (send) or end it (shutdown).
type conn struct {
	b      *Broker
	remote string
	rd     lazyReader // rd.nc is the connection's socket

	// Set by the reader during the handshake, read-only afterwards.
	clientID  string
	username  string
	keepalive time.Duration
	sess      *session
	will      *packet.Will  // owned by the reader goroutine
	willOnEnd bool          // a 5.0 DISCONNECT asked for the will (0x04 or any code but 0x00); reader-owned
	lastRead  time.Duration // since b.start: 8 bytes instead of a time.Time's 24
	// bridge: the client connected with the bridge bit in its protocol
	// level (Mosquitto's try_private): its subscriptions get No Local and
	// Retain As Published, so a bridge is not sent its own messages back
	// (no loop between bridged brokers) and retained ones stay retained.
	bridge bool

	connectExpiry uint32 // MQTT 5 Session Expiry Interval of CONNECT (see v5.go)
	// rxLimit is how many incoming QoS 2 flows may await PUBREL before a new
	// one breaks the Receive Maximum advertised to an MQTT 5 client: the
	// maximum plus the flows the session carried over, which the client
	// completes outside its new quota (0: no limit, 3.1.1).
	rxLimit int
	// aliases maps the Topic Aliases an MQTT 5 client set on this connection
	// to their topics [MQTT-3.3.2-7]; made with the first one.
	aliases map[uint16]string
	// eauth is the enhanced authentication state of an MQTT 5 client that
	// connected with an Authentication Method (enhanced_auth.go); reader-owned.
	eauth *enhancedAuth
	// held are acknowledgements of PUBLISH packets of this burst waiting
	// for the store to make what they promise durable (persist.go); sent
	// in order once the burst ends. Reader-owned; nil with persistence off.
	held []packet.Packet
	// aliasOut holds the Topic Aliases the broker sends this MQTT 5 client
	// (alias_out.go); nil when it sends none. Writer-owned after the handshake.
	aliasOut *outAliases

	omu     sync.Mutex    // guards the outbound fields; a leaf lock
	room    chan struct{} // made by a reader waiting in waitRoom, closed by the writer
	out     []packet.Packet
	writing bool
	oclosed bool
	version byte // protocol level; set in the handshake
	slot    bool // holds one of max_connections' slots (b.slots); set in the handshake
	// Set in the handshake of an MQTT 5 client (server5.go): CONNACK carries
	// Server Keep Alive, and Response Information was asked for.
	serverKeepAlive, respInfo bool

	parkable bool // a plain TCP socket and the broker has a Poller: idle, it waits there

	wmu       sync.Mutex  // serialises socket writes with a server DISCONNECT (v5.go); a leaf lock
	connacked atomic.Bool // an MQTT 5 CONNACK was written: a server DISCONNECT may follow
	sealed    bool        // a server DISCONNECT was written or given up: write nothing more (guarded by wmu)

	endMu    sync.Mutex    // guards the fields below
	reason   *endReason    // why the connection ended; nil while it lives
	finished bool          // cleanup (will, session detach) is complete
	done     chan struct{} // made by a waiter (takeover), closed by finish
}

// endReason is why a connection ended, kept out of line: most of a
// connection's life it is not needed, and memory per connection matters.
type endReason struct {
	cause     events.Cause
	statement string
	detail    string
	code      byte // MQTT 5 reason code of the DISCONNECT the server sent, 0 if none
}

func newConn(b *Broker, nc net.Conn, remote string) *conn {
	c := &conn{b: b, remote: remote, version: packet.V311}
	c.rd.nc, c.rd.c = nc, c
	c.parkable = b.parker != nil && parkable(nc)
	return c
}

// since returns the broker clock: time since the broker started.
func (b *Broker) since() time.Duration { return time.Since(b.start) }

// finishedCh returns a channel closed once the connection's cleanup is
// complete. It is made on demand: most connections never have a waiter.
func (c *conn) finishedCh() <-chan struct{} {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.finished {
			close(c.done)
		}
	}
	return c.done
}

// shutdown ends the connection with a cause unless it has one already. It
// never blocks on the reader: the reader sees the closed socket and cleans up.
func (c *conn) shutdown(cause events.Cause, statement, detail string) {
	c.shutdownCode(cause, 0, statement, detail)
}

// shutdownCode is shutdown with the codec's reason code for a violation
// (0: derived from cause). An MQTT 5 client past CONNACK is sent a
// DISCONNECT with the reason code first (v5.go).
func (c *conn) shutdownCode(cause events.Cause, code byte, statement, detail string) {
	c.endMu.Lock()
	first := c.reason == nil
	if first {
		c.reason = &endReason{cause: cause, statement: statement, detail: detail}
		if c.parkable {
			// A parked connection has no goroutine to see the close: wake it.
			c.unpark()
		}
	}
	c.endMu.Unlock()
	c.closeOutbound()
	if first {
		c.disconnectV5(cause, code)
	}
	_ = c.rd.nc.Close()
}

// ending reports whether the connection has been told to end.
func (c *conn) ending() bool {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	return c.reason != nil
}

// violation ends the connection without sending anything [MQTT-4.8.0-1].
func (c *conn) violation(statement, detail string) {
	c.violationCode(0, statement, detail)
}

// violationCode is violation with the MQTT 5 reason code of the fault
// (0x81 malformed, 0x82 protocol error, ...; 0: protocol error), which the
// event names for an MQTT 5 connection. Only the reader goroutine calls it.
func (c *conn) violationCode(code byte, statement, detail string) {
	c.b.emit(events.Event{Kind: events.Violation, ClientID: c.clientID, Remote: c.remote, Code: c.violationEventCode(code), Statement: statement, Detail: detail})
	c.shutdownCode(events.CauseViolation, code, statement, detail)
}

// The reader side of a connection is one goroutine at a time: run does the
// handshake and then loops (wait for a packet, handle every buffered one).
// A plain TCP connection silent for parkAfter is parked in the broker's
// netpark Poller and its goroutine exits, so an idle connection holds no
// goroutine and no buffer; a new one (resume) starts when the socket is
// readable, the keepalive deadline passes or the connection is shut down
// (park.go). Whichever goroutine sees the end runs finish.

// parkAfter is how long a connection stays silent before it is parked: busy
// connections never pay for the epoll round trip.
const parkAfter = time.Second

// run is the connection's first goroutine: the handshake, then the loop.
func (c *conn) run() {
	defer c.b.wg.Done()
	if !c.handshake() {
		c.finish()
		return
	}
	c.loop()
}

// resume continues a parked connection in a new goroutine.
func (c *conn) resume() {
	defer c.b.wg.Done()
	c.loop()
}

// loop waits for packets and handles them until the connection ends or is
// parked.
func (c *conn) loop() {
	parkable := c.parkable
	for {
		ka := c.keepaliveDeadline()
		if parkable && (ka == 0 || ka-c.b.since() > parkAfter) {
			// Wake up after parkAfter of silence to park in the poller (one
			// timer update: the keepalive deadline is further away).
			_ = c.rd.nc.SetReadDeadline(time.Now().Add(parkAfter))
		} else {
			c.armKeepalive()
		}
		if err := c.rd.wait(); err != nil {
			// Only the clock says the keepalive expired, never the mere fact
			// that a read deadline fired: any deadline that fires earlier
			// (the park timer, a deadline left by an earlier wait) means
			// the connection waits on, parked if it can be. Nothing was
			// consumed, so waiting on is safe.
			if isTimeout(err) && !c.keepaliveExpired() && !c.ending() {
				if parkable && c.park(ka) {
					return // the Poller owns the connection until it wakes it
				}
				if !c.ending() {
					parkable = false // the Poller refused it: keep waiting the plain way
					continue
				}
			}
			c.readFailed(err)
			c.finish()
			return
		}
		if !c.burst() {
			return
		}
	}
}

// armKeepalive sets the read deadline to 1.5x the keepalive after the last
// packet received [MQTT-3.1.2-24] and returns it on the broker clock (0: no
// keepalive).
func (c *conn) armKeepalive() time.Duration {
	d := c.keepaliveDeadline()
	if d == 0 {
		_ = c.rd.nc.SetReadDeadline(time.Time{})
		return 0
	}
	_ = c.rd.nc.SetReadDeadline(c.b.start.Add(d))
	return d
}

// keepaliveDeadline is 1.5x the keepalive after the last packet, on the
// broker clock; 0 without keepalive.
func (c *conn) keepaliveDeadline() time.Duration {
	if c.keepalive == 0 {
		return 0
	}
	return c.lastRead + c.keepalive*3/2
}

// beforeBlock runs when the reader is about to read the socket in the
// middle of a burst (the rest of a packet is not buffered yet): only then
// does the keepalive deadline need to be exact, so a burst of buffered
// packets costs no timer update per packet. During the handshake the
// connect timeout stays.
func (c *conn) beforeBlock() {
	if c.sess != nil {
		c.armKeepalive()
	}
}

// burst reads and handles packets while bytes are buffered. It reports
// false when the connection ended (finish has run).
//
//go:noinline
func (c *conn) burst() bool {
	opt := packet.Options{Version: c.version, MaxPacketSize: c.b.cfg.MaxPacketSize}
	for {
		p, err := packet.ReadPacket(&c.rd, opt)
		if err != nil && !(c.version == packet.V5 && onlyFilterInvalid(p, err)) {
			c.readFailed(err)
			c.finish()
			return false
		}
		c.lastRead = c.b.since()
		if !c.handle(p) {
			c.finish()
			return false
		}
		c.waitRoom()
		if !c.rd.buffered() {
			// The burst ends: one wait on the store for all its
			// acknowledgements (persist.go).
			if c.held != nil && !c.releaseHeld() {
				c.finish()
				return false
			}
			c.rd.release()
			return true
		}
	}
}

// onlyFilterInvalid reports whether the codec returned a whole SUBSCRIBE
// whose only fault is an invalid topic filter. MQTT 5.0 refuses such a
// filter with SUBACK reason 0x8F and keeps the connection. In 3.1.1 a
// filter that breaks the Topic Filter rules [MQTT-4.7.1-2] [MQTT-4.7.1-3]
// [MQTT-4.7.3-1] makes the packet malformed, and the server closes the
// connection (section 4.8), as Mosquitto does: SUBACK 0x80 is for a valid
// filter the server will not grant (ACL, limits) [MQTT-3.8.4-5].
func onlyFilterInvalid(p packet.Packet, err error) bool {
	var pe *packet.Error
	_, ok := p.(*packet.Subscribe)
	return ok && errors.As(err, &pe) && pe.Code == packet.CodeTopicFilterInvalid
}

// readPacket waits, holding no buffer, for the next packet and decodes it.
func (c *conn) readPacket(maxSize int) (packet.Packet, error) {
	if err := c.rd.wait(); err != nil {
		return nil, err
	}
	return packet.ReadPacket(&c.rd, packet.Options{Version: c.version, MaxPacketSize: maxSize})
}

// readFailed turns a read error into the connection's end cause.
//
//go:noinline
func (c *conn) readFailed(err error) {
	var pe *packet.Error
	switch {
	case errors.As(err, &pe):
		if errors.Is(err, packet.ErrPacketTooLarge) {
			c.b.drop(c.clientID, "", 0, events.CauseTooLarge, pe.Error())
			c.b.emit(events.Event{Kind: events.Violation, ClientID: c.clientID, Remote: c.remote, Statement: pe.Statement, Detail: pe.Error()})
			c.shutdown(events.CauseTooLarge, pe.Statement, pe.Error())
			return
		}
		// Without a narrower statement (lengths that do not add up, a
		// reserved type) the event names the rule that closes.
		stmt := pe.Statement
		switch {
		case stmt != "":
		case pe.Packet == packet.CONNECT:
			stmt = "MQTT-3.1.4-1"
		default:
			stmt = "MQTT-4.8.0-1"
		}
		c.violationCode(pe.Code, stmt, pe.Error())
	case c.sess == nil && isTimeout(err):
		c.shutdown(events.CauseIOError, "", "no CONNECT within connect timeout")
	case c.keepaliveExpired():
		silence := c.b.since() - c.lastRead
		if !c.ending() {
			// [MQTT-3.1.2-24] 1.5x the keepalive passed without a packet.
			c.b.emit(events.Event{Kind: events.KeepaliveExpired, ClientID: c.clientID, Remote: c.remote,
				KeepAlive: int(c.keepalive / time.Second), Latency: silence})
		}
		c.shutdown(events.CauseKeepalive, "MQTT-3.1.2-24", fmt.Sprintf("silent for %v", silence.Round(time.Millisecond)))
	case isTimeout(err):
		// Mid-packet reads wait under the keepalive deadline, so this is not
		// expected; it is reported as what it is, not as a keepalive expiry.
		c.shutdown(events.CauseIOError, "", fmt.Sprintf("read timed out %v after the last packet, before 1.5x the keepalive",
			(c.b.since()-c.lastRead).Round(time.Millisecond)))
	default:
		c.shutdown(events.CauseIOError, "", "read: "+err.Error())
	}
}

// keepaliveExpired reports whether 1.5x the keepalive has passed since the
// last packet, on the broker clock. It alone decides a keepalive expiry
// [MQTT-3.1.2-24]: a WebSocket connection reports its read deadline as a
// cancelled read, not as a timeout, and a timeout may come from a shorter
// deadline (the park timer).
func (c *conn) keepaliveExpired() bool {
	return c.sess != nil && c.keepalive > 0 && c.b.since() >= c.keepaliveDeadline()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// finish runs once the reader stops: it detaches the session, publishes the
// will unless the client sent DISCONNECT, and reports the disconnect.
//
//go:noinline
func (c *conn) finish() {
	c.shutdown(events.CauseIOError, "", "connection ended")
	c.rd.release()
	c.endMu.Lock()
	r := c.reason
	cause, statement, detail, code := r.cause, r.statement, r.detail, r.code
	c.endMu.Unlock()
	b := c.b
	if c.slot {
		b.slots.Add(-1)
	}
	if s := c.sess; s != nil {
		b.connected.Add(-1)
		var pw *pendingWill
		var delay uint32
		if c.will != nil && (cause != events.CauseClientDisconnect || c.willOnEnd) {
			pw = &pendingWill{w: c.will, user: c.username, clientID: c.clientID, cause: cause}
			delay = willDelay(c.will)
		}
		c.will = nil
		if pw = b.detach(s, c, pw, delay); pw != nil {
			b.publishPendingWill(pw)
		}
	}
	b.emit(events.Event{Kind: events.Disconnect, ClientID: c.clientID, Remote: c.remote, Cause: cause, Code: int(code), Statement: statement, Detail: detail})
	b.log.Debug("disconnect", "client", c.clientID, "remote", c.remote, "cause", cause, "statement", statement, "detail", detail)
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	c.endMu.Lock()
	c.finished = true
	if c.done != nil {
		close(c.done)
	}
	c.endMu.Unlock()
}

// publishPendingWill publishes a will [MQTT-3.1.2-8] with its QoS and
// retain flag, as its client (ACL). The caller forgot it [MQTT-3.1.2-10].
func (b *Broker) publishPendingWill(pw *pendingWill) {
	w := pw.w
	if !b.auth.CanPublish(pw.user, pw.clientID, w.Topic) {
		b.drop(pw.clientID, w.Topic, w.QoS, events.CauseNotAuthorized, "will denied by ACL")
		return
	}
	b.publish(&packet.Publish{Topic: w.Topic, QoS: w.QoS, Retain: w.Retain, Payload: w.Payload, Props: willPublishProps(w.Props)}, pw.clientID)
	b.emit(events.Event{Kind: events.WillPublished, ClientID: pw.clientID, Topic: w.Topic, QoS: w.QoS, Retain: w.Retain, Cause: pw.cause})
}

// lazyReader reads a connection through a pooled bufio.Reader that it holds
// only while bytes are buffered: an idle connection blocks in a one-byte
// read of the socket and holds no read buffer.
type lazyReader struct {
	nc       net.Conn
	c        *conn // owner: its keepalive deadline is set before blocking mid-burst
	br       *bufio.Reader
	first    [1]byte
	hasFirst bool
}

var readBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8<<10) }}

// wait returns once the next packet's first byte is available.
func (r *lazyReader) wait() error {
	if r.br != nil {
		if r.br.Buffered() > 0 {
			return nil
		}
		r.release()
	}
	for {
		n, err := r.nc.Read(r.first[:])
		r.c.b.bytesIn.Add(uint64(n))
		if n == 1 {
			r.hasFirst = true
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Read implements io.Reader for the packet decoder.
func (r *lazyReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.hasFirst {
		p[0] = r.first[0]
		r.hasFirst = false
		return 1, nil
	}
	if r.br == nil {
		r.br = readBufs.Get().(*bufio.Reader)
		r.br.Reset(socketReader{r})
	}
	if r.br.Buffered() == 0 {
		r.c.beforeBlock()
	}
	return r.br.Read(p)
}

// socketReader reads the socket for the buffer and counts the bytes.
type socketReader struct{ r *lazyReader }

func (s socketReader) Read(p []byte) (int, error) {
	n, err := s.r.nc.Read(p)
	s.r.c.b.bytesIn.Add(uint64(n))
	return n, err
}

// Buffered reports how many bytes are read but not consumed: the decoder
// reads a body that is already here into one exact buffer.
func (r *lazyReader) Buffered() int {
	n := 0
	if r.hasFirst {
		n = 1
	}
	if r.br != nil {
		n += r.br.Buffered()
	}
	return n
}

// buffered reports whether bytes of a next packet are already read.
func (r *lazyReader) buffered() bool {
	return r.hasFirst || (r.br != nil && r.br.Buffered() > 0)
}

// ReadByte lets the decoder read the fixed header without an adapter.
func (r *lazyReader) ReadByte() (byte, error) {
	if r.hasFirst {
		r.hasFirst = false
		return r.first[0], nil
	}
	if r.br == nil {
		r.br = readBufs.Get().(*bufio.Reader)
		r.br.Reset(socketReader{r})
	}
	if r.br.Buffered() == 0 {
		r.c.beforeBlock()
	}
	return r.br.ReadByte()
}

// release returns the read buffer to the pool.
func (r *lazyReader) release() {
	if r.br != nil {
		r.br.Reset(nil)
		readBufs.Put(r.br)
		r.br = nil
	}
}

var _ io.ByteReader = (*lazyReader)(nil)
