package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Dial opens a connection to addr with DialConn and runs Connect over it.
func Dial(ctx context.Context, addr string, opts Options) (*Client, *packet.Connack, error) {
	conn, err := DialConn(ctx, addr, opts.TLSConfig)
	if err != nil {
		return nil, nil, err
	}
	return Connect(ctx, conn, opts)
}

// DialConn opens the network connection an MQTT address names:
// "host:port" and "tcp://host:port" (also "mqtt://"), "tls://host:port"
// (also "ssl://", "mqtts://") using tlsConfig, and "ws://host:port/path" or
// "wss://..." as a WebSocket with subprotocol "mqtt" carrying binary messages.
func DialConn(ctx context.Context, addr string, tlsConfig *tls.Config) (net.Conn, error) {
	scheme, host := "tcp", addr
	if i := strings.Index(addr, "://"); i >= 0 {
		scheme, host = strings.ToLower(addr[:i]), addr[i+3:]
	}
	switch scheme {
	case "tcp", "mqtt":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		return conn, nil
	case "tls", "ssl", "mqtts":
		d := tls.Dialer{Config: tlsConfig}
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		return conn, nil
	case "ws", "wss":
		return dialWebSocket(ctx, addr, tlsConfig)
	}
	return nil, fmt.Errorf("dial %s: unknown scheme %q", addr, scheme)
}

func dialWebSocket(ctx context.Context, addr string, tlsConfig *tls.Config) (net.Conn, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	opts := &websocket.DialOptions{Subprotocols: []string{"mqtt"}}
	if u.Scheme == "wss" && tlsConfig != nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	}
	ws, resp, err := websocket.Dial(ctx, u.String(), opts)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if ws.Subprotocol() != "mqtt" {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("dial %s: server chose subprotocol %q, want \"mqtt\"", addr, ws.Subprotocol())
	}
	// The conn outlives the dial: its lifetime context must not be ctx.
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}
