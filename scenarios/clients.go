package scenarios

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/simulator/payload"
)

// Timeouts for scenario clients' own exchanges.
const (
	connectTimeout    = 10 * time.Second
	subscribeTimeout  = 30 * time.Second
	disconnectTimeout = 2 * time.Second
	publishTimeout    = 10 * time.Second
	groupDrain        = 300 * time.Millisecond
)

// defaultViolation is a SUBSCRIBE whose fixed-header flags are 0000 instead
// of 0010: a malformed packet the server must close the connection for
// [MQTT-3.8.1-1] [MQTT-4.8.0-1]. (A PINGREQ with a non-zero remaining length
// is not enough: Mosquitto 2.0.11 accepts it.)
var defaultViolation = []byte{0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}

// clientRun is one scenario client while the scenario runs.
type clientRun struct {
	cfg *Client
	r   *runner

	mu      sync.Mutex
	c       *client.Client
	conn    net.Conn
	seq     uint64
	leaving bool            // a disconnect or drop step is ending the link on purpose
	ack     *packet.Connack // the last CONNACK: the server's limits, for violations
	// violated is the statement the last do: violate broke on this
	// connection; the server DISCONNECT that answers it is tagged with it.
	violated string
	// sess carries a persistent session's in-flight QoS 1/2 messages from
	// one connection to the next, so they are resent after a reconnect
	// [MQTT-4.4.0-1] and no packet ID is reused while the broker still holds it.
	sess *client.Session
	wg   sync.WaitGroup
}

// sink tags the client's events with its name as their group.
func (cr *clientRun) emit(e events.Event) {
	if e.Group == "" {
		e.Group = cr.cfg.Name
	}
	if e.Kind == events.Disconnect && e.Statement == "" {
		cr.mu.Lock()
		if e.Cause == events.CauseServerDisconnect {
			e.Statement = cr.violated
		}
		cr.violated = ""
		cr.mu.Unlock()
	}
	cr.r.sink.Emit(events.Stamp(e, events.SourceClient))
}

// connect dials (through the proxy when asked), connects and subscribes.
func (cr *clientRun) connect(ctx context.Context) error {
	cr.mu.Lock()
	if cr.c != nil {
		cr.mu.Unlock()
		return nil
	}
	cr.leaving, cr.violated = false, ""
	cr.mu.Unlock()
	cfg := cr.cfg
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if cfg.Proxy {
		conn, err = cr.r.proxy.Dial(ctx, cfg.Name)
	} else {
		conn, err = client.DialConn(ctx, cr.r.urlFor(cfg.Broker), nil)
	}
	if err != nil {
		return fmt.Errorf("client %s: dial: %w", cfg.Name, err)
	}
	opts := client.Options{
		ClientID: cfg.ClientID, ProtocolLevel: byte(cfg.Protocol), CleanSession: cfg.Clean == nil || *cfg.Clean,
		KeepAlive: 30 * time.Second,
		// Messages are recorded by onMessage (with their payload) and by
		// publish (with their sequence number) instead.
		Events: events.SinkFunc(func(e events.Event) {
			switch e.Kind {
			case events.PublishReceived, events.PublishSent, events.PublishAcked:
			default:
				cr.emit(e)
			}
		}),
		OnMessage:        cr.onMessage,
		OnConnectionLost: cr.lost,
	}
	if cfg.KeepAlive != nil {
		opts.KeepAlive = *cfg.KeepAlive
	}
	if cfg.Clean != nil && !*cfg.Clean {
		if cr.sess == nil {
			cr.sess = client.NewSession()
		}
		opts.Session = cr.sess
	}
	if w := cfg.Will; w != nil {
		opts.Will = &packet.Will{Topic: w.Topic, Payload: []byte(w.Payload), QoS: byte(w.QoS), Retain: w.Retain}
		if w.Delay > 0 {
			d := uint32(w.Delay.D() / time.Second) // whole seconds (validated)
			opts.Will.Props = &packet.Properties{WillDelay: &d}
		}
	}
	if cfg.SessionExpiry != nil {
		se := uint32(cfg.SessionExpiry.D() / time.Second)
		opts.Props = &packet.Properties{SessionExpiry: &se}
	}
	c, ack, err := client.Connect(ctx, conn, opts)
	if err != nil {
		return fmt.Errorf("client %s: connect: %w", cfg.Name, err)
	}
	cr.mu.Lock()
	cr.c, cr.conn, cr.ack = c, conn, ack
	cr.mu.Unlock()
	if len(cfg.Subscriptions) > 0 {
		subs := make([]packet.Subscription, len(cfg.Subscriptions))
		for i, s := range cfg.Subscriptions {
			subs[i] = packet.Subscription{Filter: s.Filter, QoS: byte(s.QoS)}
		}
		sctx, scancel := context.WithTimeout(ctx, subscribeTimeout)
		defer scancel()
		if _, err := c.Subscribe(sctx, subs...); err != nil {
			return fmt.Errorf("client %s: subscribe: %w", cfg.Name, err)
		}
	}
	return nil
}

