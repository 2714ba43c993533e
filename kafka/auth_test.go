package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
)

// serverTLS makes a CA and a certificate for 127.0.0.1 signed by it; it
// returns the server's TLS config and the CA's PEM file.
func serverTLS(t *testing.T) (*tls.Config, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kafka test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	pair, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, caFile
}

// TestAuth: against a cluster that requires SASL PLAIN over TLS, the bridge
// and a watcher with the right settings carry every record; a watcher with
// a wrong password or without TLS reads nothing; bad settings are refused
// before anything dials.
func TestAuth(t *testing.T) {
	srvTLS, caFile := serverTLS(t)
	cl, err := StartCluster(ClusterConfig{Brokers: 1, Topics: []Topic{{Name: "telemetry", Partitions: 1}},
		SASLUsers: map[string]string{"edge": "s3cret"}, TLS: srvTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := &Auth{SASL: SASLPlain, User: "edge", Password: "s3cret", TLS: true, CAFile: caFile}
	br := brokertest.Start(t, nil)
	bridge, err := StartBridge(ctx, BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+/t"}, QoS: 1,
		Brokers: cl.Addrs(), Topic: "telemetry", Mode: ModeSync, Acks: "all", KeyLevel: 1, Auth: good})
	if err != nil {
		t.Fatal(err)
	}
	defer bridge.Close()
	var read, wrongRead, plainRead atomic.Int64
	watch := func(name string, a *Auth, n *atomic.Int64) {
		w, err := StartWatcher(WatcherConfig{Name: name, Brokers: cl.Addrs(), Topic: "telemetry", Group: name, Auth: a,
			Sink: SinkFunc(func(Delivery) { n.Add(1) })})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
	}
	watch("good", good, &read)
	watch("wrong-password", &Auth{SASL: SASLPlain, User: "edge", Password: "nope", TLS: true, CAFile: caFile}, &wrongRead)
	watch("no-tls", &Auth{SASL: SASLPlain, User: "edge", Password: "s3cret"}, &plainRead)
	dev, _, err := client.Dial(ctx, brokertest.TCP(br), client.Options{ClientID: "dev", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Disconnect(context.Background())
	for i := range 20 {
		if err := dev.Publish(ctx, fmt.Sprintf("fleet/d%d/t", i%3), 1, false, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for read.Load() < 20 {
		if ctx.Err() != nil {
			t.Fatalf("the authenticated watcher read %d of 20 (bridge %+v)", read.Load(), bridge.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := bridge.Stats(); st.Produced != 20 || st.Failed != 0 {
		t.Errorf("bridge %+v, want 20 produced", st)
	}
	if wrongRead.Load() != 0 || plainRead.Load() != 0 {
		t.Errorf("a watcher with a wrong password read %d, one without TLS %d: want 0", wrongRead.Load(), plainRead.Load())
	}
	for _, bad := range []*Auth{{SASL: "GSSAPI", User: "u"}, {SASL: SASLPlain}, {CAFile: caFile}} {
		if _, err := StartWatcher(WatcherConfig{Name: "bad", Brokers: cl.Addrs(), Topic: "telemetry", Auth: bad}); err == nil {
			t.Errorf("auth %+v accepted", bad)
		}
	}
}
