// Package bridge runs the reference broker's bridges (docs/broker.md
// "Bridges"); importing it registers it with package broker, which starts
// one Bridge per configured bridge (broker.Config.Bridges).
package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// A bridge is two client connections
// made by the broker itself, as Mosquitto's are:
//
//   - local: an in-memory pipe into this broker (ServeConn), marked as a
//     bridge so its subscriptions get No Local and Retain As Published. It
//     subscribes to every `out` rule's local filter; what it receives is put
//     on the bridge's queue for the remote. What comes from the remote it
//     publishes here.
//   - remote: a TCP (or TLS) connection to one of the configured addresses,
//     3.1.1 with the try_private bit or 5.0 with No Local, subscribed to
//     every `in` rule's remote filter. A sender goroutine drains the queue
//     into it, keeping up to bridgeWindow QoS 1/2 messages in flight and
//     putting back, in order, those not acknowledged when the link breaks
//     (at least once: the remote may see them twice).
//
// While the remote is down messages wait on the queue, at most max_queued;
// past that the oldest are dropped (counted, events.Drop). Every link change
// and every message forwarded, queued while down or dropped is an event with
// Link set to the bridge's name; the retained state topic says 1 or 0.

// bridgeWindow is how many QoS 1/2 messages the sender keeps in flight.
const bridgeWindow = 64

type bridgeMsg struct {
	topic   string
	qos     byte
	retain  bool
	payload []byte
}

func init() { broker.RegisterBridges(start) }

// Bridge is one running bridge.
type Bridge struct {
	b   *broker.Broker
	cfg bridgeconf.Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // cap 1: the queue grew

	mu     sync.Mutex
	queue  []bridgeMsg
	local  *client.Client
	remote *client.Client
	next   int // index of the address to try next
	st     broker.BridgeStats
}

// start starts a bridge of a started broker.
func start(b *broker.Broker, cfg bridgeconf.Config) broker.BridgeRunner {
	ctx, cancel := context.WithCancel(context.Background())
	br := &Bridge{b: b, cfg: cfg, log: b.Logger().With("bridge", cfg.Name), ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), st: broker.BridgeStats{Name: cfg.Name}}
	if cfg.Notify() {
		br.notifyLocal(false)
	}
	// The local side is up before Start returns, so nothing published on
	// an out topic after that is missed (it is an in-memory pipe: quick).
	c, err := br.connectLocal()
	if err != nil {
		br.log.Warn("bridge local connection failed", "err", err)
	}
	br.wg.Add(2)
	go br.runLocal(c)
	go br.runRemote()
	return br
}

// Stop stops the bridge and waits for its goroutines.
func (br *Bridge) Stop() {
	br.cancel()
	br.mu.Lock()
	l, r := br.local, br.remote
	br.mu.Unlock()
	for _, c := range []*client.Client{l, r} {
		if c != nil {
			_ = c.Close()
		}
	}
	br.wg.Wait()
}

// Stats returns the bridge's state and counters.
func (br *Bridge) Stats() broker.BridgeStats {
	br.mu.Lock()
	defer br.mu.Unlock()
	s := br.st
	s.Queued = len(br.queue)
	return s
}

func (br *Bridge) emit(e events.Event) {
	e.Link = br.cfg.Name
	br.b.Emit(e)
}

// notifyLocal sets the retained state topic here: "1" up, "0" down.
func (br *Bridge) notifyLocal(up bool) {
	br.b.PublishInternal(br.cfg.NotificationTopic, 1, true, stateByte(up))
}

func stateByte(up bool) []byte {
	if up {
		return []byte("1")
	}
	return []byte("0")
}

