package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/coder/websocket"
)

// listener is one bound socket and, for WebSocket types, its HTTP server.
type listener struct {
	cfg  ListenerConfig
	ln   net.Listener
	url  string
	http *http.Server // ws and wss only
}

// listen binds one listener; it accepts nothing until goAccept.
func (b *Broker) listen(lc ListenerConfig) (*listener, error) {
	// MQTT has its own keepalive: TCP keepalive on every accepted socket would
	// only cost setsockopt calls per connection.
	lcfg := net.ListenConfig{KeepAlive: -1}
	ln, err := lcfg.Listen(b.ctx, "tcp", lc.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", lc.Type, lc.Addr, err)
	}
	l := &listener{cfg: lc, ln: ln}
	addr := ln.Addr().String()
	switch lc.Type {
	case "tcp":
		l.url = "tcp://" + addr
	case "tls", "wss":
		tc, err := tlsConfig(lc)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		l.ln = tls.NewListener(ln, tc)
		l.url = lc.Type + "://" + addr
		if lc.Type == "wss" {
			l.url += lc.Path
		}
	case "ws":
		l.url = "ws://" + addr + lc.Path
	}
	if lc.Type == "ws" || lc.Type == "wss" {
		mux, err := wsMux(lc.Path, b.serveWS)
		if err != nil {
			_ = l.ln.Close()
			return nil, fmt.Errorf("listener %s path: %w", lc.Name, err)
		}
		l.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	}
	return l, nil
}

// goAccept starts the accept loop of l. b.mu is held.
func (b *Broker) goAccept(l *listener) {
	b.wg.Add(1)
	if l.http != nil {
		go func() {
			defer b.wg.Done()
			if err := l.http.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.log.Error("websocket listener stopped", "name", l.cfg.Name, "err", err)
			}
		}()
		return
	}
	go func() {
		defer b.wg.Done()
		var delay time.Duration
		for {
			nc, err := l.ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// Out of file descriptors and the like: back off instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				b.log.Warn("accept", "name", l.cfg.Name, "err", err, "retry_in", delay)
				select {
				case <-time.After(delay):
				case <-b.ctx.Done():
					return
				}
				continue
			}
			delay = 0
			b.serve(nc, nc.RemoteAddr().String())
		}
	}()
}

// close stops accepting. Connections already served are closed by Broker.Close.
func (l *listener) close() error {
	var err error
	if l.http != nil {
		// Shutdown waits for handlers still upgrading; hijacked WebSocket
		// connections are not tracked by the HTTP server and end with Broker.Close.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err = l.http.Shutdown(ctx); err != nil {
			err = errors.Join(err, l.http.Close())
		}
	}
	// The HTTP server closes only listeners it has served: one bound by a
	// Start that then failed is closed here.
	if cerr := l.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}

// serveWS upgrades a request to a WebSocket carrying MQTT (subprotocol
// "mqtt") and serves it like any other connection.
func (b *Broker) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{"mqtt"},
		// MQTT clients in browsers connect from any page; auth is MQTT's job.
		InsecureSkipVerify: true,
	})
	if err != nil {
		b.log.Debug("websocket upgrade", "remote", r.RemoteAddr, "err", err)
		return
	}
	if ws.Subprotocol() != "mqtt" {
		_ = ws.Close(websocket.StatusPolicyViolation, `subprotocol "mqtt" required`)
		return
	}
	ws.SetReadLimit(-1) // the MQTT decoder enforces max_packet_size
	b.serve(websocket.NetConn(b.ctx, ws, websocket.MessageBinary), r.RemoteAddr)
}

// tlsConfig loads the certificate and the optional client CA of a listener.
func tlsConfig(lc ListenerConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(lc.CertFile, lc.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if lc.ClientCAFile != "" {
		pem, err := os.ReadFile(lc.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate found", lc.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if lc.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}
