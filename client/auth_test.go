package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Enhanced authentication against a scripted server that runs the SCRAM
// library's server side: what the broker tests cannot show, a server that
// lies or breaks the exchange. (Success and re-authentication against the
// reference broker: broker/enhanced_auth_test.go.)

// scramServer is the library's SCRAM-SHA-256 server knowing user/pw.
func scramServer(t *testing.T, user, pw string) *scram.ServerConversation {
	t.Helper()
	cl, err := scram.SHA256.NewClient(user, pw, "")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: "fixed salt", Iters: 4096})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return cred, nil })
	if err != nil {
		t.Fatal(err)
	}
	return srv.NewConversation()
}

func authWith(data string) *packet.Properties {
	return &packet.Properties{AuthMethod: "SCRAM-SHA-256", HasAuthMethod: true, AuthData: []byte(data)}
}

// scriptSCRAM runs the server side up to the client-final message, then
// answers with the CONNACK final makes from the server-final message.
func scriptSCRAM(t *testing.T, opts Options, final func(serverFinal string) *packet.Connack) (*Client, *Raw, error) {
	t.Helper()
	s := newFakeServer(t)
	type result struct {
		c   *Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, _, err := Dial(ctxT(t, 5*time.Second), s.addr(), opts)
		res <- result{c, err}
	}()
	srv, cp := s.accept(t)
	if cp.Props == nil || cp.Props.AuthMethod != "SCRAM-SHA-256" || !strings.HasPrefix(string(cp.Props.AuthData), "n,,n=dev,r=") {
		t.Fatalf("CONNECT properties %+v: want the method and the client-first message", cp.Props)
	}
	conv := scramServer(t, "dev", "pw")
	first, err := conv.Step(string(cp.Props.AuthData))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WritePacket(&packet.Auth{ReasonCode: 0x18, Props: authWith(first)}); err != nil {
		t.Fatal(err)
	}
	a := expect[*packet.Auth](t, srv)
	if a.ReasonCode != 0x18 || a.Props == nil || a.Props.AuthMethod != "SCRAM-SHA-256" {
		t.Fatalf("client AUTH %+v: want 0x18 with the method [MQTT-4.12.0-3]", a)
	}
	sFinal, err := conv.Step(string(a.Props.AuthData))
	if err != nil {
		t.Fatalf("client-final rejected by the SCRAM library's server: %v", err)
	}
	if err := srv.WritePacket(final(sFinal)); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.c != nil {
		t.Cleanup(func() { _ = r.c.Close() })
	}
	return r.c, srv, r.err
}

func TestAuthSCRAMAgainstLibraryServer(t *testing.T) {
	rec := events.NewRecorder()
	opts := Options{ClientID: "scram", ProtocolLevel: packet.V5, Auth: SCRAM("dev", "pw"), Events: rec,
		Props: &packet.Properties{SessionExpiry: new(uint32)}}
	c, _, err := scriptSCRAM(t, opts, func(f string) *packet.Connack { return &packet.Connack{Props: authWith(f)} })
	if err != nil || c == nil {
		t.Fatalf("connect: %v", err)
	}
	if opts.Props.HasAuthMethod {
		t.Error("Connect wrote the method into the caller's Props")
	}
	if n := rec.Count(events.Is(events.Auth)); n != 2 {
		t.Errorf("auth events: %d, want 2 (AUTH received, AUTH sent)", n)
	}
}

// TestAuthServerNotVerified: a CONNACK 0x00 with a wrong server signature,
// or without the method, fails the connection: the server did not prove
// it knows the user's key [MQTT-4.12.0-5].
func TestAuthServerNotVerified(t *testing.T) {
	for name, ack := range map[string]func(string) *packet.Connack{
		"bad signature": func(string) *packet.Connack {
			return &packet.Connack{Props: authWith("v=" + strings.Repeat("A", 43) + "=")}
		},
		"no method": func(f string) *packet.Connack { return &packet.Connack{} },
	} {
		c, srv, err := scriptSCRAM(t, Options{ProtocolLevel: packet.V5, Auth: SCRAM("dev", "pw")}, ack)
		if c != nil || !errors.Is(err, ErrAuth) {
			t.Errorf("%s: connect = %v, %v; want ErrAuth", name, c, err)
		}
		if err := srv.ExpectClosed(5 * time.Second); err != nil {
			t.Errorf("%s: connection not closed: %v", name, err)
		}
	}
}

// TestAuthUnexpected: AUTH from the server with no exchange running is a
// protocol violation that ends the link; Reauthenticate needs Options.Auth.
func TestAuthUnexpected(t *testing.T) {
	c, srv := connectFake(t, Options{ProtocolLevel: packet.V5})
	if err := c.Reauthenticate(ctxT(t, 5*time.Second)); err == nil {
		t.Error("Reauthenticate without Options.Auth succeeded")
	}
	if err := srv.WritePacket(&packet.Auth{ReasonCode: 0x18, Props: authWith("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("link still up after an unexpected AUTH")
	}
	if !errors.Is(c.Err(), ErrProtocol) {
		t.Errorf("Err = %v, want ErrProtocol", c.Err())
	}
}

// TestReauthAbandoned: a re-authentication its context abandons closes the
// link, since MQTT cannot cancel one.
func TestReauthAbandoned(t *testing.T) {
	c, srv, err := scriptSCRAM(t, Options{ProtocolLevel: packet.V5, Auth: SCRAM("dev", "pw")},
		func(f string) *packet.Connack { return &packet.Connack{Props: authWith(f)} })
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 5*time.Second)
	res := make(chan error, 1)
	short, cancel := context.WithCancel(ctx)
	go func() { res <- c.Reauthenticate(short) }()
	if a := expect[*packet.Auth](t, srv); a.ReasonCode != 0x19 || a.Props == nil || a.Props.AuthMethod != "SCRAM-SHA-256" {
		t.Fatalf("AUTH %+v: want 0x19 with the method", a)
	}
	cancel() // the server never answers
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("Reauthenticate = %v, want context.Canceled", err)
	}
	if err := srv.ExpectClosed(5 * time.Second); err != nil {
		t.Errorf("link not closed: %v", err)
	}
}