// sleep waits d or until the bridge stops; it reports whether to go on.
func (br *Bridge) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-br.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runLocal keeps the local connection: it breaks only when the broker
// closes or another client takes its client ID, so it is made again at once.
func (br *Bridge) runLocal(c *client.Client) {
	defer br.wg.Done()
	for br.ctx.Err() == nil {
		var err error
		if c == nil {
			c, err = br.connectLocal()
		}
		if err != nil {
			if br.ctx.Err() == nil {
				br.log.Warn("bridge local connection failed", "err", err)
				if !br.sleep(100 * time.Millisecond) {
					return
				}
			}
			continue
		}
		select {
		case <-br.ctx.Done():
		case <-c.Done():
		}
		_ = c.Close()
		br.mu.Lock()
		br.local = nil
		br.mu.Unlock()
		c = nil
	}
}

func (br *Bridge) connectLocal() (*client.Client, error) {
	srv, cli := net.Pipe()
	br.b.ServeConn(srv)
	ctx, cancel := context.WithTimeout(br.ctx, 10*time.Second)
	defer cancel()
	c, _, err := client.Connect(ctx, cli, client.Options{
		// Marked as a bridge unless try_private is off: then, as with a
		// remote that does not know the mark, what the bridge publishes here
		// comes back to its own subscriptions (the loop Mosquitto warns of).
		ClientID: br.cfg.LocalClientID, ProtocolLevel: packet.V311, CleanSession: true, Bridge: br.cfg.Private(),
		OnMessage: br.fromLocal,
	})
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	var subs []packet.Subscription
	for _, t := range br.cfg.Topics {
		if t.Carries(bridgeconf.Out) {
			subs = append(subs, packet.Subscription{Filter: t.LocalFilter(), QoS: t.QoS})
		}
	}
	if len(subs) > 0 {
		if _, err := c.Subscribe(ctx, subs...); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	br.mu.Lock()
	br.local = c
	br.mu.Unlock()
	if br.ctx.Err() != nil { // stopBridges ran before local was set
		_ = c.Close()
	}
	return c, nil
}

// fromLocal queues a local message for the remote (reader goroutine of the
// local connection: it must not block).
func (br *Bridge) fromLocal(p *packet.Publish) {
	for _, t := range br.cfg.Topics {
		if !t.Carries(bridgeconf.Out) || !packet.MatchTopic(t.LocalFilter(), p.Topic) {
			continue
		}
		topic, ok := t.ToRemote(p.Topic)
		if !ok {
			continue
		}
		m := bridgeMsg{topic: topic, qos: min(p.QoS, t.QoS), retain: p.Retain, payload: append([]byte(nil), p.Payload...)}
		br.mu.Lock()
		up := br.st.Up
		var dropped *bridgeMsg
		if len(br.queue) >= br.cfg.MaxQueued {
			d := br.queue[0]
			dropped = &d
			br.queue = br.queue[1:]
			br.st.Dropped++
		}
		br.queue = append(br.queue, m)
		br.mu.Unlock()
		if dropped != nil {
			br.emit(events.Event{Kind: events.Drop, Topic: dropped.topic, QoS: dropped.qos, Cause: events.CauseQueueFull,
				Detail: fmt.Sprintf("bridge queue full (max_queued %d): oldest message dropped", br.cfg.MaxQueued)})
		}
		if !up {
			br.emit(events.Event{Kind: events.BridgeQueued, Topic: topic, QoS: m.qos, Direction: bridgeconf.Out})
		}
		select {
		case br.wake <- struct{}{}:
		default:
		}
		return // the first rule that matches carries it, as in Mosquitto
	}
}

// fromRemote publishes a remote message here (reader goroutine of the
// remote connection: PublishAsync does not wait for the local ack).
func (br *Bridge) fromRemote(p *packet.Publish) {
	for _, t := range br.cfg.Topics {
		if !t.Carries(bridgeconf.In) || !packet.MatchTopic(t.RemoteFilter(), p.Topic) {
			continue
		}
		topic, ok := t.ToLocal(p.Topic)
		if !ok {
			continue
		}
		br.mu.Lock()
		l := br.local
		br.mu.Unlock()
		qos := min(p.QoS, t.QoS)
		if l == nil {
			br.emit(events.Event{Kind: events.Drop, Topic: topic, QoS: qos, Cause: events.CauseShutdown, Detail: "bridge local connection down"})
			return
		}
		if err := l.PublishAsync(br.ctx, topic, qos, p.Retain, p.Payload).Err(); err != nil {
			br.emit(events.Event{Kind: events.Drop, Topic: topic, QoS: qos, Cause: events.CauseIOError, Detail: err.Error()})
			return
		}
		br.mu.Lock()
		br.st.ForwardedIn++
		br.mu.Unlock()
		br.emit(events.Event{Kind: events.BridgeForwarded, Topic: topic, QoS: qos, Direction: bridgeconf.In})
		return
	}
}

// runRemote connects to the remote, forwards until the link breaks, and
// tries again with a doubling, jittered wait.
func (br *Bridge) runRemote() {
	defer br.wg.Done()
	wait := br.cfg.RestartTimeout.D()
	tried := 0 // addresses tried since the last success
	for br.ctx.Err() == nil {
		br.mu.Lock()
		addr := br.cfg.Addresses[br.next]
		br.st.Address = addr
		br.mu.Unlock()
		c, err := br.connectRemote(addr)
		if err != nil {
			if br.ctx.Err() != nil {
				return
			}
			br.mu.Lock()
			br.st.Failures++
			br.next = (br.next + 1) % len(br.cfg.Addresses)
			br.mu.Unlock()
			br.emit(events.Event{Kind: events.LinkClosed, Remote: addr, Cause: events.CauseIOError, Detail: "bridge connect failed: " + err.Error()})
			br.log.Info("bridge connect failed", "address", addr, "err", err)
			if tried++; tried < len(br.cfg.Addresses) {
				continue // the next address at once; wait only after a whole round
			}
			tried = 0
			if !br.sleep(jitter(wait)) {
				return
			}
			wait = min(2*wait, br.cfg.RestartMax.D())
			continue
		}
		tried, wait = 0, br.cfg.RestartTimeout.D()
		why := br.forward(c)
		_ = c.Close()
		br.mu.Lock()
		br.remote = nil
		br.st.Up = false
		if br.ctx.Err() == nil {
			br.st.Failures++
		}
		if br.cfg.RoundRobin {
			br.next = (br.next + 1) % len(br.cfg.Addresses)
		} else {
			br.next = 0 // back to the primary first
		}
		br.mu.Unlock()
		if br.cfg.Notify() && !br.b.Closing() {
			br.notifyLocal(false)
		}
		br.emit(events.Event{Kind: events.LinkClosed, Remote: addr, Cause: events.CauseIOError, Detail: "bridge link down: " + why})
		br.log.Info("bridge down", "address", addr, "reason", why)
		if br.ctx.Err() == nil && !br.sleep(jitter(wait)) {
			return
		}
	}
}

// jitter returns d scaled by a random factor in [0.5, 1.5): bridges that
// lost the same remote do not all come back at the same instant.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

func (br *Bridge) connectRemote(addr string) (*client.Client, error) {
	cfg := &br.cfg
	level := packet.V311
	if cfg.Protocol == bridgeconf.MQTTv50 {
		level = packet.V5
	}
	opts := client.Options{
		ClientID: cfg.RemoteClientID, ProtocolLevel: level, CleanSession: cfg.Clean(),
		KeepAlive: cfg.KeepAlive.D(), Username: cfg.RemoteUsername,
		Bridge:    cfg.Private() && level != packet.V5,
		OnMessage: br.fromRemote,
	}
	if cfg.RemotePassword != "" {
		opts.Password = []byte(cfg.RemotePassword)
	}
	if level == packet.V5 && !cfg.Clean() {
		// A persistent session outlives the link: Mosquitto keeps it forever.
		never := uint32(0xFFFFFFFF)
		opts.Props = &packet.Properties{SessionExpiry: &never}
	}
	if cfg.Notify() {
		opts.Will = &packet.Will{Topic: cfg.NotificationTopic, Payload: []byte("0"), QoS: 1, Retain: true}
	}
	scheme := "tcp://"
	if cfg.CAFile != "" {
		tc, err := bridgeTLS(cfg)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig, scheme = tc, "tls://"
	}
	ctx, cancel := context.WithTimeout(br.ctx, 10*time.Second)
	defer cancel()
	c, ack, err := client.Dial(ctx, scheme+addr, opts)
	if err != nil {
		return nil, err
	}
	var subs []packet.Subscription
	for _, t := range cfg.Topics {
		if t.Carries(bridgeconf.In) {
			s := packet.Subscription{Filter: t.RemoteFilter(), QoS: t.QoS}
			if level == packet.V5 && cfg.Private() {
				s.NoLocal, s.RetainAsPublished = true, true // no loop, retained stays retained
			}
			subs = append(subs, s)
		}
	}
	if len(subs) > 0 {
		if _, err := c.Subscribe(ctx, subs...); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	if cfg.Notify() {
		if err := c.Publish(ctx, cfg.NotificationTopic, 1, true, []byte("1")); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	br.mu.Lock()
	br.remote = c
	br.st.Up, br.st.Connects = true, br.st.Connects+1
	br.mu.Unlock()
	if br.ctx.Err() != nil {
		_ = c.Close()
		return nil, br.ctx.Err()
	}
	if cfg.Notify() {
		br.notifyLocal(true)
	}
	br.emit(events.Event{Kind: events.LinkOpened, Remote: addr, SessionPresent: ack.SessionPresent,
		Detail: fmt.Sprintf("bridge up (%s, clean session %v)", cfg.Protocol, cfg.Clean())})
	br.log.Info("bridge up", "address", addr, "session_present", ack.SessionPresent)
	return c, nil
}

func bridgeTLS(cfg *bridgeconf.Config) (*tls.Config, error) {
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("bridge_cafile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("bridge_cafile %s: no PEM certificate", cfg.CAFile)
	}
	return &tls.Config{RootCAs: pool, InsecureSkipVerify: cfg.Insecure, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // bridge_insecure is the user's choice, as in Mosquitto
}

// forward sends queued messages to c until the link breaks or the bridge
// stops; it returns why. Messages not acknowledged go back to the queue's
// front, in order.
func (br *Bridge) forward(c *client.Client) string {
	type sent struct {
		m   bridgeMsg
		tok *client.Token
	}
	var flight []sent
	requeue := func() {
		if len(flight) == 0 {
			return
		}
		back := make([]bridgeMsg, len(flight))
		for i, f := range flight {
			back[i] = f.m
		}
		br.mu.Lock()
		br.queue = append(back, br.queue...)
		br.mu.Unlock()
	}
	settle := func(f sent) {
		br.mu.Lock()
		br.st.ForwardedOut++
		br.mu.Unlock()
		br.emit(events.Event{Kind: events.BridgeForwarded, Topic: f.m.topic, QoS: f.m.qos, Direction: bridgeconf.Out})
	}
	for {
		// Settle what the remote acknowledged, oldest first.
		for len(flight) > 0 {
			select {
			case <-flight[0].tok.Done():
			default:
				goto send
			}
			if flight[0].tok.Err() != nil {
				requeue()
				return "publish failed: " + flight[0].tok.Err().Error()
			}
			settle(flight[0])
			flight = flight[1:]
		}
	send:
		br.mu.Lock()
		var m bridgeMsg
		have := len(br.queue) > 0 && len(flight) < bridgeWindow
		if have {
			m = br.queue[0]
			br.queue = br.queue[1:]
		}
		br.mu.Unlock()
		if have {
			tok := c.PublishAsync(br.ctx, m.topic, m.qos, m.retain, m.payload)
			flight = append(flight, sent{m, tok})
			continue
		}
		var oldest <-chan struct{}
		if len(flight) > 0 {
			oldest = flight[0].tok.Done()
		}
		select {
		case <-br.ctx.Done():
			requeue()
			return "bridge stopped"
		case <-c.Done():
			requeue()
			return fmt.Sprint(c.Err())
		case <-br.wake:
		case <-oldest:
		}
	}
}
