package broker

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// raw5 connects a raw MQTT 5.0 client with cp and checks the CONNACK code.
func (tb *testBroker) raw5(t *testing.T, cp *packet.Connect, wantCode byte) (*client.Raw, *packet.Connack) {
	t.Helper()
	cp.ProtocolName, cp.ProtocolLevel = "MQTT", packet.V5
	return tb.raw(t, cp, wantCode)
}

// connect5 connects a raw 5.0 client with Clean Start 1 and no session expiry.
func (tb *testBroker) connect5(t *testing.T, id string) *client.Raw {
	t.Helper()
	r, _ := tb.raw5(t, &packet.Connect{ClientID: id, CleanSession: true}, 0)
	return r
}

func u32(v uint32) *uint32 { return &v }

// expectServerDisconnect reads a DISCONNECT with code, then the close.
func expectServerDisconnect(t *testing.T, r *client.Raw, code byte) {
	t.Helper()
	d := expect[*packet.Disconnect](t, r)
	if d.ReasonCode != code {
		t.Fatalf("DISCONNECT reason 0x%02X, want 0x%02X", d.ReasonCode, code)
	}
	if d.Props != nil && d.Props.SessionExpiry != nil {
		t.Errorf("server DISCONNECT carries a Session Expiry Interval [MQTT-3.14.2-2]")
	}
	expectClosed(t, r)
}

// expectClosed checks that the broker closes the connection.
func expectClosed(t *testing.T, r *client.Raw) {
	t.Helper()
	p, err := r.ReadPacket(5 * time.Second)
	if err == nil {
		t.Fatalf("got %s, want the connection closed", p.Type())
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v, want EOF", err)
	}
}

// TestV5Connack checks that level 5 is accepted with reason 0x00 and the
// CONNACK properties that say what the broker supports.
func TestV5Connack(t *testing.T) {
	tb := startBroker(t, nil)
	_, ack := tb.raw5(t, &packet.Connect{ClientID: "v5-props", CleanSession: true}, 0)
	p := ack.Props
	if p == nil {
		t.Fatal("CONNACK without properties")
	}
	check := func(name string, got *byte, want byte) {
		t.Helper()
		if got == nil || *got != want {
			t.Errorf("%s = %v, want %d", name, got, want)
		}
	}
	check("Retain Available", p.RetainAvailable, 1)
	check("Wildcard Subscription Available", p.WildcardSubAvailable, 1)
	check("Subscription Identifiers Available", p.SubIDAvailable, 1)
	check("Shared Subscription Available", p.SharedSubAvailable, 1)
	if p.ReceiveMaximum == nil || int(*p.ReceiveMaximum) != DefaultMaxInflight {
		t.Errorf("Receive Maximum = %v, want max_inflight %d", p.ReceiveMaximum, DefaultMaxInflight)
	}
	if p.TopicAliasMaximum == nil || *p.TopicAliasMaximum != DefaultTopicAliasMaximum {
		t.Errorf("Topic Alias Maximum = %v, want %d", p.TopicAliasMaximum, DefaultTopicAliasMaximum)
	}
	if p.MaximumQoS != nil {
		t.Errorf("Maximum QoS %d sent; omitted means 2", *p.MaximumQoS)
	}
	if p.MaximumPacketSize != nil {
		t.Errorf("Maximum Packet Size %d sent without max_packet_size", *p.MaximumPacketSize)
	}
	if p.HasAssignedClientID {
		t.Errorf("Assigned Client Identifier %q for a client that chose one", p.AssignedClientID)
	}
	if ack.SessionPresent {
		t.Error("session present on a first connect")
	}

	tb2 := startBroker(t, func(c *Config) { c.MaxPacketSize = 4096; c.MaxInflight = 7 })
	_, ack = tb2.raw5(t, &packet.Connect{ClientID: "v5-mps", CleanSession: true}, 0)
	if m := ack.Props.MaximumPacketSize; m == nil || *m != 4096 {
		t.Errorf("Maximum Packet Size = %v, want 4096", m)
	}
	if rm := ack.Props.ReceiveMaximum; rm == nil || *rm != 7 {
		t.Errorf("Receive Maximum = %v, want 7", rm)
	}
}

