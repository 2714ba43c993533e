// Package broker is the reference MQTT 3.1.1 broker of mqttfleet: TCP,
// WebSocket and TLS listeners, clean and persistent sessions, QoS 0/1/2 in
// both directions, retained messages, wills, keepalive, auth and ACLs, $SYS
// topics, Prometheus metrics and an event for every decision it makes.
//
// It is embeddable: a test starts it on 127.0.0.1:0, reads Addr and follows
// its events through Config.Events. Close joins every goroutine it started.
//
// Data flow per connection:
//
//	socket --> reader goroutine --decode--> handle ----route----> session.deliver
//	                                          |                        |
//	                                          v                        v
//	                                   conn.out (bounded) <------ inflight/queue
//	                                          |
//	                           writer goroutine (started on demand) --> socket
//
// Lock order is documented in locking.md.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/auth"
	"github.com/mqttfleet/mqttfleet/broker/store"
	"github.com/mqttfleet/mqttfleet/broker/topictree"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/netpark"
)

// Broker is an MQTT broker. Create it with New, then Start it or feed it
// connections with ServeConn; Close stops it.
type Broker struct {
	cfg  Config
	log  *slog.Logger
	sink events.Sink
	auth *auth.Auth
	// bridges are set by Start (startBridges) and read-only afterwards.
	bridges []BridgeRunner

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the broker starts

	mu        sync.RWMutex // guards the fields below; see locking.md
	sessions  map[string]*session
	conns     map[*conn]struct{}
	listeners []*listener
	closed    bool
	started   bool
	expiry    expiryQueue // MQTT 5 sessions waiting to expire (expiry.go)

	subMu sync.RWMutex // guards tree
	tree  *topictree.Tree

	retMu    sync.Mutex // guards retained
	retained *topictree.Retained

	retExpiry map[string]retainedExpiry // guarded by retMu: MQTT 5 Message Expiry of retained messages (v5.go)

	start     time.Time
	nextAnon  atomic.Uint64
	connected atomic.Int64 // connections past CONNACK 0
	slots     atomic.Int64 // max_connections slots held, reserved before CONNACK (only with a limit)
	msgIn     atomic.Uint64
	msgOut    atomic.Uint64
	dropped   atomic.Uint64
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
	limitHits [numLimits]atomic.Uint64 // refusals per configured limit

	// store keeps durable state with persistence on (persist.go); nil
	// when off. recovered is what it held at start.
	store     *store.Store
	recovered RecoveryStats

	metrics *metricsServer
	parker  *netpark.Poller // idle connections (park.go); nil where netpark is unsupported
	stacks  stackRelease    // frees exited goroutines' stacks after a wave of parks
}

// Stats is a snapshot of the broker's counters.
type Stats struct {
	ClientsConnected int           // connections that completed CONNECT
	Connections      int           // open sockets, connected or not
	Sessions         int           // sessions held, online or not
	MessagesReceived uint64        // PUBLISH packets received from clients
	MessagesSent     uint64        // PUBLISH packets written to clients
	MessagesDropped  uint64        // messages dropped (queue full, not authorized, slow consumer)
	BytesReceived    uint64        // bytes read from client sockets, handshake and partial packets included
	Retained         int           // retained messages stored
	Subscriptions    int           // subscriptions in the topic tree
	Parked           int           // idle connections parked in the Poller (no goroutine)
	Uptime           time.Duration // since New
}

// New validates cfg and returns a broker that is not yet listening.
func New(cfg Config) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	if len(cfg.Bridges) > 0 && bridgeStarter == nil {
		return nil, fmt.Errorf("broker config: %w", errNoBridges)
	}
	cfg = cfg.withDefaults()
	a, err := auth.Load(cfg.Auth)
	if err != nil {
		return nil, fmt.Errorf("broker auth: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sink := cfg.Events
	if sink == nil {
		sink = events.Discard
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg:      cfg,
		log:      log,
		sink:     sink,
		auth:     a,
		ctx:      ctx,
		cancel:   cancel,
		sessions: map[string]*session{},
		conns:    map[*conn]struct{}{},
		tree:     topictree.New(),
		retained: topictree.NewRetained(),
		start:    time.Now(),
	}
	if p, err := netpark.New(); err == nil {
		b.parker = p // its goroutine runs only while a connection is parked
	} else {
		log.Debug("idle connections keep their goroutine", "reason", err)
	}
	if cfg.Persistence.Enabled {
		if err := b.openStore(); err != nil {
			if b.parker != nil {
				_ = b.parker.Close()
			}
			b.cancel()
			b.mu.Lock()
			b.closed = true
			b.mu.Unlock()
			b.wg.Wait() // a restored session's expiry goroutine
			return nil, err
		}
	}
	return b, nil
}

// Start binds every listener, starts the metrics endpoint and the $SYS
// publisher, and returns once all of them accept. On error the broker is
// closed, as by Close: nothing is left running or open (listeners, the
// Poller's epoll descriptor), so a caller that just returns the error leaks
// nothing.
func (b *Broker) Start() error {
	b.mu.Lock()
	if b.closed || b.started {
		b.mu.Unlock()
		return errors.New("broker start: already started or closed")
	}
	b.started = true
	b.mu.Unlock()
	var ls []*listener
	var m *metricsServer
	fail := func(err error) error {
		for _, l := range ls {
			l.close()
		}
		if m != nil {
			m.close()
		}
		_ = b.Close() // releases the rest: the epoll descriptor New made, any served connection
		return err
	}
	for _, lc := range b.cfg.Listeners {
		l, err := b.listen(lc)
		if err != nil {
			return fail(fmt.Errorf("broker start: %w", err))
		}
		ls = append(ls, l)
	}
	if b.cfg.MetricsAddr != "" {
		var err error
		if m, err = b.startMetrics(b.cfg.MetricsAddr); err != nil {
			return fail(fmt.Errorf("broker start: %w", err))
		}
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fail(errors.New("broker start: closed while starting"))
	}
	b.metrics = m // under b.mu: Close reads it after taking b.mu
	b.listeners = ls
	for _, l := range ls {
		b.goAccept(l)
	}
	if b.metrics != nil {
		b.wg.Add(1)
		go b.metrics.serve(&b.wg)
	}
	if b.cfg.SysInterval > 0 {
		b.wg.Add(1)
		go b.sysLoop()
	}
	b.mu.Unlock()
	b.startBridges()
	for _, l := range ls {
		b.log.Info("listening", "name", l.cfg.Name, "type", l.cfg.Type, "addr", l.url)
	}
	return nil
}

// Addrs returns the URL of every started listener, in configuration order.
func (b *Broker) Addrs() []ListenerAddr {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]ListenerAddr, 0, len(b.listeners))
	for _, l := range b.listeners {
		out = append(out, ListenerAddr{Name: l.cfg.Name, Type: l.cfg.Type, Addr: l.url})
	}
	return out
}

