package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestV5ServerLimits: an MQTT 5 CONNACK's Server Keep Alive, Receive
// Maximum and Assigned Client Identifier are obeyed.
func TestV5ServerLimits(t *testing.T) {
	s := newFakeServer(t)
	res := make(chan *Client, 1)
	go func() {
		c, _, err := Dial(ctxT(t, 5*time.Second), s.addr(), Options{ProtocolLevel: packet.V5, CleanSession: true})
		if err != nil {
			t.Errorf("connect: %v", err)
		}
		res <- c
	}()
	srv, cp := s.accept(t)
	if cp.ProtocolLevel != packet.V5 {
		t.Fatalf("CONNECT level %d, want 5", cp.ProtocolLevel)
	}
	ka, rm := uint16(1), uint16(1)
	err := srv.WritePacket(&packet.Connack{Props: &packet.Properties{ServerKeepAlive: &ka, ReceiveMaximum: &rm,
		AssignedClientID: "assigned-7", HasAssignedClientID: true}})
	if err != nil {
		t.Fatal(err)
	}
	c := <-res
	if c == nil {
		t.FailNow()
	}
	defer c.Close()
	if c.ClientID() != "assigned-7" {
		t.Errorf("ClientID() = %q, want the assigned one", c.ClientID())
	}
	ctx := ctxT(t, 5*time.Second)
	// The first PUBLISH is the client's last write before its PINGREQ (the
	// refused second publish writes nothing), and the client pings once a
	// keepalive has passed since its last write completed: so not before
	// beforeLast + 1 s.
	beforeLast := time.Now()
	c.PublishAsync(ctx, "t", 1, false, nil)
	p := expect[*packet.Publish](t, srv)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := c.PublishAsync(short, "t", 1, false, nil).Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second publish with Receive Maximum 1: %v, want DeadlineExceeded", err)
	}
	if err := srv.WritePacket(&packet.Puback{PacketID: p.PacketID}); err != nil {
		t.Fatal(err)
	}
	// We asked for no keepalive; the server imposed 1 s, so a PINGREQ comes.
	start := time.Now()
	expect[*packet.Pingreq](t, srv)
	if el := time.Since(beforeLast); el < time.Second {
		t.Errorf("PINGREQ %v after the client's last packet, before Server Keep Alive 1s", el)
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Errorf("PINGREQ after %v with Server Keep Alive 1s", el)
	}
}

// TestV5PubackFailureCode: a PUBACK reason code of 0x80 or more fails the
// publish with a *ReasonError and leaves the link up.
func TestV5PubackFailureCode(t *testing.T) {
	c, srv := connectFake(t, Options{ClientID: "v5code", ProtocolLevel: packet.V5})
	ctx := ctxT(t, 5*time.Second)
	tok := c.PublishAsync(ctx, "t", 1, false, nil)
	p := expect[*packet.Publish](t, srv)
	if err := srv.WritePacket(&packet.Puback{PacketID: p.PacketID, ReasonCode: 0x87}); err != nil {
		t.Fatal(err)
	}
	var re *ReasonError
	if err := tok.Wait(ctx); !errors.As(err, &re) || re.Code != 0x87 {
		t.Fatalf("publish = %v, want ReasonError 0x87", err)
	}
	if c.Err() != nil {
		t.Fatalf("link ended: %v", c.Err())
	}
}

