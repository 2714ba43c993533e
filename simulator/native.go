package simulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// Native is the driver on this module's own client: one reader goroutine
// and one keepalive timer per connection, nothing else.
type Native struct {
	// ClientEvents, when set, receives the client's own events (pings,
	// packet IDs) besides the fleet's. Off by default: it doubles the events.
	ClientEvents events.Sink
}

// Name returns "native".
func (Native) Name() string { return "native" }

// Connect dials p.Addr and runs CONNECT -> CONNACK.
func (n Native) Connect(ctx context.Context, p *ConnectParams) (Conn, error) {
	conn, err := dialConn(ctx, p)
	if err != nil {
		return nil, err
	}
	h := p.Handler
	aliases, _ := h.(AliasObserver) // nil: aliases go uncounted
	opts := client.Options{
		ClientID: p.ClientID, ProtocolLevel: byte(p.Protocol), CleanSession: p.Clean, KeepAlive: p.KeepAlive,
		Username: p.Username, Device: p.Device + 1,
		OnMessage:        func(m *packet.Publish) { h.Message(m.Topic, m.Payload, m.QoS, m.Dup, m.Retain) },
		OnConnectionLost: h.Lost,
		// The client reports ack latency as an event; that is the only one
		// the fleet needs from it, so no goroutine waits on a Token.
		Events: events.SinkFunc(func(e events.Event) {
			switch e.Kind {
			case events.PublishAcked:
				h.Acked(e.QoS, byte(e.Code), e.Latency)
			case events.PublishFailed:
				h.Refused(e.QoS, byte(e.Code), e.Detail)
			case events.PublishSent:
				if e.Alias != 0 && aliases != nil {
					aliases.AliasSent(e.Detail == client.DetailAliasSet)
				}
			}
			if n.ClientEvents != nil {
				n.ClientEvents.Emit(e)
			}
		}),
	}
	opts.Props = p.Props
	opts.Session = p.Session
	opts.TopicAliases = p.TopicAliases
	if p.Password != "" {
		opts.Password = []byte(p.Password)
	}
	if w := p.Will; w != nil {
		opts.Will = &packet.Will{Topic: w.Topic, Payload: []byte(w.Payload), QoS: byte(w.QoS), Retain: w.Retain}
	}
	c, _, err := client.Connect(ctx, conn, opts)
	if err != nil {
		var ce *client.ConnackError
		if errors.As(err, &ce) {
			return nil, &ConnackError{Code: ce.Code, Err: err}
		}
		return nil, fmt.Errorf("connect %s as %q: %w", p.Addr, p.ClientID, err)
	}
	return &nativeConn{c: c, props: p.PublishProps}, nil
}

type nativeConn struct {
	c     *client.Client
	props *packet.Properties // of every PUBLISH; shared, only read
}

func (n *nativeConn) Publish(ctx context.Context, topic string, qos byte, retain bool, b []byte) error {
	return n.c.PublishAsyncProps(ctx, topic, qos, retain, b, n.props).Err()
}

func (n *nativeConn) Subscribe(ctx context.Context, subs []profile.Subscription) ([]byte, error) {
	ps := make([]packet.Subscription, len(subs))
	for i, s := range subs {
		ps[i] = packet.Subscription{Filter: s.Filter, QoS: byte(s.QoS)}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return n.c.Subscribe(ctx, ps...)
}

func (n *nativeConn) Disconnect() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.c.Disconnect(ctx); err != nil {
		_ = n.c.Close()
	}
}

func (n *nativeConn) Drop() { _ = n.c.Close() }

// dialConn opens the transport p asks for, from p's source address.
func dialConn(ctx context.Context, p *ConnectParams) (net.Conn, error) {
	scheme, host, path := splitAddr(p.Addr)
	kind := p.Transport.Kind
	if scheme != "" {
		kind = scheme
	}
	switch kind {
	case "", profile.TransportTCP, "mqtt":
		conn, err := p.dialTCP(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", host, err)
		}
		return conn, nil
	case profile.TransportTLS, "ssl", "mqtts":
		d := &tls.Dialer{NetDialer: p.dialer(), Config: p.tlsConfig(host)}
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("dial %s over TLS: %w", host, err)
		}
		return conn, nil
	case profile.TransportWS, profile.TransportWSS:
		if path == "" {
			path = p.Transport.Path
		}
		// The client's WebSocket dialer does not bind source addresses.
		return client.DialConn(ctx, kind+"://"+host+path, p.tlsConfig(host))
	}
	return nil, fmt.Errorf("dial %s: unknown transport %q", p.Addr, kind)
}

// splitAddr splits "scheme://host:port/path" (scheme and path optional).
func splitAddr(addr string) (scheme, host, path string) {
	if i := strings.Index(addr, "://"); i >= 0 {
		scheme, addr = strings.ToLower(addr[:i]), addr[i+3:]
	}
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr, path = addr[:i], addr[i:]
	}
	return scheme, addr, path
}

func (p *ConnectParams) tlsConfig(host string) *tls.Config {
	c := &tls.Config{}
	if p.TLS != nil {
		c = p.TLS.Clone()
	}
	if p.Transport.InsecureSkipVerify {
		c.InsecureSkipVerify = true
	}
	if c.ServerName == "" {
		c.ServerName = p.Transport.ServerName
	}
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(host)
	}
	return c
}
