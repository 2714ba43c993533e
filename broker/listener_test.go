package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// pahoClient connects a paho.mqtt.golang client to url.
func pahoClient(t *testing.T, url, id string, tc *tls.Config) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(30 * time.Second).SetTLSConfig(tc)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// TestListeners runs paho publish/subscribe at QoS 0, 1 and 2 over every
// listener type at once: TCP, WebSocket (subprotocol mqtt), TLS and WSS.
func TestListeners(t *testing.T) {
	certs := makeCerts(t)
	tb := startBroker(t, func(c *Config) {
		c.Listeners = append(c.Listeners,
			ListenerConfig{Type: "ws", Addr: "127.0.0.1:0", Path: "/mqtt"},
			ListenerConfig{Type: "tls", Addr: "127.0.0.1:0", CertFile: certs.cert, KeyFile: certs.key},
			ListenerConfig{Type: "wss", Addr: "127.0.0.1:0", CertFile: certs.cert, KeyFile: certs.key},
		)
	})
	if len(tb.Addrs()) != 4 {
		t.Fatalf("addrs %+v", tb.Addrs())
	}
	for _, typ := range []string{"tcp", "ws", "tls", "wss"} {
		t.Run(typ, func(t *testing.T) {
			url := tb.Addr(typ)
			if typ == "tls" {
				url = "ssl://" + url[len("tls://"):]
			}
			c := pahoClient(t, url, "paho-"+typ, certs.clientTLS)
			got := make(chan paho.Message, 3)
			if tok := c.Subscribe("lt/"+typ+"/#", 2, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			for q := byte(0); q <= 2; q++ {
				if tok := c.Publish("lt/"+typ+"/q", q, false, []byte{'0' + q}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("publish QoS %d: %v", q, tok.Error())
				}
				select {
				case m := <-got:
					if m.Qos() != q || string(m.Payload()) != string([]byte{'0' + q}) {
						t.Errorf("got QoS %d %q", m.Qos(), m.Payload())
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("QoS %d message not delivered", q)
				}
			}
		})
	}
}

// TestWebSocketSubprotocol checks that a WebSocket without subprotocol
// "mqtt" is refused, and that the raw client works over ws://.
func TestWebSocketSubprotocol(t *testing.T) {
	tb := startBroker(t, func(c *Config) {
		c.Listeners = append(c.Listeners, ListenerConfig{Type: "ws", Addr: "127.0.0.1:0", Path: "/custom"})
	})
	url := tb.Addr("ws")
	if url[len(url)-len("/custom"):] != "/custom" {
		t.Fatalf("ws url %q", url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := client.Dial(ctx, url, client.Options{ClientID: "ws-raw", CleanSession: true})
	if err != nil {
		t.Fatalf("dial ws: %v", err)
	}
	_ = c.Disconnect(ctx)

	ws, _, err := websocket.Dial(ctx, url, nil) // no subprotocol offered
	if err != nil {
		t.Fatalf("dial without subprotocol: %v", err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("without subprotocol: read %v, want close 1008", err)
	}
}

// TestClientCertificates checks RequireClientCert: a client without a
// certificate fails the handshake, one with a certificate from the CA connects.
func TestClientCertificates(t *testing.T) {
	certs := makeCerts(t)
	tb := startBroker(t, func(c *Config) {
		c.Listeners = []ListenerConfig{{Type: "tls", Addr: "127.0.0.1:0", CertFile: certs.cert, KeyFile: certs.key,
			ClientCAFile: certs.ca, RequireClientCert: true}}
	})
	addr := tb.Addr("tls")[len("tls://"):]
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"without certificate", &tls.Config{RootCAs: certs.clientTLS.RootCAs, ServerName: "127.0.0.1"}, false},
		{"with certificate", certs.clientTLS, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tc.cfg)
			if err != nil {
				if tc.ok {
					t.Fatalf("dial: %v", err)
				}
				return
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, ack, err := client.RawConnect(ctx, nc, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "tls-" + tc.name, CleanSession: true})
			if tc.ok && (err != nil || ack.ReturnCode != 0) {
				t.Fatalf("connect: %v %+v", err, ack)
			}
			if !tc.ok && err == nil {
				t.Fatalf("connected without a client certificate")
			}
		})
	}
}

// testCerts are PEM files of a CA, a server certificate for 127.0.0.1 and a
// client TLS config holding a client certificate from that CA.
type testCerts struct {
	ca, cert, key string
	clientTLS     *tls.Config
}

func makeCerts(t *testing.T) testCerts {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return pair, certPEM, keyPEM
	}
	_, srvCert, srvKey := leaf(2, x509.ExtKeyUsageServerAuth)
	cliPair, _, _ := leaf(3, x509.ExtKeyUsageClientAuth)
	c := testCerts{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server.key")}
	for _, f := range []struct {
		path string
		data []byte
	}{{c.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}, {c.cert, srvCert}, {c.key, srvKey}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c.clientTLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cliPair}, ServerName: "127.0.0.1"}
	return c
}

// TestWebSocketKeepalive checks [MQTT-3.1.2-24] over a WebSocket listener,
// whose connections are not parked: a silent client is closed after 1.5x
// its keepalive with cause keepalive.
func TestWebSocketKeepalive(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, func(c *Config) {
		c.Listeners = append(c.Listeners, ListenerConfig{Type: "ws", Addr: "127.0.0.1:0"})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := client.DialConn(ctx, tb.Addr("ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	r, ack, err := client.RawConnect(ctx, nc, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "ws-silent", CleanSession: true, KeepAlive: 1})
	if err != nil || ack.ReturnCode != 0 {
		t.Fatalf("connect: %v %+v", err, ack)
	}
	acked := time.Now()
	if err := r.ExpectClosed(5 * time.Second); err != nil {
		t.Fatalf("not closed: %v", err)
	}
	// The broker read CONNECT between start and acked: 1.5x the keepalive
	// after it, and within 0.5 s of that.
	if d, e := time.Since(start), time.Since(acked); d < 1500*time.Millisecond || e > 2000*time.Millisecond {
		t.Errorf("closed %v after CONNECT / %v after CONNACK, want 1.5 s..2.0 s", d, e)
	}
	if e := tb.wait(t, disconnectOf("ws-silent")); e.Cause != events.CauseKeepalive {
		t.Errorf("cause %q (%s), want keepalive", e.Cause, e.Detail)
	}
}
