package adversary

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on (default 127.0.0.1:0).
	Addr string
	// Script is what the server does wrong.
	Script Script
	// Events receives every packet in and out (packet_in, packet_out) and
	// every misbehaviour (fault_injected, Fault "adversary_<do>"); source broker.
	Events events.Sink
	// Record, when set, receives every frame in and out with its exact
	// bytes and the end of every connection, in order per connection: the
	// wire trace the client conformance suite grades (clientconf).
	Record func(Record)
	Logger *slog.Logger
}

// Record directions.
const (
	DirIn  = "in"  // a frame the client sent
	DirOut = "out" // a frame the server sent
	// DirClosed is the end of the connection: Err says who ended it
	// (ErrClientClosed when the client closed or reset it).
	DirClosed = "closed"
)

// ErrClientClosed is a Record's Err when the client ended the connection;
// ErrServerClosed when the server did (a script action, a protocol error
// in the client's bytes, or Close).
var (
	ErrClientClosed = errors.New("closed by the client")
	ErrServerClosed = errors.New("closed by the server")
)

// Record is one frame on the wire, or the end of a connection.
type Record struct {
	Time time.Time
	// Conn numbers the server's connections from 1 in accept order; Nth is
	// the connection's number among those with the same client ID.
	Conn, Nth int
	ClientID  string
	Dir       string
	// Raw is the frame's bytes exactly as they crossed the wire; Packet is
	// its decoding, nil when Err says why it did not decode.
	Raw    []byte
	Packet packet.Packet
	Err    error
}

// Server is the adversarial broker. Every connection runs in its own
// goroutine; Close stops the listener, closes every connection and waits
// for all of them.
type Server struct {
	cfg  Config
	ln   net.Listener
	sink events.Sink
	log  *slog.Logger

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*conn]struct{}
	nconns int            // connections accepted so far
	seen   map[string]int // connections per client ID so far
	closed bool
}

// Start checks the script and starts listening.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Script.Check(); err != nil {
		return nil, fmt.Errorf("adversary: %w", err)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("adversary: listen: %w", err)
	}
	s := &Server{cfg: cfg, ln: ln, sink: events.Multi(cfg.Events), log: cfg.Logger, conns: map[*conn]struct{}{}, seen: map[string]int{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listener's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is tcp://host:port.
func (s *Server) URL() string { return "tcp://" + s.Addr() }

// Close stops the server and waits for its connections.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range cs {
		c.end()
		_ = c.nc.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &conn{s: s, nc: nc, counts: map[string]int{}, version: packet.V311}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.nconns++
		c.seq = s.nconns
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.run()
	}
}

func (s *Server) emit(e events.Event) {
	e.Source = events.SourceBroker
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.sink.Emit(e)
}

// Publish delivers a message from the server itself to every connection
// subscribed to its topic, as if another client had published it.
func (s *Server) Publish(topic string, qos byte, payload []byte) {
	s.route(&packet.Publish{Topic: topic, QoS: qos, Payload: payload})
}

func (s *Server) record(r Record) {
	if s.cfg.Record != nil {
		if r.Time.IsZero() {
			r.Time = time.Now()
		}
		s.cfg.Record(r)
	}
}

// takeOver ends every other connection with c's client ID, as a broker
// must when a new connection uses an ID already connected [MQTT-3.1.4-2]:
// two clients sharing an ID show their kick loop here too.
func (s *Server) takeOver(c *conn) {
	id := c.clientID()
	s.mu.Lock()
	var old []*conn
	for o := range s.conns {
		if o != c && o.clientID() == id {
			old = append(old, o)
		}
	}
	s.mu.Unlock()
	for _, o := range old {
		if o.v5() {
			o.write(&packet.Disconnect{ReasonCode: 0x8E}) // Session taken over
		}
		s.emit(events.Event{Kind: events.Takeover, ClientID: id})
		o.end()
		_ = o.nc.Close()
	}
}