// TestV5AssignedClientID checks [MQTT-3.2.2-16]: an empty client ID is
// allowed with Clean Start 0 too in 5.0, and CONNACK names the ID assigned.
func TestV5AssignedClientID(t *testing.T) {
	tb := startBroker(t, nil)
	seen := map[string]bool{}
	for _, clean := range []bool{true, false} {
		r, ack := tb.raw5(t, &packet.Connect{CleanSession: clean}, 0)
		if ack.Props == nil || !ack.Props.HasAssignedClientID || ack.Props.AssignedClientID == "" {
			t.Fatalf("clean %v: no Assigned Client Identifier", clean)
		}
		id := ack.Props.AssignedClientID
		if seen[id] {
			t.Fatalf("assigned %q twice", id)
		}
		seen[id] = true
		// The session is known by that ID.
		if got := tb.keepaliveOf(t, id); got != 0 {
			t.Fatalf("keepalive %v", got)
		}
		_ = r.Close()
	}
}

// TestV5Refusals checks that refusals to a 5.0 client are 5.0 CONNACKs
// with 5.0 reason codes, and that the connack event names the code.
func TestV5Refusals(t *testing.T) {
	tb := authBroker(t, false)
	for _, tc := range []struct {
		name string
		cp   packet.Connect
		code byte
	}{
		{"bad password", packet.Connect{UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("nope")}, 0x86},
		{"anonymous", packet.Connect{}, 0x87},
		{"auth method", packet.Connect{UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("secret"),
			Props: &packet.Properties{AuthMethod: "SCRAM-SHA-1", HasAuthMethod: true}}, 0x8C},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp := tc.cp
			cp.ClientID, cp.CleanSession = "v5ref-"+strings.ReplaceAll(tc.name, " ", "-"), true
			r, ack := tb.raw5(t, &cp, tc.code)
			if ack.SessionPresent {
				t.Error("session present on a refusal [MQTT-3.2.2-6]")
			}
			expectClosed(t, r)
			e := tb.wait(t, events.And(events.Is(events.ConnAck), events.ForClient(cp.ClientID)))
			if e.Code != int(tc.code) {
				t.Errorf("connack event code 0x%02X, want 0x%02X", e.Code, tc.code)
			}
		})
	}

	t.Run("max_connections", func(t *testing.T) {
		tb := startBroker(t, func(c *Config) { c.MaxConnections = 1 })
		tb.connect5(t, "v5-first")
		r, _ := tb.raw5(t, &packet.Connect{ClientID: "v5-second", CleanSession: true}, 0x89)
		expectClosed(t, r)
	})

	t.Run("unknown level", func(t *testing.T) {
		// A level the broker does not know is not a 5.0 client: the 3.1.1
		// form, 0x01, which any client can read [MQTT-3.1.2-2].
		tb := startBroker(t, nil)
		r, _ := tb.raw(t, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 6, ClientID: "v6", CleanSession: true}, packet.RefusedProtocolVersion)
		expectClosed(t, r)
	})

	t.Run("3.1.1 unchanged", func(t *testing.T) {
		tb := startBroker(t, nil)
		// Empty ID with clean session 0 is still refused with 0x02 in 3.1.1.
		tb.raw(t, &packet.Connect{}, packet.RefusedIdentifierRejected)
	})
}

