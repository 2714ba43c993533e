package bridge_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/events"
)

// tlsFiles writes a CA and a server certificate for 127.0.0.1 signed by it;
// it returns the CA, certificate and key paths.
func tlsFiles(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	ca, cert, key = filepath.Join(dir, name+"-ca.pem"), filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	for p, b := range map[string][]byte{
		ca:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// TestTLS: with bridge_cafile the bridge dials the remote over TLS and
// verifies it; a remote whose certificate another CA signed is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := tlsFiles(t, dir, "cloud")
	otherCA, _, _ := tlsFiles(t, dir, "other")
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Type: "tls", Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key}}
	cloudB, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cloudB.Start(); err != nil {
		t.Fatal(err)
	}
	defer cloudB.Close()
	cloud := strings.TrimPrefix(cloudB.Addr("tls"), "tls://")

	rec := newRecorder()
	_, edge := startBroker(t, rec,
		bridgeconf.Config{Name: "good", Addresses: []string{cloud}, CAFile: ca, Topics: rules(t, "a/# out 1")},
		bridgeconf.Config{Name: "bad", Addresses: []string{cloud}, CAFile: otherCA, Topics: rules(t, "b/# out 1"),
			RestartTimeout: bridgeconf.Duration(time.Hour)})
	rec.wait(t, 10*time.Second, 1, "the good bridge up", func(e events.Event) bool { return e.Kind == events.LinkOpened && e.Link == "good" })
	rec.wait(t, 10*time.Second, 1, "the bad bridge refused", func(e events.Event) bool {
		return e.Kind == events.LinkClosed && e.Link == "bad" && strings.Contains(e.Detail, "certificate")
	})
	if n := rec.count(func(e events.Event) bool { return e.Kind == events.LinkOpened && e.Link == "bad" }); n != 0 {
		t.Errorf("the bridge trusting another CA connected %d times", n)
	}
	_ = edge
}