// route delivers p to every other connection subscribed to its topic.
func (s *Server) route(p *packet.Publish) {
	s.mu.Lock()
	var to []*conn
	for c := range s.conns {
		if _, ok := c.matches(p.Topic); ok {
			to = append(to, c)
		}
	}
	s.mu.Unlock()
	for _, c := range to {
		c.deliver(p)
	}
}

// conn is one client connection.
type conn struct {
	s   *Server
	nc  net.Conn
	seq int // the server's connection number

	wmu      sync.Mutex // serialises writes
	mu       sync.Mutex // guards the fields below
	id       string
	nth      int  // this connection's number among its client ID's
	ended    bool // the server ended the connection on purpose
	version  byte
	counts   map[string]int // occurrences of each trigger so far
	subs     map[string]byte
	nextID   uint16
	held     []packet.Packet // acknowledgements held by reorder
	released map[uint16]bool // QoS 2 deliveries whose PUBREL went out
	timers   []*time.Timer
	closed   bool
}

func (c *conn) run() {
	defer c.s.wg.Done()
	defer func() {
		c.mu.Lock()
		c.closed = true
		for _, t := range c.timers {
			t.Stop()
		}
		c.mu.Unlock()
		_ = c.nc.Close()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	}()
	r := bufio.NewReader(c.nc)
	for {
		c.mu.Lock()
		v := c.version
		c.mu.Unlock()
		raw, err := readFrame(r)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.end()
			}
			c.closedBy(err)
			return
		}
		p, _, err := packet.Decode(raw, packet.Options{Version: v})
		c.rec(DirIn, raw, p, err)
		if err != nil {
			// A broker closes on a malformed packet [MQTT-4.8.0-1]; the
			// record keeps the bytes and the statement they break.
			c.s.log.Debug("adversary read", "client", c.id, "err", err)
			c.end()
			c.closedBy(err)
			return
		}
		c.event(events.PacketIn, p)
		if !c.handle(p) {
			c.end()
			c.closedBy(nil)
			return
		}
	}
}

// readFrame reads one whole frame (fixed header, remaining length, body).
func readFrame(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	frame := []byte{first}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		frame = append(frame, b)
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return frame, errors.New("remaining length longer than 4 bytes")
		}
		mult *= 128
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	return append(frame, body...), nil
}

// end marks that the server is closing the connection on purpose.
func (c *conn) end() {
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
}