// TestV5SessionExpiry checks that a 5.0 session outlives its connection for
// the Session Expiry Interval [MQTT-3.1.2-23], is resumed with Session
// Present 1 before that [MQTT-3.2.2-3], and is discarded after it
// [MQTT-4.1.0-2]; that the default interval 0 ends it with the connection;
// and that Clean Start 1 discards it [MQTT-3.1.2-4].
func TestV5SessionExpiry(t *testing.T) {
	tb := startBroker(t, nil)
	pub := tb.connect5(t, "se-pub")

	// Default interval 0: nothing survives.
	r, _ := tb.raw5(t, &packet.Connect{ClientID: "se-zero"}, 0)
	subscribe(t, r, sub("se/zero", 1))
	_ = r.WritePacket(&packet.Disconnect{})
	tb.wait(t, disconnectOf("se-zero"))
	if _, ack := tb.raw5(t, &packet.Connect{ClientID: "se-zero"}, 0); ack.SessionPresent {
		t.Error("expiry 0: session present after reconnect")
	}

	// Interval 2 s: resumed with its queued message before, gone after.
	cp := func(clean bool) *packet.Connect {
		return &packet.Connect{ClientID: "se-one", CleanSession: clean, Props: &packet.Properties{SessionExpiry: u32(2)}}
	}
	r, _ = tb.raw5(t, cp(true), 0)
	subscribe(t, r, sub("se/one", 1))
	_ = r.Close()
	tb.wait(t, disconnectOf("se-one"))
	publish(t, pub, &packet.Publish{Topic: "se/one", QoS: 1, PacketID: 1, Payload: []byte("kept")})
	r, ack := tb.raw5(t, cp(false), 0)
	if !ack.SessionPresent {
		t.Fatal("expiry 2 s: session not present on a reconnect within it")
	}
	if m := expect[*packet.Publish](t, r); string(m.Payload) != "kept" {
		t.Fatalf("queued message %q", m.Payload)
	}
	_ = r.Close()
	start := time.Now()
	tb.wait(t, events.And(events.Is(events.SessionExpired), events.ForClient("se-one")))
	if el := time.Since(start); el < 1900*time.Millisecond {
		t.Errorf("session expired after %v, before its 2 s", el)
	}
	if _, ack := tb.raw5(t, cp(false), 0); ack.SessionPresent {
		t.Error("session present after it expired")
	}

	// Clean Start 1 discards a session that has not expired.
	r, _ = tb.raw5(t, &packet.Connect{ClientID: "se-long", Props: &packet.Properties{SessionExpiry: u32(3600)}}, 0)
	_ = r.Close()
	tb.wait(t, disconnectOf("se-long"))
	if _, ack := tb.raw5(t, &packet.Connect{ClientID: "se-long", CleanSession: true, Props: &packet.Properties{SessionExpiry: u32(3600)}}, 0); ack.SessionPresent {
		t.Error("Clean Start 1: session present")
	}

	// 0xFFFFFFFF never expires; a 3.1.1 persistent session is the same.
	r, _ = tb.raw5(t, &packet.Connect{ClientID: "se-never", Props: &packet.Properties{SessionExpiry: u32(0xFFFFFFFF)}}, 0)
	_ = r.Close()
	tb.wait(t, disconnectOf("se-never"))
	if _, ack := tb.raw5(t, &packet.Connect{ClientID: "se-never"}, 0); !ack.SessionPresent {
		t.Error("expiry 0xFFFFFFFF: session not present")
	}
}

// TestV5DisconnectSessionExpiry checks the Session Expiry Interval of a
// client DISCONNECT: it replaces the one of CONNECT, but a session that had
// 0 cannot get another one (Protocol Error, MQTT 5.0 section 3.14.2.2.2).
func TestV5DisconnectSessionExpiry(t *testing.T) {
	tb := startBroker(t, nil)
	r, _ := tb.raw5(t, &packet.Connect{ClientID: "de-long", Props: &packet.Properties{SessionExpiry: u32(3600)}}, 0)
	_ = r.WritePacket(&packet.Disconnect{Props: &packet.Properties{SessionExpiry: u32(0)}})
	tb.wait(t, disconnectOf("de-long"))
	if _, ack := tb.raw5(t, &packet.Connect{ClientID: "de-long"}, 0); ack.SessionPresent {
		t.Error("DISCONNECT with expiry 0: session present")
	}

	r, _ = tb.raw5(t, &packet.Connect{ClientID: "de-zero"}, 0)
	_ = r.WritePacket(&packet.Disconnect{Props: &packet.Properties{SessionExpiry: u32(60)}})
	expectServerDisconnect(t, r, 0x82)
	e := tb.wait(t, disconnectOf("de-zero"))
	if e.Cause != events.CauseViolation || e.Code != 0x82 {
		t.Errorf("disconnect event cause %s code 0x%02X, want violation 0x82", e.Cause, e.Code)
	}
}