// onMessage records a delivered message with its payload (bounded) and, for
// messages carrying the simulator's measurement header, its sequence number
// and end-to-end latency.
func (cr *clientRun) onMessage(m *packet.Publish) {
	now := time.Now()
	e := events.Event{Time: now, Kind: events.PublishReceived, ClientID: cr.cfg.ClientID, Topic: m.Topic,
		QoS: m.QoS, Retain: m.Retain, Dup: m.Dup, Size: len(m.Payload), PacketID: m.PacketID}
	if h, err := payload.ParseHeader(m.Payload); err == nil && h.Run == cr.r.runID {
		e.Seq, e.Latency = h.Seq, now.Sub(h.Sent)
	} else {
		b := m.Payload
		if len(b) > maxKeptPayload {
			b = b[:maxKeptPayload]
		}
		e.Detail = payloadPrefix + string(b)
	}
	cr.emit(e)
}

// lost reconnects after the configured delay when the link ended by itself.
func (cr *clientRun) lost(err error) {
	cr.mu.Lock()
	cr.c, cr.conn = nil, nil
	leaving := cr.leaving
	cr.mu.Unlock()
	if leaving || cr.cfg.Reconnect <= 0 {
		return
	}
	cr.wg.Add(1)
	go func() {
		defer cr.wg.Done()
		t := time.NewTimer(cr.cfg.Reconnect)
		defer t.Stop()
		for {
			select {
			case <-cr.r.ctx.Done():
				return
			case <-t.C:
			}
			if err := cr.connect(cr.r.ctx); err == nil || cr.r.ctx.Err() != nil {
				return
			}
			t.Reset(cr.cfg.Reconnect)
		}
	}()
}

func (cr *clientRun) current() (*client.Client, net.Conn, error) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.c == nil {
		return nil, nil, fmt.Errorf("client %s is not connected", cr.cfg.Name)
	}
	return cr.c, cr.conn, nil
}

// disconnect sends DISCONNECT (no will) or, with drop, closes the socket
// as a crash would (the will fires).
func (cr *clientRun) disconnect(ctx context.Context, drop bool) error {
	cr.mu.Lock()
	c := cr.c
	cr.c, cr.conn, cr.leaving = nil, nil, true
	cr.mu.Unlock()
	if c == nil {
		return nil
	}
	if drop {
		return c.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, disconnectTimeout)
	defer cancel()
	if err := c.Disconnect(ctx); err != nil && !errors.Is(err, client.ErrClosed) {
		return fmt.Errorf("client %s: disconnect: %w", cr.cfg.Name, err)
	}
	return nil
}

// violate writes raw bytes (a malformed packet) on the client's socket.
func (cr *clientRun) violate(hexBytes string) error {
	_, conn, err := cr.current()
	if err != nil {
		return err
	}
	b := defaultViolation
	if hexBytes != "" {
		b, _ = hex.DecodeString(strings.ReplaceAll(hexBytes, " ", "")) // checked by validation
	}
	if _, err := conn.Write(b); err != nil {
		return fmt.Errorf("client %s: write violation: %w", cr.cfg.Name, err)
	}
	cr.emit(events.Event{Kind: events.Log, ClientID: cr.cfg.ClientID, Detail: "sent raw bytes " + hex.EncodeToString(b)})
	return nil
}

// publish sends count messages; without a payload each carries the
// measurement header (sequence number, send time) for delivery checks.
// Every message is recorded as publish_sent and, once its flow completed,
// publish_acked, both with the sequence number.
func (cr *clientRun) publish(ctx context.Context, s *Step) error {
	n := max(s.Count, 1)
	for i := 0; i < n; i++ {
		if i > 0 && s.Interval > 0 {
			t := time.NewTimer(s.Interval.D())
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		c, _, err := cr.current()
		if err != nil {
			if s.Count > 1 {
				continue // a message while offline is simply not sent; delivery counts sent ones
			}
			return err
		}
		cr.mu.Lock()
		cr.seq++
		seq := cr.seq
		cr.mu.Unlock()
		now := time.Now()
		var body []byte
		if s.Payload != nil {
			body = []byte(*s.Payload)
			seq = 0
		} else {
			body = payload.AppendHeader(nil, payload.Header{Run: cr.r.runID, Seq: seq, Sent: now})
		}
		cr.emit(events.Event{Time: now, Kind: events.PublishSent, ClientID: cr.cfg.ClientID, Topic: s.Topic,
			QoS: byte(s.QoS), Retain: s.Retain, Size: len(body), Seq: seq})
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err = c.Publish(pctx, s.Topic, byte(s.QoS), s.Retain, body)
		cancel()
		if err == nil {
			cr.emit(events.Event{Kind: events.PublishAcked, ClientID: cr.cfg.ClientID, Topic: s.Topic,
				QoS: byte(s.QoS), Seq: seq, Latency: time.Since(now)})
		} else if s.Count <= 1 {
			return fmt.Errorf("client %s: publish: %w", cr.cfg.Name, err)
		}
	}
	return nil
}

// subscribe adds one subscription.
func (cr *clientRun) subscribe(ctx context.Context, filter string, qos int) error {
	c, _, err := cr.current()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	defer cancel()
	if _, err := c.Subscribe(ctx, packet.Subscription{Filter: filter, QoS: byte(qos)}); err != nil {
		return fmt.Errorf("client %s: subscribe: %w", cr.cfg.Name, err)
	}
	return nil
}

// close ends the client at the end of the run and joins its goroutines.
func (cr *clientRun) close() {
	_ = cr.disconnect(context.Background(), false)
	cr.wg.Wait()
	cr.mu.Lock()
	c := cr.c
	cr.c = nil
	cr.mu.Unlock()
	if c != nil { // reconnected while we were leaving
		_ = c.Close()
	}
}
