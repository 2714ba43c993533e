package adversary

import (
	"bufio"
	"errors"
	"fmt"
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
	Logger *slog.Logger
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
	s := &Server{cfg: cfg, ln: ln, sink: events.Multi(cfg.Events), log: cfg.Logger, conns: map[*conn]struct{}{}}
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
	s  *Server
	nc net.Conn

	wmu     sync.Mutex // serialises writes
	mu      sync.Mutex // guards the fields below
	id      string
	version byte
	counts  map[string]int // occurrences of each trigger so far
	subs    map[string]byte
	nextID  uint16
	held    []packet.Packet // acknowledgements held by reorder
	timers  []*time.Timer
	closed  bool
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
		p, err := packet.ReadPacket(r, packet.Options{Version: v})
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("adversary read", "client", c.id, "err", err)
			}
			return
		}
		c.event(events.PacketIn, p)
		if !c.handle(p) {
			return
		}
	}
}

// action is the script's action for the next occurrence of trigger, or nil.
func (c *conn) action(trigger string) *Action {
	c.mu.Lock()
	c.counts[trigger]++
	n, id := c.counts[trigger], c.id
	c.mu.Unlock()
	for i := range c.s.cfg.Script.Actions {
		a := &c.s.cfg.Script.Actions[i]
		if a.On == trigger && (a.Nth == 0 || a.Nth == n) && (a.Client == "" || a.Client == id) {
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
		c.mu.Lock()
		c.id, c.version = p.ClientID, p.ProtocolLevel
		c.mu.Unlock()
		a := c.action(OnConnect)
		if a != nil && a.Do == Refuse {
			c.write(&packet.Connack{ReturnCode: byte(a.Code)})
			return false
		}
		if !c.answer(a, &packet.Connack{}) {
			return false
		}
		if a != nil && a.Do == Unexpected {
			c.write(&packet.Connack{})
		}
		if a != nil && a.Do == Takeover {
			c.after(a.Delay, func() {
				if c.v5() {
					c.write(&packet.Disconnect{ReasonCode: 0x8E}) // Session taken over
				}
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
		return c.answer(c.action(OnSubscribe), &packet.Suback{PacketID: p.PacketID, ReturnCodes: codes})
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
		if rec, ok := p.(*packet.Pubrec); ok {
			c.write(&packet.Pubrel{PacketID: rec.PacketID})
		}
	case *packet.Disconnect:
		return false
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
	c.event(events.PacketOut, p)
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
