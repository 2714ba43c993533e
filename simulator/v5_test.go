package simulator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// TestV5FleetProperties runs a 5.0 fleet whose group sets the MQTT 5 knobs
// against the in-process broker: a subscriber sees every message with the
// user properties rendered for its device, the message expiry, content type
// and response topic, and the results count one CONNACK 0x00 per device.
func TestV5FleetProperties(t *testing.T) {
	addr := brokertest.Start(t, nil).Addr("tcp")
	const devices, count = 4, 3
	msgs := make(chan *packet.Publish, devices*count*2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, _, err := client.Dial(ctx, addr, client.Options{ClientID: "watcher", ProtocolLevel: packet.V5, CleanSession: true,
		OnMessage: func(p *packet.Publish) { msgs <- p }})
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	defer sub.Close()
	if _, err := sub.Subscribe(ctx, packet.Subscription{Filter: "v5/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	p := &profile.Profile{
		Name: "v5", Seed: 1, Duration: 20 * time.Second, Drain: 500 * time.Millisecond,
		Groups: []profile.Group{{
			Name: "v5", Count: devices, ClientID: "v5-{{.Index}}", Protocol: 5,
			SessionExpiry: "never", ReceiveMaximum: 8,
			UserProperties: []profile.UserProperty{{Name: "device", Value: "{{.ClientID}}"}, {Name: "site", Value: "s{{mod .Index 2}}"}},
			MessageExpiry:  60 * time.Second, ContentType: "application/json", ResponseTopic: "reply/{{.Index}}",
			Publish: &profile.Publish{Interval: 50 * time.Millisecond, QoS: 1, Topic: "v5/{{.Index}}", Count: count,
				Payload: profile.Payload{Kind: profile.PayloadRandomWalk, Start: 20, Step: 1}},
		}},
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	res := runFleet(t, Config{Profile: p, Broker: addr})
	c := res.Counters
	if c["connack_rc_0x00"] != devices {
		t.Errorf("connack_rc_0x00 = %d, want %d (counters %v)", c["connack_rc_0x00"], devices, c)
	}
	if c["puback_rc_0x00"] != c["publishes_acked"] || c["publishes_acked"] != devices*count {
		t.Errorf("puback_rc_0x00 = %d, publishes_acked = %d, want %d", c["puback_rc_0x00"], c["publishes_acked"], devices*count)
	}
	seen := map[string]int{}
	for len(seen) < devices || total(seen) < devices*count {
		var m *packet.Publish
		select {
		case m = <-msgs:
		case <-ctx.Done():
			t.Fatalf("subscriber got %v, want %d messages from each of %d devices", seen, count, devices)
		}
		idx := m.Topic[len("v5/"):]
		pr := m.Props
		if pr == nil {
			t.Fatalf("message on %s without properties", m.Topic)
		}
		want := []packet.UserProperty{{Key: "device", Value: "v5-" + idx}, {Key: "site", Value: "s" + map[string]string{"0": "0", "1": "1", "2": "0", "3": "1"}[idx]}}
		if len(pr.User) != 2 || pr.User[0] != want[0] || pr.User[1] != want[1] {
			t.Errorf("%s: user properties %+v, want %+v", m.Topic, pr.User, want)
		}
		if pr.MessageExpiry == nil || *pr.MessageExpiry == 0 || *pr.MessageExpiry > 60 {
			t.Errorf("%s: message expiry %v, want 1..60 s", m.Topic, pr.MessageExpiry)
		}
		if pr.ContentType != "application/json" || pr.ResponseTopic != "reply/"+idx {
			t.Errorf("%s: content type %q, response topic %q", m.Topic, pr.ContentType, pr.ResponseTopic)
		}
		seen[m.Topic]++
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestRefusalReasonCodes: a broker refusing connects shows up as the
// connack_rc counter of its code, in 3.1.1 and 5.0 terms.
func TestRefusalReasonCodes(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(pwFile, []byte("dev:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	passwords := func(c *broker.Config) { c.Auth.AllowAnonymous, c.Auth.PasswordFile = false, pwFile }
	for _, tc := range []struct {
		name     string
		protocol int
		edit     func(*broker.Config)
		password string
		accepted int64
		refused  string
	}{
		{"max_connections/3.1.1", 4, func(c *broker.Config) { c.MaxConnections = 1 }, "", 1, "connack_rc_0x03"},
		{"max_connections/5.0", 5, func(c *broker.Config) { c.MaxConnections = 1 }, "", 1, "connack_rc_0x89"},
		{"bad password/3.1.1", 4, passwords, "wrong", 0, "connack_rc_0x04"},
		{"bad password/5.0", 5, passwords, "wrong", 0, "connack_rc_0x86"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out its run
			addr := brokertest.Start(t, tc.edit).Addr("tcp")
			const devices = 3
			g := profile.Group{Name: "d", Count: devices, ClientID: "d-{{.Index}}", Protocol: tc.protocol}
			if tc.password != "" {
				g.Username, g.Password = "dev", tc.password
			}
			// No publishing and no reconnect: the run ends at its duration,
			// after every device made its one attempt.
			p := &profile.Profile{Name: "refused", Seed: 1, Duration: 3 * time.Second, Drain: 100 * time.Millisecond, Groups: []profile.Group{g}}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			c := runFleet(t, Config{Profile: p, Broker: addr}).Counters
			if c[tc.refused] != devices-tc.accepted || c["connack_rc_0x00"] != tc.accepted {
				t.Errorf("%s = %d and connack_rc_0x00 = %d, want %d and %d (counters %v)",
					tc.refused, c[tc.refused], c["connack_rc_0x00"], devices-tc.accepted, tc.accepted, c)
			}
		})
	}
}

// TestV5ConnectProps: the CONNECT properties a device sends come from its
// group's session_expiry, receive_maximum and user_properties.
func TestV5ConnectProps(t *testing.T) {
	p := &profile.Profile{Name: "v5", Groups: []profile.Group{{
		Name: "g", Count: 2, Protocol: 5, SessionExpiry: "10m", ReceiveMaximum: 5,
		UserProperties: []profile.UserProperty{{Name: "n", Value: "{{.N}}"}},
	}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Profile: p, Broker: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	rt := f.groups[0]
	conn, pub := rt.v5Props(f.vars(rt, 1))
	if conn == nil || conn.SessionExpiry == nil || *conn.SessionExpiry != 600 || conn.ReceiveMaximum == nil || *conn.ReceiveMaximum != 5 ||
		len(conn.User) != 1 || conn.User[0] != (packet.UserProperty{Key: "n", Value: "2"}) {
		t.Errorf("CONNECT properties %+v", conn)
	}
	if pub == nil || len(pub.User) != 1 || pub.MessageExpiry != nil || pub.HasContentType || pub.HasResponseTopic {
		t.Errorf("PUBLISH properties %+v, want the user property only", pub)
	}
}

// TestV5TakeoverReasonCode: devices sharing a client ID take each other's
// session over; the broker's DISCONNECT 0x8e to the one taken over counts
// as disconnect_rc_0x8e, once per takeover.
func TestV5TakeoverReasonCode(t *testing.T) {
	addr := brokertest.Start(t, nil).Addr("tcp")
	p := &profile.Profile{Name: "dup", Seed: 1, Duration: 2 * time.Second, Drain: 100 * time.Millisecond,
		Groups: []profile.Group{{Name: "dup", Count: 4, ClientID: "dup-{{mod .Index 2}}", Protocol: 5,
			Lifecycle: profile.Lifecycle{Spread: time.Second}}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	c := runFleet(t, Config{Profile: p, Broker: addr}).Counters
	if c["takeovers"] != 2 || c["disconnect_rc_0x8e"] != 2 || c["connack_rc_0x00"] != 4 {
		t.Errorf("takeovers %d, disconnect_rc_0x8e %d, connack_rc_0x00 %d; want 2, 2, 4 (counters %v)",
			c["takeovers"], c["disconnect_rc_0x8e"], c["connack_rc_0x00"], c)
	}
}

// TestPahoRefusesV5Knobs: the paho driver speaks no MQTT 5, so a group
// asking for MQTT 5 properties is refused rather than run without them.
func TestPahoRefusesV5Knobs(t *testing.T) {
	p := &profile.Profile{Name: "v5", Groups: []profile.Group{{Name: "g", Count: 1, Protocol: 5, ReceiveMaximum: 5}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Profile: p, Broker: "127.0.0.1:1", Driver: Paho{}}); err == nil || !strings.Contains(err.Error(), "paho driver") {
		t.Fatalf("New = %v, want a refusal naming the paho driver", err)
	}
}

// TestV5FleetTopicAliases: a 5.0 group with topic_alias publishes through
// the in-process broker with Topic Aliases: one alias set per device (one
// topic each), every later PUBLISH sent with the alias only, and a watcher
// gets every message on its device's full topic. A broker with Topic Alias
// Maximum 0 gets no alias, and the messages still arrive.
func TestV5FleetTopicAliases(t *testing.T) {
	const devices, count = 4, 3
	for _, tc := range []struct {
		name           string
		most           int
		set, aliasOnly int64
	}{
		{"maximum 10", 10, devices, devices * (count - 1)},
		{"maximum 0", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := brokertest.Start(t, func(c *broker.Config) { c.TopicAliasMaximum = tc.most }).Addr("tcp")
			msgs := make(chan *packet.Publish, devices*count*2)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sub, _, err := client.Dial(ctx, addr, client.Options{ClientID: "watcher", ProtocolLevel: packet.V5, CleanSession: true,
				OnMessage: func(p *packet.Publish) { msgs <- p }})
			if err != nil {
				t.Fatalf("subscriber: %v", err)
			}
			defer sub.Close()
			if _, err := sub.Subscribe(ctx, packet.Subscription{Filter: "v5a/#", QoS: 1}); err != nil {
				t.Fatal(err)
			}
			p := &profile.Profile{
				Name: "v5a", Seed: 1, Duration: 20 * time.Second, Drain: 500 * time.Millisecond,
				Groups: []profile.Group{{
					Name: "v5a", Count: devices, ClientID: "v5a-{{.Index}}", Protocol: 5, TopicAlias: true,
					Publish: &profile.Publish{Interval: 50 * time.Millisecond, QoS: 1, Topic: "v5a/{{.Index}}/temp", Count: count,
						Payload: profile.Payload{Kind: profile.PayloadRandomWalk, Start: 20, Step: 1}},
				}},
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			res := runFleet(t, Config{Profile: p, Broker: addr})
			c := res.Counters
			if c["publishes_acked"] != devices*count || c["puback_rc_0x00"] != devices*count {
				t.Errorf("publishes_acked = %d, puback_rc_0x00 = %d, want %d", c["publishes_acked"], c["puback_rc_0x00"], devices*count)
			}
			if c["topic_aliases_set"] != tc.set || c["publishes_alias_only"] != tc.aliasOnly {
				t.Errorf("topic_aliases_set = %d, publishes_alias_only = %d; want %d, %d", c["topic_aliases_set"], c["publishes_alias_only"], tc.set, tc.aliasOnly)
			}
			seen := map[string]int{}
			for total(seen) < devices*count {
				select {
				case m := <-msgs:
					seen[m.Topic]++
				case <-ctx.Done():
					t.Fatalf("watcher got %v, want %d messages on each of %d topics", seen, count, devices)
				}
			}
			for i := range devices {
				if topic := fmt.Sprintf("v5a/%d/temp", i); seen[topic] != count {
					t.Errorf("watcher got %d messages on %s, want %d (all: %v)", seen[topic], topic, count, seen)
				}
			}
		})
	}
}
