package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/auth"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Enhanced authentication (enhanced_auth.go) over real sockets: the native
// client's SCRAM-SHA-256 against the broker's, and raw packets for what a
// well-behaved client never sends.

const scramUser, scramPassword = "dev-scram", "s3cret pass"

// startSCRAMBroker starts a broker whose SCRAM file holds scramUser.
func startSCRAMBroker(t *testing.T, edit func(*Config)) *testBroker {
	t.Helper()
	cred, err := auth.SCRAMCredential(scramPassword, auth.MinSCRAMIterations)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "scram")
	if err := os.WriteFile(file, []byte("# test users\n"+scramUser+":"+cred+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startBroker(t, func(c *Config) {
		c.Auth.SCRAMFile = file
		if edit != nil {
			edit(c)
		}
	})
}

// dialSCRAM connects the native 5.0 client with SCRAM-SHA-256.
func (tb *testBroker) dialSCRAM(t *testing.T, id string, a client.Authenticator) (*client.Client, *packet.Connack, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, ack, err := client.Dial(ctx, tb.tcp, client.Options{ClientID: id, ProtocolLevel: packet.V5, CleanSession: true, Auth: a})
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, ack, err
}

func refusedWith(id string, code byte, statement string) events.Match {
	return events.And(events.Is(events.ConnAck), events.ForClient(id), func(e events.Event) bool {
		return e.Code == int(code) && e.Statement == statement
	})
}

func TestEnhancedAuthSCRAMSuccess(t *testing.T) {
	tb := startSCRAMBroker(t, nil)
	c, ack, err := tb.dialSCRAM(t, "scram-ok", client.SCRAM(scramUser, scramPassword))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	// The client verified the server signature in the CONNACK (Finish); the
	// CONNACK names the method [MQTT-4.12.0-5].
	if ack.Props == nil || ack.Props.AuthMethod != auth.SCRAMMethod || !strings.HasPrefix(string(ack.Props.AuthData), "v=") {
		t.Fatalf("CONNACK properties %+v: want the method and the server-final message", ack.Props)
	}
	e := tb.wait(t, events.And(events.Is(events.Auth), events.ForClient("scram-ok")))
	if !strings.Contains(e.Detail, `as "`+scramUser+`"`) {
		t.Errorf("auth event %q does not name the user", e.Detail)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "scram/t", QoS: 1}); err != nil {
		t.Fatalf("subscribe after SCRAM: %v", err)
	}
	if err := c.Publish(ctx, "scram/t", 1, false, []byte("x")); err != nil {
		t.Fatalf("publish after SCRAM: %v", err)
	}
	if m := <-c.Messages(); string(m.Payload) != "x" {
		t.Fatalf("got %q", m.Payload)
	}
}

// TestEnhancedAuthSCRAMRefused: a wrong password and an unknown user both
// get CONNACK 0x87 and the close [MQTT-4.12.0-4] [MQTT-3.1.4-2].
func TestEnhancedAuthSCRAMRefused(t *testing.T) {
	tb := startSCRAMBroker(t, nil)
	for _, tc := range []struct{ id, user, pass string }{{"bad-pass", scramUser, "wrong"}, {"bad-user", "nobody", scramPassword}} {
		_, ack, err := tb.dialSCRAM(t, tc.id, client.SCRAM(tc.user, tc.pass))
		var ce *client.ConnackError
		if !errors.As(err, &ce) || ce.Code != 0x87 || ack == nil || ack.ReturnCode != 0x87 {
			t.Fatalf("%s: connect = %+v, %v; want CONNACK 0x87", tc.id, ack, err)
		}
		tb.wait(t, refusedWith(tc.id, 0x87, "MQTT-4.12.0-4"))
		tb.wait(t, events.And(disconnectOf(tc.id), func(e events.Event) bool { return e.Cause == events.CauseRefused }))
	}
}

// TestEnhancedAuthUnsupportedMethod: an Authentication Method the broker
// does not offer is CONNACK 0x8C [MQTT-4.12.0-1], also SCRAM-SHA-256 on a
// broker without a SCRAM file.
func TestEnhancedAuthUnsupportedMethod(t *testing.T) {
	tb := startBroker(t, nil)
	_, _, err := tb.dialSCRAM(t, "no-scram", client.SCRAM(scramUser, scramPassword))
	var ce *client.ConnackError
	if !errors.As(err, &ce) || ce.Code != 0x8C {
		t.Fatalf("connect = %v; want CONNACK 0x8C", err)
	}
	tb.wait(t, refusedWith("no-scram", 0x8C, "MQTT-4.12.0-1"))
}

