package broker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/auth"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// authBroker starts a broker with a password file (alice/secret,
// bob/hunter2) and an ACL file.
func authBroker(t *testing.T, anonymous bool, edits ...func(*Config)) *testBroker {
	t.Helper()
	dir := t.TempDir()
	var pw []byte
	for _, u := range []struct{ user, pass string }{{"alice", "secret"}, {"bob", "hunter2"}} {
		h, err := auth.HashPassword([]byte(u.pass))
		if err != nil {
			t.Fatal(err)
		}
		pw = append(pw, u.user+":"+h+"\n"...)
	}
	acl := "user alice\ntopic readwrite public/#\ntopic read alerts/#\n\n" +
		"user bob\ntopic readwrite public/#\n\n" +
		"pattern readwrite users/%u/#\npattern write devices/%c/out\n"
	pf, af := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	if err := os.WriteFile(pf, pw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(af, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
	return startBroker(t, func(c *Config) {
		c.Auth = auth.Config{AllowAnonymous: anonymous, PasswordFile: pf, ACLFile: af}
		for _, edit := range edits {
			edit(c)
		}
	})
}

// TestAuthenticate checks CONNACK codes for credentials: 4 for bad ones
// [MQTT-3.1.2-22 applies to a password without user], 5 for anonymous
// clients when anonymous access is off.
func TestAuthenticate(t *testing.T) {
	tb := authBroker(t, false)
	for _, tc := range []struct {
		name string
		cp   packet.Connect
		code byte
	}{
		{"good", packet.Connect{UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("secret")}, 0},
		{"wrong password", packet.Connect{UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("nope")}, packet.RefusedBadUsernamePassword},
		{"unknown user", packet.Connect{UsernameFlag: true, Username: "eve", PasswordFlag: true, Password: []byte("secret")}, packet.RefusedBadUsernamePassword},
		{"no password", packet.Connect{UsernameFlag: true, Username: "alice"}, packet.RefusedBadUsernamePassword},
		{"anonymous", packet.Connect{}, packet.RefusedNotAuthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := tc.cp
			cp.ClientID, cp.CleanSession = "auth-"+tc.name, true
			r, _ := tb.raw(t, &cp, tc.code)
			if tc.code != 0 {
				if err := r.ExpectClosed(5 * time.Second); err != nil {
					t.Fatal(err)
				}
				tb.wait(t, events.And(events.Is(events.ConnAck), events.ForClient(cp.ClientID), func(e events.Event) bool { return e.Code == int(tc.code) }))
			}
		})
	}
}

// TestACL checks subscribe refusal (SUBACK 0x80), publish refusal (dropped
// and evented, flow still completed) and %u/%c patterns.
func TestACL(t *testing.T) {
	tb := authBroker(t, true)
	login := func(user, pass, id string) *packet.Connect {
		return &packet.Connect{ClientID: id, CleanSession: true, UsernameFlag: true, Username: user, PasswordFlag: true, Password: []byte(pass)}
	}
	alice, _ := tb.raw(t, login("alice", "secret", "alice-1"), 0)
	bob, _ := tb.raw(t, login("bob", "hunter2", "bob-1"), 0)

	codes := subscribe(t, alice, sub("public/#", 1), sub("alerts/x", 0), sub("users/alice/#", 0), sub("users/bob/#", 0), sub("secret/#", 0))
	want := []byte{1, 0, 0, packet.SubackFailure, packet.SubackFailure}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("SUBACK[%d] = %#x, want %#x (codes %v)", i, codes[i], want[i], codes)
		}
	}
	tb.wait(t, events.And(events.Is(events.Subscribed), events.ForClient("alice-1"), func(e events.Event) bool {
		return e.Topic == "secret/#" && e.QoS == packet.SubackFailure
	}))

	// bob may publish to public/ and his own devices/%c/out, not to alerts/.
	publish(t, bob, &packet.Publish{Topic: "public/news", QoS: 1, PacketID: 1, Payload: []byte("ok")})
	if p := expect[*packet.Publish](t, alice); p.Topic != "public/news" {
		t.Fatalf("got %q", p.Topic)
	} else {
		_ = alice.WritePacket(&packet.Puback{PacketID: p.PacketID})
	}
	publish(t, bob, &packet.Publish{Topic: "alerts/x", QoS: 1, PacketID: 2, Payload: []byte("denied")})
	e := tb.wait(t, events.And(events.Is(events.Drop), events.ForClient("bob-1")))
	if e.Cause != events.CauseNotAuthorized || e.Topic != "alerts/x" {
		t.Errorf("drop event %+v", e)
	}
	expectNothing(t, alice, 200*time.Millisecond)
}
