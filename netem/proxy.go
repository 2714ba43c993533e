package netem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	Listen      string        // address of the default listener, e.g. "127.0.0.1:0"
	Upstream    string        // the broker every link dials
	Events      events.Sink   // LinkOpened/LinkClosed and FaultInjected/FaultRemoved; nil discards
	Seed        int64         // chooses which links a fault's Share covers, and jitter samples
	Logger      *slog.Logger  // nil uses slog.Default()
	DialTimeout time.Duration // upstream dial timeout; 0 means 5 s
}

// Proxy is the user-space fault proxy. Every connection accepted on one of its
// listeners becomes a link to Upstream; faults are applied to links by Selector.
type Proxy struct {
	cfg  ProxyConfig
	log  *slog.Logger
	sink events.Sink

	ctx    context.Context // ends at Close; stops schedules and pending dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the proxy started

	mu        sync.Mutex // guards everything below; taken before any pipe.mu
	started   bool
	closed    bool
	listeners []*listener
	links     map[string]*link
	faults    []*faultEntry // in Apply order, so new links get faults in a fixed order
	nextLink  uint64
	nextFault uint64
	ordinals  map[string]int    // links opened so far per group
	pending   map[string]string // source port -> group, for links made by Dial
	// closedCounts keeps what the packet and NAT faults did on links that
	// have closed, so a run's totals survive reconnects.
	closedCounts []LinkCounts

	pipes chan kpipe // idle splice pipes for reuse
}

// listener is one accepting socket and the group its links join ("" = by source IP).
type listener struct {
	ln    *net.TCPListener
	group string
}

// NewProxy returns a proxy that is not listening yet; call Start.
func NewProxy(cfg ProxyConfig) *Proxy {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		cfg: cfg, log: cfg.Logger.With("component", "netem"), sink: events.Multi(cfg.Events),
		ctx: ctx, cancel: cancel,
		links: map[string]*link{}, ordinals: map[string]int{}, pending: map[string]string{},
		pipes: make(chan kpipe, pipePoolSize),
	}
}

// Start opens the default listener on cfg.Listen and starts accepting.
func (p *Proxy) Start() error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return errors.New("netem: proxy already started")
	}
	p.started = true
	p.mu.Unlock()
	if p.cfg.Upstream == "" {
		return errors.New("netem: start proxy: no upstream address")
	}
	_, err := p.listen(p.cfg.Listen, "")
	return err
}

// Addr returns the default listener's address, or "" before Start.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listeners {
		if l.group == "" {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// ListenGroup opens a listener on the default listener's IP and a free port;
// every link accepted there belongs to group name. It returns the address.
func (p *Proxy) ListenGroup(name string) (string, error) {
	if name == "" {
		return "", errors.New("netem: listen group: empty name")
	}
	host := "127.0.0.1"
	if a := p.Addr(); a != "" {
		host, _, _ = net.SplitHostPort(a)
	}
	return p.listen(net.JoinHostPort(host, "0"), name)
}

func (p *Proxy) listen(addr, group string) (string, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(p.ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("netem: listen on %s for group %q: %w", addr, group, err)
	}
	l := &listener{ln: ln.(*net.TCPListener), group: group}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		ln.Close()
		return "", errors.New("netem: listen: proxy closed")
	}
	p.listeners = append(p.listeners, l)
	p.goroutine(func() { p.accept(l) })
	p.log.Info("listening", "addr", ln.Addr().String(), "group", group, "upstream", p.cfg.Upstream)
	return ln.Addr().String(), nil
}

// goroutine runs f as a goroutine that Close waits for. Callers hold p.mu or
// run inside another such goroutine, so Add never races with Wait.
func (p *Proxy) goroutine(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

func (p *Proxy) accept(l *listener) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry rather than spin.
			p.log.Warn("accept", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-p.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.goroutine(func() { p.serve(c, l.group) })
		p.mu.Unlock()
	}
}

// serve dials upstream for an accepted connection, registers the link, and
// then becomes the link's upstream reader.
func (p *Proxy) serve(c *net.TCPConn, group string) {
	remote := c.RemoteAddr().String()
	d := net.Dialer{Timeout: p.cfg.DialTimeout}
	sc, err := d.DialContext(p.ctx, "tcp", p.cfg.Upstream)
	if err != nil {
		// The device sees what it would see from a broker that refuses: an RST.
		c.SetLinger(0)
		c.Close()
		p.log.Warn("dial upstream", "remote", remote, "upstream", p.cfg.Upstream, "err", err)
		p.sink.Emit(events.Stamp(events.Event{Kind: events.LinkClosed, Remote: remote, Group: group,
			Cause: events.CauseIOError, Detail: fmt.Sprintf("dial upstream %s: %v", p.cfg.Upstream, err)}, events.SourceNetem))
		return
	}
	l := p.register(c, sc.(*net.TCPConn), group)
	if l == nil {
		return
	}
	p.goroutine(l.down.run)
	l.up.run()
}

// register creates the link, emits LinkOpened and attaches every active
// fault whose selector matches it, all before a byte is forwarded.
func (p *Proxy) register(c, sc *net.TCPConn, group string) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		sc.Close()
		return nil
	}
	remote := c.RemoteAddr().String()
	if group == "" {
		if _, port, err := net.SplitHostPort(remote); err == nil {
			if g, ok := p.pending[port]; ok {
				group = g
				delete(p.pending, port)
			}
		}
	}
	if group == "" {
		group, _, _ = net.SplitHostPort(remote)
	}
	p.nextLink++
	p.ordinals[group]++
	l := newLink(p, "l"+strconv.FormatUint(p.nextLink, 10), group, p.ordinals[group], c, sc)
	p.links[l.id] = l
	p.sink.Emit(events.Stamp(events.Event{Kind: events.LinkOpened, Link: l.id, Group: group, Remote: remote,
		Detail: "upstream " + sc.RemoteAddr().String()}, events.SourceNetem))
	for _, e := range p.faults {
		if e.active && e.sel.matches(l) {
			p.attach(e, l)
		}
	}
	return l
}

// unregister forgets a finished link and the faults attached to it.
func (p *Proxy) unregister(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.links, l.id)
	if lc := l.counts(); !lc.Up.Zero() || !lc.Down.Zero() {
		lc.Closed = true
		p.closedCounts = append(p.closedCounts, lc)
	}
	for _, e := range p.faults {
		if !e.links[l] {
			continue
		}
		delete(e.links, l)
		// The fault stops acting on this link with the link (a CloseAfter
		// fires that way): close its window there, or a report would show it
		// on until the end of the run. The fault itself stays applied to its
		// other and future links.
		p.emitFault(events.FaultRemoved, e, l)
	}
}

// Close stops accepting, ends every schedule, closes every link and waits for
// every goroutine the proxy started.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	var err error
	for _, l := range p.listeners {
		if cerr := l.ln.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("netem: close listener: %w", cerr)
		}
	}
	links := make([]*link, 0, len(p.links))
	for _, l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.abort(false, events.CauseShutdown, "proxy closed")
	}
	p.wg.Wait()
	p.closePipes()
	return err
}