// scramStart sends a raw CONNECT with the SCRAM client-first message and
// returns the server's AUTH 0x18 (Continue) and the client exchange.
func scramStart(t *testing.T, tb *testBroker, id string) (*client.Raw, client.AuthExchange, *packet.Auth) {
	t.Helper()
	x, err := client.SCRAM(scramUser, scramPassword).Start()
	if err != nil {
		t.Fatal(err)
	}
	first, err := x.Step(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := client.NewRaw(tb.dial(t), packet.V5)
	cp := &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, CleanSession: true, ClientID: id,
		Props: &packet.Properties{AuthMethod: auth.SCRAMMethod, HasAuthMethod: true, AuthData: first}}
	if err := r.WritePacket(cp); err != nil {
		t.Fatal(err)
	}
	a := expect[*packet.Auth](t, r)
	if a.ReasonCode != 0x18 || a.Props == nil || a.Props.AuthMethod != auth.SCRAMMethod || len(a.Props.AuthData) == 0 {
		t.Fatalf("server AUTH %+v: want 0x18 with the method and the server-first message [MQTT-4.12.0-2] [MQTT-4.12.0-5]", a)
	}
	return r, x, a
}

// TestEnhancedAuthRawExchange drives the exchange with raw packets and
// checks each packet of the broker.
func TestEnhancedAuthRawExchange(t *testing.T) {
	tb := startSCRAMBroker(t, nil)
	r, x, a := scramStart(t, tb, "raw-scram")
	final, err := x.Step(a.Props.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WritePacket(&packet.Auth{ReasonCode: 0x18, Props: &packet.Properties{AuthMethod: auth.SCRAMMethod, HasAuthMethod: true, AuthData: final}}); err != nil {
		t.Fatal(err)
	}
	ack := expect[*packet.Connack](t, r)
	if ack.ReturnCode != 0 || ack.Props == nil || ack.Props.AuthMethod != auth.SCRAMMethod {
		t.Fatalf("CONNACK %+v: want 0x00 with the method", ack)
	}
	if err := x.Finish(ack.Props.AuthData); err != nil {
		t.Fatalf("server signature: %v", err)
	}
}

// TestEnhancedAuthNonAuthMidExchange: a PUBLISH instead of the client's AUTH
// is refused (CONNACK 0x82, then close) and never routed [MQTT-3.1.4-6].
func TestEnhancedAuthNonAuthMidExchange(t *testing.T) {
	tb := startSCRAMBroker(t, nil)
	watch := tb.connect(t, "watch")
	subscribe(t, watch, sub("mid/x", 0))
	r, _, _ := scramStart(t, tb, "mid-pub")
	if err := r.WritePacket(&packet.Publish{Topic: "mid/x", Payload: []byte("sneaked")}); err != nil {
		t.Fatal(err)
	}
	if ack := expect[*packet.Connack](t, r); ack.ReturnCode != 0x82 {
		t.Fatalf("CONNACK 0x%02X, want 0x82", ack.ReturnCode)
	}
	expectClosed(t, r)
	tb.wait(t, refusedWith("mid-pub", 0x82, "MQTT-3.1.4-6"))
	tb.wait(t, disconnectOf("mid-pub"))
	// Packets of one connection are handled in order: had the PUBLISH been
	// routed, it would reach the watcher before this marker.
	marker := tb.connect(t, "marker")
	publish(t, marker, &packet.Publish{Topic: "mid/x", Payload: []byte("marker")})
	if m := expect[*packet.Publish](t, watch); string(m.Payload) != "marker" {
		t.Fatalf("watcher got %q first: the PUBLISH sent during authentication was processed", m.Payload)
	}
}

// TestEnhancedAuthMalformedAUTH: AUTH with fixed-header flags [MQTT-3.15.1-1]
// or a reason code AUTH does not have [MQTT-3.15.2-1] closes the connection.
func TestEnhancedAuthMalformedAUTH(t *testing.T) {
	tb := startSCRAMBroker(t, nil)
	for _, tc := range []struct {
		id, statement string
		frame         []byte
	}{
		{"flags", "MQTT-3.15.1-1", packet.Frame(0xF1, []byte{0x18, 0})},
		{"reason", "MQTT-3.15.2-1", packet.Frame(0xF0, []byte{0x05, 0})},
	} {
		r, _, _ := scramStart(t, tb, tc.id)
		if err := r.WriteBytes(tc.frame); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, r)
		e := tb.wait(t, events.And(events.Is(events.Violation), events.ForClient(tc.id)))
		if e.Statement != tc.statement || e.Code != 0x81 {
			t.Errorf("%s: violation %s code 0x%02X, want %s 0x81", tc.id, e.Statement, e.Code, tc.statement)
		}
	}
}

// TestEnhancedAuthTimeout: the connect timeout bounds a stalled exchange.
func TestEnhancedAuthTimeout(t *testing.T) {
	tb := startSCRAMBroker(t, func(c *Config) { c.ConnectTimeout = 300 * time.Millisecond })
	r, _, _ := scramStart(t, tb, "stall")
	expectClosed(t, r)
	e := tb.wait(t, disconnectOf("stall"))
	if !strings.Contains(e.Detail, "connect_timeout") {
		t.Errorf("disconnect detail %q: want the connect timeout named", e.Detail)
	}
}