// Addr returns the URL of the first listener of type typ, or "".
func (b *Broker) Addr(typ string) string {
	for _, a := range b.Addrs() {
		if a.Type == typ {
			return a.Addr
		}
	}
	return ""
}

// MetricsAddr returns the host:port of the /metrics endpoint, or "".
func (b *Broker) MetricsAddr() string {
	if b.metrics == nil {
		return ""
	}
	return b.metrics.ln.Addr().String()
}

// ServeConn serves an already-accepted connection (an in-memory pipe, a
// netem link) in a goroutine of the broker and returns at once. The broker
// owns conn from then on and closes it.
func (b *Broker) ServeConn(nc net.Conn) {
	b.serve(nc, nc.RemoteAddr().String())
}

// serve registers a connection and starts its reader goroutine.
func (b *Broker) serve(nc net.Conn, remote string) {
	c := newConn(b, nc, remote)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = nc.Close()
		return
	}
	b.conns[c] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	go c.run()
}

// Close stops the listeners, closes every connection (publishing wills with
// cause shutdown), stops the metrics endpoint and $SYS publisher, and waits
// for every goroutine the broker started.
func (b *Broker) Close() error {
	b.stopBridges() // their connections end as clients' do, before the rest
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	// Counted until the Poller is closed: wakes until then add goroutines,
	// and a concurrent Close's Wait must not see zero in between.
	b.wg.Add(1)
	ls := b.listeners
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	var errs []error
	for _, l := range ls {
		if err := l.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if b.metrics != nil {
		b.metrics.close()
	}
	// Connections first: shutdown takes a parked one back from the Poller
	// and resumes it before closing its socket, which needs the Poller
	// still open.
	for _, c := range conns {
		c.shutdown(events.CauseShutdown, "", "broker closed")
	}
	b.cancel()
	if b.parker != nil {
		// Nothing can park any more (every connection has an end reason), so
		// after Close no wake will come: it waits for the Poller's goroutine
		// and wakes whatever is still parked, each wake adding to b.wg, and
		// only then may Wait run.
		if err := b.parker.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	b.wg.Done()
	b.wg.Wait()
	// Every goroutine that queues writes has returned: the last ones (the
	// sessions detached above) are committed now.
	if err := b.closeStore(); err != nil {
		errs = append(errs, err)
	}
	b.log.Info("broker closed")
	return errors.Join(errs...)
}

// Stats returns a snapshot of the broker's counters.
func (b *Broker) Stats() Stats {
	b.mu.RLock()
	nsess, nconns := len(b.sessions), len(b.conns)
	b.mu.RUnlock()
	b.subMu.RLock()
	nsubs := b.tree.Count()
	b.subMu.RUnlock()
	b.retMu.Lock()
	nret := b.retained.Len()
	b.retMu.Unlock()
	return Stats{
		ClientsConnected: int(b.connected.Load()),
		Connections:      nconns,
		Sessions:         nsess,
		MessagesReceived: b.msgIn.Load(),
		MessagesSent:     b.msgOut.Load(),
		MessagesDropped:  b.dropped.Load(),
		BytesReceived:    b.bytesIn.Load(),
		Retained:         nret,
		Subscriptions:    nsubs,
		Parked:           b.parkedCount(),
		Uptime:           time.Since(b.start),
	}
}

// emit stamps e as a broker event and hands it to the sink. Without a sink
// it costs nothing, not even the clock read (drops can be millions a second).
func (b *Broker) emit(e events.Event) {
	if b.cfg.Events == nil {
		return
	}
	b.sink.Emit(events.Stamp(e, events.SourceBroker))
}

// drop counts a dropped message and reports why.
func (b *Broker) drop(clientID, topic string, qos byte, cause events.Cause, detail string) {
	b.dropped.Add(1)
	b.emit(events.Event{Kind: events.Drop, ClientID: clientID, Topic: topic, QoS: qos, Cause: cause, Detail: detail})
}
