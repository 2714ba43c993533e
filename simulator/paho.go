package simulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// Paho is the driver on github.com/eclipse/paho.mqtt.golang, for
// real-library behaviour. With a reconnect policy other than none it hands
// reconnection to paho's own auto-reconnect (first wait 1 s, doubling up to
// the policy's cap): two devices sharing a client ID then show the classic
// kick loop, each reconnect taking the ID over from the other.
type Paho struct {
	// ConnectTimeout bounds CONNECT -> CONNACK (default 10 s).
	ConnectTimeout time.Duration
}

// Name returns "paho".
func (Paho) Name() string { return "paho" }

// Connect creates a paho client for the device and connects it.
func (d Paho) Connect(ctx context.Context, p *ConnectParams) (Conn, error) {
	timeout := d.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	scheme, host, path := splitAddr(p.Addr)
	if scheme == "" || scheme == "mqtt" {
		scheme = p.Transport.Kind
	}
	if scheme == "" {
		scheme = profile.TransportTCP
	}
	if (scheme == profile.TransportWS || scheme == profile.TransportWSS) && path == "" {
		path = p.Transport.Path
	}
	pc := &pahoConn{h: p.Handler}
	h := p.Handler
	o := mqtt.NewClientOptions().
		AddBroker(scheme + "://" + host + path).
		SetClientID(p.ClientID).
		SetCleanSession(p.Clean).
		SetKeepAlive(p.KeepAlive).
		SetConnectTimeout(timeout).
		SetWriteTimeout(timeout).
		SetOrderMatters(true). // in order, on paho's router goroutine: our handler never blocks
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			h.Message(m.Topic(), m.Payload(), m.Qos(), m.Duplicate(), m.Retained())
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			if !pc.closing.Load() {
				h.Lost(err)
			}
		}).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {
			pc.reconnectAt.Store(time.Now().UnixNano())
			h.Reconnecting()
		}).
		SetOnConnectHandler(func(mqtt.Client) {
			// Called for the first connect too; only later ones are paho's own.
			if pc.connects.Add(1) > 1 && !pc.closing.Load() {
				lat := time.Duration(0)
				if t := pc.reconnectAt.Load(); t != 0 {
					lat = time.Since(time.Unix(0, t))
				}
				h.Reconnected(lat, false)
			}
		})
	switch p.Protocol {
	case 3:
		o.SetProtocolVersion(3)
	default:
		o.SetProtocolVersion(4) // paho.mqtt.golang speaks 3.1 and 3.1.1 only
	}
	if p.Username != "" {
		o.SetUsername(p.Username)
	}
	if p.Password != "" {
		o.SetPassword(p.Password)
	}
	if w := p.Will; w != nil {
		o.SetBinaryWill(w.Topic, []byte(w.Payload), byte(w.QoS), w.Retain)
	}
	if r := p.Reconnect; r.Policy != profile.ReconnectNone && r.Policy != "" {
		o.SetAutoReconnect(true)
		max := r.Max
		if max <= 0 {
			max = r.Delay
		}
		o.SetMaxReconnectInterval(max)
	} else {
		o.SetAutoReconnect(false)
	}
	if scheme == profile.TransportTLS || scheme == profile.TransportWSS || scheme == "ssl" {
		o.SetTLSConfig(p.tlsConfig(host))
	}
	if scheme == profile.TransportTCP || scheme == "tcp" {
		// Our own dial keeps the raw conn, so Drop can cut the link under
		// paho the way a failing network would.
		o.SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c, err := p.dialTCP(ctx, u.Host)
			if err != nil {
				return nil, err
			}
			pc.raw.Store(&c)
			return c, nil
		})
	}
	pc.c = mqtt.NewClient(o)
	tok := pc.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		pc.closing.Store(true)
		pc.c.Disconnect(0)
		return nil, fmt.Errorf("connect %s as %q: %w", p.Addr, p.ClientID, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		ct, _ := tok.(*mqtt.ConnectToken)
		if ct != nil && ct.ReturnCode() != 0 && ct.ReturnCode() < 0x80 {
			return nil, &ConnackError{Code: ct.ReturnCode(), Err: err}
		}
		return nil, fmt.Errorf("connect %s as %q: %w", p.Addr, p.ClientID, err)
	}
	return pc, nil
}

type pahoConn struct {
	c           mqtt.Client
	h           Handler
	raw         atomic.Pointer[net.Conn]
	closing     atomic.Bool
	connects    atomic.Int32
	reconnectAt atomic.Int64
	wg          sync.WaitGroup // ack waiters
}

func (pc *pahoConn) Publish(ctx context.Context, topic string, qos byte, retain bool, b []byte) error {
	// paho keeps the payload until the flow ends; the caller reuses nothing,
	// but copy anyway so the contract matches the native driver.
	msg := append([]byte(nil), b...)
	start := time.Now()
	tok := pc.c.Publish(topic, qos, retain, msg)
	if qos == 0 {
		if tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
			return fmt.Errorf("publish %q: %w", topic, tok.Error())
		}
		return nil
	}
	// paho reports an ack only through its token: one short-lived waiter
	// per message in flight.
	pc.wg.Add(1)
	go func() {
		defer pc.wg.Done()
		if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
			pc.h.Acked(qos, 0, time.Since(start))
		}
	}()
	return nil
}

func (pc *pahoConn) Subscribe(ctx context.Context, subs []profile.Subscription) ([]byte, error) {
	filters := make(map[string]byte, len(subs))
	for _, s := range subs {
		filters[s.Filter] = byte(s.QoS)
	}
	tok := pc.c.SubscribeMultiple(filters, nil)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return nil, fmt.Errorf("subscribe: %w", ctx.Err())
	case <-time.After(30 * time.Second):
		return nil, errors.New("subscribe: no SUBACK in 30s")
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	res := tok.(*mqtt.SubscribeToken).Result()
	out := make([]byte, len(subs))
	for i, s := range subs {
		out[i] = res[s.Filter]
	}
	return out, nil
}

func (pc *pahoConn) Disconnect() {
	pc.closing.Store(true)
	pc.c.Disconnect(250)
	pc.wg.Wait()
}

func (pc *pahoConn) Drop() {
	pc.closing.Store(true)
	if c := pc.raw.Load(); c != nil {
		_ = (*c).Close()
	}
	pc.c.Disconnect(0)
	pc.wg.Wait()
}