// closedBy records the end of the connection: by the server when it chose
// to end it, by the client otherwise.
func (c *conn) closedBy(err error) {
	c.mu.Lock()
	ended := c.ended || c.closed
	c.mu.Unlock()
	why := ErrClientClosed
	if ended {
		why = ErrServerClosed
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !ended {
		why = fmt.Errorf("%w: %v", ErrClientClosed, err)
	}
	c.rec(DirClosed, nil, nil, why)
}

func (c *conn) rec(dir string, raw []byte, p packet.Packet, err error) {
	c.mu.Lock()
	id, nth := c.id, c.nth
	c.mu.Unlock()
	c.s.record(Record{Conn: c.seq, Nth: nth, ClientID: id, Dir: dir, Raw: raw, Packet: p, Err: err})
}

// action is the script's action for the next occurrence of trigger, or nil.
func (c *conn) action(trigger string) *Action {
	c.mu.Lock()
	c.counts[trigger]++
	n, id, nth := c.counts[trigger], c.id, c.nth
	c.mu.Unlock()
	for i := range c.s.cfg.Script.Actions {
		a := &c.s.cfg.Script.Actions[i]
		if a.On == trigger && (a.Nth == 0 || a.Nth == n) && (a.Client == "" || a.Client == id) && (a.Conn == 0 || a.Conn == nth) {
			c.s.emit(events.Event{Kind: events.FaultInjected, ClientID: id, Fault: "adversary_" + a.Do,
				Detail: fmt.Sprintf("%s (occurrence %d)", a, n)})
			return a
		}
	}
	return nil
}

// answer sends ans as the action says; it reports false when the
// connection is to end.
func (c *conn) answer(a *Action, ans packet.Packet) bool {
	if a == nil {
		c.write(ans)
		return true
	}
	switch a.Do {
	case Delay:
		c.after(a.Delay, func() { c.write(ans) })
	case Withhold:
	case Close:
		return false
	case CloseAfter:
		c.write(ans)
		return false
	default:
		c.write(ans)
	}
	return true
}

// after runs f after d unless the connection ends first.
func (c *conn) after(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.timers = append(c.timers, time.AfterFunc(d, func() {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if !closed {
			f()
		}
	}))
}

func (c *conn) handle(p packet.Packet) bool {
	switch p := p.(type) {
	case *packet.Connect:
		c.s.mu.Lock()
		c.s.seen[p.ClientID]++
		nth := c.s.seen[p.ClientID]
		c.s.mu.Unlock()
		c.mu.Lock()
		c.id, c.version, c.nth = p.ClientID, p.ProtocolLevel, nth
		c.mu.Unlock()
		a := c.action(OnConnect)
		if a != nil && a.Do == Refuse {
			c.write(&packet.Connack{ReturnCode: byte(a.Code)})
			return false
		}
		c.s.takeOver(c)
		// A persistent session this server saw before is present: the
		// client then resends what it had in flight [MQTT-4.4.0-1].
		present := !p.CleanSession && nth > 1
		if !c.answer(a, &packet.Connack{SessionPresent: present}) {
			return false
		}
		if a != nil && a.Do == Send {
			c.writeRaw(a.Bytes)
		}
		if a != nil && a.Do == Unexpected {
			c.write(&packet.Connack{})
		}
		if a != nil && a.Do == Takeover {
			c.after(a.Delay, func() {
				if c.v5() {
					c.write(&packet.Disconnect{ReasonCode: 0x8E}) // Session taken over
				}
				c.end()
				_ = c.nc.Close()
			})
		}
	case *packet.Pingreq:
		return c.answer(c.action(OnPingreq), &packet.Pingresp{})
	case *packet.Subscribe:
		codes := make([]byte, len(p.Subscriptions))
		c.mu.Lock()
		if c.subs == nil {
			c.subs = map[string]byte{}
		}
		for i, s := range p.Subscriptions {
			c.subs[s.Filter] = s.QoS
			codes[i] = s.QoS
		}
		c.mu.Unlock()
		a := c.action(OnSubscribe)
		if !c.answer(a, &packet.Suback{PacketID: p.PacketID, ReturnCodes: codes}) {
			return false
		}
		if a != nil && a.Do == Send {
			c.writeRaw(a.Bytes)
		}
	case *packet.Unsubscribe:
		c.mu.Lock()
		for _, f := range p.Filters {
			delete(c.subs, f)
		}
		c.mu.Unlock()
		c.write(&packet.Unsuback{PacketID: p.PacketID, ReasonCodes: make([]byte, len(p.Filters))})
	case *packet.Publish:
		a := c.action(OnPublish)
		if a != nil && a.Do == Close {
			return false
		}
		var ack packet.Packet
		switch p.QoS {
		case 1:
			ack = &packet.Puback{PacketID: p.PacketID}
		case 2:
			ack = &packet.Pubrec{PacketID: p.PacketID}
		}
		c.s.route(p)
		if ack == nil {
			return a == nil || a.Do != CloseAfter
		}
		if a != nil && a.Do == Reorder {
			c.mu.Lock()
			c.held = append(c.held, ack)
			var out []packet.Packet
			if len(c.held) >= a.Count {
				for i := len(c.held) - 1; i >= 0; i-- {
					out = append(out, c.held[i])
				}
				c.held = nil
			}
			c.mu.Unlock()
			for _, x := range out {
				c.write(x)
			}
			return true
		}
		return c.answer(a, ack)
	case *packet.Pubrel:
		return c.answer(c.action(OnPubrel), &packet.Pubcomp{PacketID: p.PacketID})
	case *packet.Puback, *packet.Pubrec, *packet.Pubcomp:
		// One PUBREL per QoS 2 delivery in flight: a client that answers
		// a duplicate delivery with a second PUBREC gets no second PUBREL.
		switch p := p.(type) {
		case *packet.Pubrec:
			c.mu.Lock()
			if c.released == nil {
				c.released = map[uint16]bool{}
			}
			first := !c.released[p.PacketID]
			c.released[p.PacketID] = true
			c.mu.Unlock()
			if first {
				c.write(&packet.Pubrel{PacketID: p.PacketID})
			}
		case *packet.Pubcomp:
			c.mu.Lock()
			delete(c.released, p.PacketID)
			c.mu.Unlock()
		}
	case *packet.Disconnect:
		// Leave the close to the client, as the standard asks of it
		// [MQTT-3.14.4-1], so a grader sees whether it does; a client
		// still there after 3 s is closed.
		_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	}
	return true
}

func (c *conn) v5() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version == packet.V5
}