// switchAuth authenticates with first, then re-authenticates with next.
type switchAuth struct {
	first, next client.Authenticator
	started     int
}

func (s *switchAuth) Method() string { return s.first.Method() }
func (s *switchAuth) Start() (client.AuthExchange, error) {
	s.started++
	if s.started == 1 {
		return s.first.Start()
	}
	return s.next.Start()
}

// TestEnhancedAuthReauthenticate: AUTH 0x19 with the right password ends
// in AUTH 0x00 and the link goes on; with a wrong one the broker sends
// DISCONNECT 0x87 and closes [MQTT-4.12.1-2].
func TestEnhancedAuthReauthenticate(t *testing.T) {
	tb := startSCRAMBroker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tb.dialSCRAM(t, "reauth", client.SCRAM(scramUser, scramPassword))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := c.Reauthenticate(ctx); err != nil {
			t.Fatalf("re-authentication %d: %v", i+1, err)
		}
	}
	if err := c.Publish(ctx, "re/t", 1, false, []byte("still up")); err != nil {
		t.Fatalf("publish after re-authentication: %v", err)
	}
	tb.wait(t, events.And(events.Is(events.Auth), events.ForClient("reauth"), func(e events.Event) bool { return strings.Contains(e.Detail, "re-authenticated") }))

	bad, _, err := tb.dialSCRAM(t, "reauth-bad", &switchAuth{first: client.SCRAM(scramUser, scramPassword), next: client.SCRAM(scramUser, "wrong")})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Reauthenticate(ctx)
	var re *client.ReasonError
	if !errors.As(err, &re) || re.Code != 0x87 {
		t.Fatalf("failed re-authentication = %v; want the link ended by DISCONNECT 0x87", err)
	}
	e := tb.wait(t, disconnectOf("reauth-bad"))
	if e.Cause != events.CauseNotAuthorized || e.Code != 0x87 || e.Statement != "MQTT-4.12.1-2" {
		t.Errorf("disconnect event %+v: want not_authorized, 0x87, MQTT-4.12.1-2", e)
	}
}

// TestEnhancedAuthReauthProtocolErrors: after CONNACK, an AUTH with another
// method, AUTH 0x18 with no re-authentication running, and AUTH from a
// client that connected without a method are Protocol Errors (DISCONNECT 0x82).
func TestEnhancedAuthReauthProtocolErrors(t *testing.T) {
	tb := startSCRAMBroker(t, nil)
	connectSCRAMRaw := func(id string) *client.Raw {
		r, x, a := scramStart(t, tb, id)
		final, err := x.Step(a.Props.AuthData)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WritePacket(&packet.Auth{ReasonCode: 0x18, Props: &packet.Properties{AuthMethod: auth.SCRAMMethod, HasAuthMethod: true, AuthData: final}}); err != nil {
			t.Fatal(err)
		}
		if ack := expect[*packet.Connack](t, r); ack.ReturnCode != 0 {
			t.Fatalf("CONNACK 0x%02X", ack.ReturnCode)
		}
		return r
	}
	for _, tc := range []struct {
		id  string
		r   func(string) *client.Raw
		pkt *packet.Auth
	}{
		{"other-method", connectSCRAMRaw, &packet.Auth{ReasonCode: 0x19, Props: &packet.Properties{AuthMethod: "PLAIN", HasAuthMethod: true}}},
		{"continue-idle", connectSCRAMRaw, &packet.Auth{ReasonCode: 0x18, Props: &packet.Properties{AuthMethod: auth.SCRAMMethod, HasAuthMethod: true}}},
		{"no-method", func(id string) *client.Raw { return tb.connect5(t, id) }, &packet.Auth{ReasonCode: 0x19, Props: &packet.Properties{AuthMethod: auth.SCRAMMethod, HasAuthMethod: true}}},
	} {
		r := tc.r(tc.id)
		if err := r.WritePacket(tc.pkt); err != nil {
			t.Fatal(err)
		}
		expectServerDisconnect(t, r, 0x82)
		tb.wait(t, events.And(events.Is(events.Violation), events.ForClient(tc.id)))
	}
}

// TestEnhancedAuthPlainClientsUnchanged: with SCRAM configured, 3.1.1 and
// 5.0 clients without an Authentication Method connect as before, and the
// 5.0 CONNACK carries no method [MQTT-4.12.0-6].
func TestEnhancedAuthPlainClientsUnchanged(t *testing.T) {
	tb := startSCRAMBroker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, level := range []byte{packet.V311, packet.V5} {
		c, ack, err := client.Dial(ctx, tb.tcp, client.Options{ClientID: "plain", ProtocolLevel: level, CleanSession: true})
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		if ack.Props != nil && ack.Props.HasAuthMethod {
			t.Errorf("level %d: CONNACK names Authentication Method %q", level, ack.Props.AuthMethod)
		}
		if err := c.Publish(ctx, "plain/t", 1, false, []byte("x")); err != nil {
			t.Fatalf("level %d publish: %v", level, err)
		}
		if err := c.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