// TestV5ServerDisconnect checks the DISCONNECT a 5.0 client gets before
// the broker closes its connection, and the event naming its code.
func TestV5ServerDisconnect(t *testing.T) {
	t.Run("takeover", func(t *testing.T) {
		tb := startBroker(t, nil)
		old := tb.connect5(t, "sd-take")
		tb.connect5(t, "sd-take")
		expectServerDisconnect(t, old, 0x8E) // [MQTT-3.1.4-3]
		e := tb.wait(t, events.And(disconnectOf("sd-take"), func(e events.Event) bool { return e.Cause == events.CauseTakeover }))
		if e.Code != 0x8E {
			t.Errorf("event code 0x%02X", e.Code)
		}
	})
	t.Run("keepalive", func(t *testing.T) {
		tb := startBroker(t, nil)
		r, _ := tb.raw5(t, &packet.Connect{ClientID: "sd-ka", CleanSession: true, KeepAlive: 1}, 0)
		expectServerDisconnect(t, r, 0x8D)
		if e := tb.wait(t, disconnectOf("sd-ka")); e.Code != 0x8D || e.Statement != "MQTT-3.1.2-24" {
			t.Errorf("event code 0x%02X statement %q", e.Code, e.Statement)
		}
	})
	t.Run("protocol error", func(t *testing.T) {
		tb := startBroker(t, nil)
		r := tb.connect5(t, "sd-proto")
		_ = r.WritePacketVersion(&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "sd-proto"}, packet.V5)
		expectServerDisconnect(t, r, 0x82)
		if e := tb.wait(t, disconnectOf("sd-proto")); e.Code != 0x82 || e.Statement != "MQTT-3.1.0-2" {
			t.Errorf("event code 0x%02X statement %q", e.Code, e.Statement)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		tb := startBroker(t, nil)
		r := tb.connect5(t, "sd-malformed")
		// PUBLISH with both QoS bits set is malformed [MQTT-3.3.1-4].
		_ = r.WriteBytes([]byte{0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01})
		expectServerDisconnect(t, r, 0x81)
		e := tb.wait(t, events.And(events.Is(events.Violation), events.ForClient("sd-malformed")))
		if e.Code != 0x81 || e.Statement == "" {
			t.Errorf("violation event code 0x%02X statement %q", e.Code, e.Statement)
		}
	})
	t.Run("too large", func(t *testing.T) {
		tb := startBroker(t, func(c *Config) { c.MaxPacketSize = 64 })
		r := tb.connect5(t, "sd-large")
		_ = r.WritePacket(&packet.Publish{Topic: "big", Payload: make([]byte, 100)})
		expectServerDisconnect(t, r, 0x95)
	})
	t.Run("shutdown", func(t *testing.T) {
		tb := startBroker(t, nil)
		r := tb.connect5(t, "sd-close")
		done := make(chan error, 1)
		go func() { done <- tb.Close() }()
		expectServerDisconnect(t, r, 0x8B)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("3.1.1 gets none", func(t *testing.T) {
		tb := startBroker(t, nil)
		old := tb.connect(t, "sd-311")
		tb.connect(t, "sd-311")
		expectClosed(t, old)
	})
}

// TestV5DisconnectWill checks the will on a client DISCONNECT: reason 0x00
// discards it [MQTT-3.14.4-3], 0x04 (Disconnect with Will Message) publishes it.
func TestV5DisconnectWill(t *testing.T) {
	tb := startBroker(t, nil)
	w := tb.connect5(t, "dw-watch")
	subscribe(t, w, sub("dw/#", 0))
	for _, tc := range []struct {
		code    byte
		publish bool
	}{{0x00, false}, {0x04, true}} {
		id := "dw-" + string('0'+rune(tc.code))
		r, _ := tb.raw5(t, &packet.Connect{ClientID: id, CleanSession: true,
			Will: &packet.Will{Topic: "dw/" + id, Payload: []byte("gone"), Props: &packet.Properties{}}}, 0)
		_ = r.WritePacket(&packet.Disconnect{ReasonCode: tc.code})
		tb.wait(t, disconnectOf(id))
		if tc.publish {
			if m := expect[*packet.Publish](t, w); m.Topic != "dw/"+id {
				t.Errorf("will on %q", m.Topic)
			}
		} else {
			expectNothing(t, w, 200*time.Millisecond)
		}
	}
}

// TestV5PublishAckCodes checks the reason codes of PUBACK and PUBREC: 0x00
// delivered, 0x10 no matching subscribers, 0x87 refused by the ACL (and the
// QoS 2 flow ends there: the ID is free again); and PUBCOMP 0x92 for a
// PUBREL with an unknown packet identifier.
func TestV5PublishAckCodes(t *testing.T) {
	tb := authBroker(t, false)
	login := func(id string) *client.Raw {
		r, _ := tb.raw5(t, &packet.Connect{ClientID: id, CleanSession: true, UsernameFlag: true, Username: "alice",
			PasswordFlag: true, Password: []byte("secret")}, 0)
		return r
	}
	s := login("ac-sub")
	subscribe(t, s, sub("public/ok", 0))
	r := login("ac-pub")
	for _, tc := range []struct {
		topic string
		code  byte
	}{{"public/ok", 0x00}, {"public/nobody", 0x10}, {"private/x", 0x87}} {
		_ = r.WritePacket(&packet.Publish{Topic: tc.topic, QoS: 1, PacketID: 3, Payload: []byte("m")})
		if a := expect[*packet.Puback](t, r); a.ReasonCode != tc.code {
			t.Errorf("PUBACK on %s: 0x%02X, want 0x%02X", tc.topic, a.ReasonCode, tc.code)
		}
		_ = r.WritePacket(&packet.Publish{Topic: tc.topic, QoS: 2, PacketID: 4, Payload: []byte("m")})
		if a := expect[*packet.Pubrec](t, r); a.ReasonCode != tc.code {
			t.Errorf("PUBREC on %s: 0x%02X, want 0x%02X", tc.topic, a.ReasonCode, tc.code)
		}
		_ = r.WritePacket(&packet.Pubrel{PacketID: 4})
		want := byte(0)
		if tc.code >= 0x80 {
			want = 0x92 // the refused flow ended at PUBREC
		}
		if c := expect[*packet.Pubcomp](t, r); c.ReasonCode != want {
			t.Errorf("PUBCOMP after %s: 0x%02X, want 0x%02X", tc.topic, c.ReasonCode, want)
		}
	}
	// Two copies reached the subscriber (QoS 1 and 2 at QoS 0), no more.
	for range 2 {
		expect[*packet.Publish](t, s)
	}
	expectNothing(t, s, 100*time.Millisecond)
}

// TestV5SubackUnsubackCodes checks SUBACK reason codes (granted QoS, 0x87
// ACL, also for the filter of a shared subscription, 0x8F invalid filter
// or share name on an open connection, 0x97 limit)
// and UNSUBACK's one code per filter (0x00, 0x11 no subscription existed).
func TestV5SubackUnsubackCodes(t *testing.T) {
	tb := authBroker(t, false, func(c *Config) { c.MaxTopicLevels = 8 })
	r, _ := tb.raw5(t, &packet.Connect{ClientID: "sc", CleanSession: true, UsernameFlag: true, Username: "alice",
		PasswordFlag: true, Password: []byte("secret")}, 0)
	got := subscribe(t, r, sub("public/a", 2), sub("private/#", 1), sub("public/#/x", 0),
		sub("public/1/2/3/4/5/6/7/8/9", 0), sub("$share/g+/public/b", 1), sub("$share/g/private/#", 1), sub("alerts/+", 1))
	want := []byte{2, 0x87, 0x8F, 0x97, 0x8F, 0x87, 1}
	if string(got) != string(want) {
		t.Errorf("SUBACK codes % X, want % X", got, want)
	}
	// Still connected after the invalid filter.
	if err := r.WritePacket(&packet.Unsubscribe{PacketID: 2, Filters: []string{"public/a", "public/none", "alerts/+"}}); err != nil {
		t.Fatal(err)
	}
	u := expect[*packet.Unsuback](t, r)
	if want := []byte{0, 0x11, 0}; string(u.ReasonCodes) != string(want) {
		t.Errorf("UNSUBACK codes % X, want % X", u.ReasonCodes, want)
	}
}

// TestV5SubscriptionOptions checks No Local [MQTT-3.8.3-3], Retain As
// Published [MQTT-3.3.1-12] [MQTT-3.3.1-13] and Retain Handling 0/1/2
// [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11].
func TestV5SubscriptionOptions(t *testing.T) {
	tb := startBroker(t, nil)
	t.Run("no local", func(t *testing.T) {
		r := tb.connect5(t, "so-local")
		subscribe(t, r, packet.Subscription{Filter: "so/local", QoS: 1, NoLocal: true})
		publish(t, r, &packet.Publish{Topic: "so/local", QoS: 1, PacketID: 1, Payload: []byte("mine")})
		expectNothing(t, r, 200*time.Millisecond)
		other := tb.connect5(t, "so-local-other")
		publish(t, other, &packet.Publish{Topic: "so/local", Payload: []byte("theirs")})
		if m := expect[*packet.Publish](t, r); string(m.Payload) != "theirs" {
			t.Errorf("got %q", m.Payload)
		}
	})
	t.Run("retain as published", func(t *testing.T) {
		rap := tb.connect5(t, "so-rap")
		plain := tb.connect5(t, "so-plain")
		subscribe(t, rap, packet.Subscription{Filter: "so/rap", RetainAsPublished: true})
		subscribe(t, plain, sub("so/rap", 0))
		pub := tb.connect5(t, "so-rap-pub")
		publish(t, pub, &packet.Publish{Topic: "so/rap", Retain: true, Payload: []byte("r")})
		if m := expect[*packet.Publish](t, rap); !m.Retain {
			t.Error("Retain As Published 1: RETAIN cleared")
		}
		if m := expect[*packet.Publish](t, plain); m.Retain {
			t.Error("Retain As Published 0: RETAIN kept")
		}
		publish(t, pub, &packet.Publish{Topic: "so/rap", Retain: true}) // clear it
	})
	t.Run("retain handling", func(t *testing.T) {
		pub := tb.connect5(t, "so-rh-pub")
		publish(t, pub, &packet.Publish{Topic: "so/rh", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("kept")}) // stored once PUBACK is back
		for _, tc := range []struct {
			rh         byte
			first, own bool // retained sent on the first subscribe, on the same one again
		}{{0, true, true}, {1, true, false}, {2, false, false}} {
			r := tb.connect5(t, "so-rh-"+string('0'+rune(tc.rh)))
			for i, want := range []bool{tc.first, tc.own} {
				subscribe(t, r, packet.Subscription{Filter: "so/rh", RetainHandling: tc.rh})
				if want {
					if m := expect[*packet.Publish](t, r); !m.Retain || string(m.Payload) != "kept" {
						t.Errorf("rh %d subscribe %d: got %q retain %v", tc.rh, i, m.Payload, m.Retain)
					}
				} else {
					expectNothing(t, r, 150*time.Millisecond)
				}
			}
		}
	})
}

// waitPast returns once d has passed since start: the condition a message
// expiry test waits for is the broker's clock passing the expiry.
func waitPast(start time.Time, d time.Duration) {
	if left := time.Until(start.Add(d)); left > 0 {
		<-time.After(left)
	}
}

// TestV5PublishProperties checks that the properties of a PUBLISH reach 5.0
// subscribers unchanged [MQTT-3.3.2-4] (user properties in order, content
// type, payload format, response topic, correlation data), and that a 3.1.1
// subscriber gets the message without them.
func TestV5PublishProperties(t *testing.T) {
	tb := startBroker(t, nil)
	v5 := tb.connect5(t, "pp-v5")
	v3 := tb.connect(t, "pp-v3")
	subscribe(t, v5, sub("pp/#", 2))
	subscribe(t, v3, sub("pp/#", 2))
	one := byte(1)
	props := &packet.Properties{
		PayloadFormat: &one, ContentType: "application/json", HasContentType: true,
		ResponseTopic: "pp/reply", HasResponseTopic: true, CorrelationData: []byte{0, 1, 2},
		User: []packet.UserProperty{{Key: "k", Value: "v1"}, {Key: "k", Value: "v2"}, {Key: "a", Value: ""}},
	}
	pub := tb.connect5(t, "pp-pub")
	for qos := byte(0); qos <= 2; qos++ {
		publish(t, pub, &packet.Publish{Topic: "pp/t", QoS: qos, PacketID: 9, Props: props, Payload: []byte(`{"q":1}`)})
		m := expect[*packet.Publish](t, v5)
		if m.Props == nil {
			t.Fatalf("QoS %d: no properties forwarded", qos)
		}
		p := m.Props
		if p.PayloadFormat == nil || *p.PayloadFormat != 1 || p.ContentType != props.ContentType ||
			p.ResponseTopic != props.ResponseTopic || string(p.CorrelationData) != string(props.CorrelationData) ||
			len(p.User) != 3 || p.User[0] != props.User[0] || p.User[1] != props.User[1] || p.User[2] != props.User[2] {
			t.Errorf("QoS %d: properties %+v, want %+v", qos, p, props)
		}
		ackDelivery(t, v5, m)
		m3 := expect[*packet.Publish](t, v3)
		if string(m3.Payload) != `{"q":1}` {
			t.Errorf("3.1.1 subscriber got %q", m3.Payload)
		}
		ackDelivery(t, v3, m3)
	}
}

// ackDelivery completes the QoS flow of a message the broker delivered.
func ackDelivery(t *testing.T, r *client.Raw, m *packet.Publish) {
	t.Helper()
	switch m.QoS {
	case 1:
		_ = r.WritePacket(&packet.Puback{PacketID: m.PacketID})
	case 2:
		_ = r.WritePacket(&packet.Pubrec{PacketID: m.PacketID})
		expect[*packet.Pubrel](t, r)
		_ = r.WritePacket(&packet.Pubcomp{PacketID: m.PacketID})
	}
}

// TestV5MessageExpiry checks [MQTT-3.3.2-5]: a queued message whose
// Message Expiry Interval passed is not delivered, and [MQTT-3.3.2-6]: one
// that waited is forwarded with the interval less the wait; retained
// messages alike.
func TestV5MessageExpiry(t *testing.T) {
	tb := startBroker(t, nil)
	offline := func() {
		r, _ := tb.raw5(t, &packet.Connect{ClientID: "me-sub", CleanSession: true, Props: &packet.Properties{SessionExpiry: u32(60)}}, 0)
		subscribe(t, r, sub("me/q", 1))
		_ = r.Close()
		tb.wait(t, disconnectOf("me-sub"))
	}
	offline()
	pub := tb.connect5(t, "me-pub")
	// Each PUBACK says the broker holds the message: the 1 s expiries run
	// from before start.
	publish(t, pub, &packet.Publish{Topic: "me/r", QoS: 1, PacketID: 3, Retain: true, Payload: []byte("ret-short"), Props: &packet.Properties{MessageExpiry: u32(1)}})
	publish(t, pub, &packet.Publish{Topic: "me/s", QoS: 1, PacketID: 4, Retain: true, Payload: []byte("ret-long"), Props: &packet.Properties{MessageExpiry: u32(30)}})
	publish(t, pub, &packet.Publish{Topic: "me/q", QoS: 1, PacketID: 1, Payload: []byte("short"), Props: &packet.Properties{MessageExpiry: u32(1)}})
	publish(t, pub, &packet.Publish{Topic: "me/q", QoS: 1, PacketID: 2, Payload: []byte("long"), Props: &packet.Properties{MessageExpiry: u32(30)}})
	start := time.Now()

	// Before its expiry, a retained message goes out with its interval.
	fresh := tb.connect5(t, "me-fresh")
	subscribe(t, fresh, sub("me/s", 0))
	if m := expect[*packet.Publish](t, fresh); string(m.Payload) != "ret-long" || m.Props == nil || m.Props.MessageExpiry == nil || *m.Props.MessageExpiry > 30 {
		t.Fatalf("retained before expiry: %q %+v", m.Payload, m.Props)
	}

	waitPast(start, 1050*time.Millisecond)
	r, ack := tb.raw5(t, &packet.Connect{ClientID: "me-sub", Props: &packet.Properties{SessionExpiry: u32(60)}}, 0)
	if !ack.SessionPresent {
		t.Fatal("session lost")
	}
	m := expect[*packet.Publish](t, r)
	if string(m.Payload) != "long" {
		t.Fatalf("got %q first; the expired message was delivered", m.Payload)
	}
	if e := m.Props.MessageExpiry; e == nil || *e >= 30 {
		t.Errorf("forwarded Message Expiry Interval %v, want 30 less the wait", e)
	}
	_ = r.WritePacket(&packet.Puback{PacketID: m.PacketID})
	expectNothing(t, r, 100*time.Millisecond)
	tb.wait(t, events.And(events.Is(events.Drop), events.ForClient("me-sub"), func(e events.Event) bool { return e.Cause == events.CauseExpired }))

	subscribe(t, r, sub("me/r", 0), sub("me/s", 0))
	m = expect[*packet.Publish](t, r)
	if string(m.Payload) != "ret-long" {
		t.Fatalf("retained %q; the expired one was sent", m.Payload)
	}
	if e := m.Props.MessageExpiry; e == nil || *e >= 30 {
		t.Errorf("retained Message Expiry Interval %v, want less than 30", e)
	}
	expectNothing(t, r, 100*time.Millisecond)
}

// TestV5ClientLimits checks that the broker keeps unacknowledged QoS 1/2
// messages within the client's Receive Maximum [MQTT-3.3.4-9] and sends no
// packet over the client's Maximum Packet Size [MQTT-3.1.2-24] (it is
// discarded, as if sent).
func TestV5ClientLimits(t *testing.T) {
	tb := startBroker(t, nil)
	rm, mps := uint16(2), uint32(64)
	r, _ := tb.raw5(t, &packet.Connect{ClientID: "cl", CleanSession: true,
		Props: &packet.Properties{ReceiveMaximum: &rm, MaximumPacketSize: &mps}}, 0)
	subscribe(t, r, sub("cl/#", 1))
	pub := tb.connect5(t, "cl-pub")
	publish(t, pub, &packet.Publish{Topic: "cl/big", Payload: make([]byte, 100)})
	tb.wait(t, events.And(events.Is(events.Drop), events.ForClient("cl"), func(e events.Event) bool { return e.Cause == events.CauseTooLarge }))
	for i := range 4 {
		publish(t, pub, &packet.Publish{Topic: "cl/q", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte('a' + i)}})
	}
	a := expect[*packet.Publish](t, r)
	expect[*packet.Publish](t, r)
	expectNothing(t, r, 150*time.Millisecond) // two unacknowledged: the window is full
	_ = r.WritePacket(&packet.Puback{PacketID: a.PacketID})
	if m := expect[*packet.Publish](t, r); string(m.Payload) != "c" {
		t.Errorf("after one PUBACK got %q, want c", m.Payload)
	}
	expectNothing(t, r, 100*time.Millisecond)
}