// matches reports whether the connection subscribed to a filter matching
// topic, with the highest QoS of those filters.
func (c *conn) matches(topic string) (byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, ok := byte(0), false
	for f, q := range c.subs {
		if packet.MatchTopic(f, topic) {
			best, ok = max(best, q), true
		}
	}
	return best, ok
}

// deliver sends p to this client at the lower of its QoS and the
// subscription's, as a broker would, and applies a deliver action.
func (c *conn) deliver(p *packet.Publish) {
	q, ok := c.matches(p.Topic)
	if !ok {
		return
	}
	out := &packet.Publish{Topic: p.Topic, QoS: min(p.QoS, q), Payload: append([]byte(nil), p.Payload...)}
	if out.QoS > 0 {
		c.mu.Lock()
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		out.PacketID = c.nextID
		c.mu.Unlock()
	}
	a := c.action(OnDeliver)
	if a != nil && a.Do == Close {
		c.end()
		_ = c.nc.Close()
		return
	}
	c.write(out)
	if a != nil && a.Do == Duplicate && out.QoS > 0 {
		dup := *out
		dup.Dup = true
		c.write(&dup)
	}
}

// write encodes p at the connection's version; a failed write closes it.
func (c *conn) write(p packet.Packet) {
	c.mu.Lock()
	v := c.version
	c.mu.Unlock()
	c.wmu.Lock()
	err := packet.Encode(c.nc, p, v)
	c.wmu.Unlock()
	if err != nil {
		_ = c.nc.Close()
		return
	}
	if c.s.cfg.Record != nil {
		raw, _ := packet.Append(nil, p, v)
		c.rec(DirOut, raw, p, nil)
	}
	c.event(events.PacketOut, p)
}

// writeRaw writes b as it is: bytes no encoder would produce.
func (c *conn) writeRaw(b []byte) {
	c.wmu.Lock()
	_, err := c.nc.Write(b)
	c.wmu.Unlock()
	if err != nil {
		_ = c.nc.Close()
		return
	}
	c.rec(DirOut, b, nil, errors.New("raw bytes from a send action"))
	c.s.emit(events.Event{Kind: events.PacketOut, ClientID: c.clientID(), Detail: fmt.Sprintf("raw % X", b)})
}

func (c *conn) clientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

func (c *conn) event(kind events.Kind, p packet.Packet) {
	c.mu.Lock()
	id := c.id
	c.mu.Unlock()
	e := events.Event{Kind: kind, ClientID: id, Detail: p.Type().String()}
	switch p := p.(type) {
	case *packet.Publish:
		e.Topic, e.QoS, e.Dup, e.PacketID, e.Size = p.Topic, p.QoS, p.Dup, p.PacketID, len(p.Payload)
	case *packet.Puback:
		e.PacketID = p.PacketID
	case *packet.Pubrec:
		e.PacketID = p.PacketID
	case *packet.Pubrel:
		e.PacketID = p.PacketID
	case *packet.Pubcomp:
		e.PacketID = p.PacketID
	case *packet.Connack:
		e.Code = int(p.ReturnCode)
	case *packet.Connect:
		e.ClientID, e.KeepAlive, e.Clean = p.ClientID, int(p.KeepAlive), p.CleanSession
	case *packet.Disconnect:
		e.Code = int(p.ReasonCode)
	}
	c.s.emit(e)
}