// TestDialTLS connects through "tls://" to a TLS listener with a
// self-signed certificate trusted through Options.TLSConfig.
func TestDialTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, conns: make(chan net.Conn, 1)}
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		if conn, err := ln.Accept(); err == nil {
			s.conns <- conn
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-acceptDone })
	res := make(chan error, 1)
	go func() {
		c, _, err := Dial(ctxT(t, 5*time.Second), "tls://"+ln.Addr().String(),
			Options{ClientID: "tls", TLSConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}})
		if err == nil {
			err = c.Disconnect(ctxT(t, 5*time.Second))
		}
		res <- err
	}()
	srv, cp := s.accept(t)
	if cp.ClientID != "tls" {
		t.Fatalf("CONNECT client ID %q", cp.ClientID)
	}
	if err := srv.WritePacket(&packet.Connack{}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Disconnect](t, srv)
	_ = srv.Close()
	if err := <-res; err != nil {
		t.Fatalf("TLS client: %v", err)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestV5PublishProps: PublishAsyncProps sends the MQTT 5 PUBLISH
// properties, and the ack events carry the reason codes: PublishAcked with
// PUBACK's success code, PublishFailed with a refusal's.
func TestV5PublishProps(t *testing.T) {
	rec := events.NewRecorder()
	c, srv := connectFake(t, Options{ClientID: "v5props", ProtocolLevel: packet.V5, Events: rec})
	ctx := ctxT(t, 5*time.Second)
	exp := uint32(30)
	props := &packet.Properties{MessageExpiry: &exp, ContentType: "application/json", HasContentType: true,
		ResponseTopic: "reply/7", HasResponseTopic: true, User: []packet.UserProperty{{Key: "device", Value: "d7"}}}
	tok := c.PublishAsyncProps(ctx, "t", 1, false, []byte("x"), props)
	p := expect[*packet.Publish](t, srv)
	got := p.Props
	if got == nil || got.MessageExpiry == nil || *got.MessageExpiry != 30 || got.ContentType != "application/json" ||
		got.ResponseTopic != "reply/7" || len(got.User) != 1 || got.User[0] != (packet.UserProperty{Key: "device", Value: "d7"}) {
		t.Fatalf("PUBLISH properties = %+v", got)
	}
	if err := srv.WritePacket(&packet.Puback{PacketID: p.PacketID, ReasonCode: 0x10}); err != nil {
		t.Fatal(err)
	}
	if err := tok.Wait(ctx); err != nil {
		t.Fatalf("publish with PUBACK 0x10 (no matching subscribers): %v", err)
	}
	if e, err := rec.WaitFor(5*time.Second, events.Is(events.PublishAcked)); err != nil || e.Code != 0x10 {
		t.Fatalf("PublishAcked = %+v, %v; want code 0x10", e, err)
	}
	tok = c.PublishAsyncProps(ctx, "t", 1, false, nil, props)
	p = expect[*packet.Publish](t, srv)
	if err := srv.WritePacket(&packet.Puback{PacketID: p.PacketID, ReasonCode: 0x97}); err != nil {
		t.Fatal(err)
	}
	_ = tok.Wait(ctx)
	if e, err := rec.WaitFor(5*time.Second, events.Is(events.PublishFailed)); err != nil || e.Code != 0x97 || e.Detail != "PUBACK" || e.QoS != 1 {
		t.Fatalf("PublishFailed = %+v, %v; want PUBACK 0x97", e, err)
	}
}

// TestPublishPropsIgnoredBefore5: a 3.1.1 link has no properties to send.
func TestPublishPropsIgnoredBefore5(t *testing.T) {
	c, srv := connectFake(t, Options{ClientID: "v4props"})
	exp := uint32(30)
	if err := c.PublishAsyncProps(ctxT(t, 5*time.Second), "t", 0, false, nil, &packet.Properties{MessageExpiry: &exp}).Err(); err != nil {
		t.Fatal(err)
	}
	if p := expect[*packet.Publish](t, srv); p.Props != nil {
		t.Fatalf("3.1.1 PUBLISH with properties %+v", p.Props)
	}
}

// TestV5ServerDisconnectCode: a server DISCONNECT ends the link with cause
// server_disconnect and its reason code in the Disconnect event.
func TestV5ServerDisconnectCode(t *testing.T) {
	rec := events.NewRecorder()
	c, srv := connectFake(t, Options{ClientID: "v5disc", ProtocolLevel: packet.V5, Events: rec})
	if err := srv.WritePacket(&packet.Disconnect{ReasonCode: 0x8e}); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	var re *ReasonError
	if !errors.As(c.Err(), &re) || re.Code != 0x8e {
		t.Errorf("Err() = %v, want DISCONNECT 0x8e", c.Err())
	}
	e, err := rec.WaitFor(5*time.Second, events.Is(events.Disconnect))
	if err != nil || e.Cause != events.CauseServerDisconnect || e.Code != 0x8e {
		t.Fatalf("Disconnect event = %+v, %v; want server_disconnect 0x8e", e, err)
	}
}
