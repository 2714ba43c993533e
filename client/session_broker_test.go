package client

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/netem"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Sessions across a real link cut: the device talks to the broker through
// the netem proxy, which first blackholes one direction (so the broker gets
// a packet but its answer is lost, or the other way round) and then resets
// the link. Run against the reference broker and Debian's Mosquitto, at
// MQTT 3.1.1 and 5.0.

// sessionBrokers are the brokers these tests run against.
var sessionBrokers = []struct {
	name  string
	start func(*testing.T) string
}{
	{"reference", func(t *testing.T) string { return brokertest.TCP(brokertest.Start(t, nil)) }},
	{"mosquitto", func(t *testing.T) string { return startMosquitto(t).Addr }},
}

// sessionVersions: a persistent session is Clean Session 0 in 3.1.1, and
// Clean Start 0 with a Session Expiry Interval above 0 in 5.0.
var sessionVersions = []struct {
	name  string
	level byte
	props *packet.Properties
}{
	{"3.1.1", packet.V311, nil},
	{"5.0", packet.V5, &packet.Properties{SessionExpiry: func() *uint32 { v := uint32(60); return &v }()}},
}

func startProxy(t *testing.T, broker string) *netem.Proxy {
	t.Helper()
	px := netem.NewProxy(netem.ProxyConfig{Listen: "127.0.0.1:0", Upstream: broker, Seed: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := px.Start(); err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(func() { _ = px.Close() })
	return px
}

// dialVia connects a client through px and returns it with its link's
// device-side address, which selects the link for faults.
func dialVia(t *testing.T, px *netem.Proxy, opts Options) (*Client, *packet.Connack, string) {
	t.Helper()
	conn, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	c, ack, err := Connect(ctxT(t, 5*time.Second), conn, opts)
	if err != nil {
		t.Fatalf("connect %q through the proxy: %v", opts.ClientID, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, ack, conn.LocalAddr().String()
}

func applyFault(t *testing.T, px *netem.Proxy, remote string, f netem.Fault) {
	t.Helper()
	if _, err := px.Apply(netem.ByRemote(remote), f); err != nil {
		t.Fatalf("apply %s: %v", f.Kind, err)
	}
}

// resetLink resets the device's link and waits for the client to see it.
func resetLink(t *testing.T, px *netem.Proxy, c *Client, remote string) {
	t.Helper()
	applyFault(t, px, remote, netem.Fault{Kind: netem.Reset})
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not see the reset", c.ClientID())
	}
}

// TestSessionOutgoingAcrossCut: a QoS 2 and a QoS 1 message reach the
// broker but their PUBREC and PUBACK are lost with the link. Reconnecting
// with the Session, the client resends both with DUP 1 and their Tokens
// complete; the subscriber gets the QoS 2 message exactly once and the QoS
// 1 one at least once.
func TestSessionOutgoingAcrossCut(t *testing.T) {
	for _, b := range sessionBrokers {
		for _, v := range sessionVersions {
			t.Run(b.name+"/"+v.name, func(t *testing.T) {
				broker := b.start(t)
				px := startProxy(t, broker)
				ctx := ctxT(t, 20*time.Second)
				sub := dialBroker(t, broker, Options{ClientID: "sub", CleanSession: true, ProtocolLevel: v.level})
				if _, err := sub.Subscribe(ctx, packet.Subscription{Filter: "s/#", QoS: 2}); err != nil {
					t.Fatal(err)
				}
				rec := events.NewRecorder()
				sess := NewSession()
				opts := Options{ClientID: "dev-out", ProtocolLevel: v.level, Props: v.props, Session: sess, Events: rec}
				// A clean start first, so no earlier run's session is in the way.
				clean := opts
				clean.CleanSession, clean.Session = true, nil
				dialBroker(t, broker, clean).Disconnect(ctx)

				pub, _, remote := dialVia(t, px, opts)
				applyFault(t, px, remote, netem.Fault{Kind: netem.Blackhole, Direction: netem.Downstream})
				t2 := pub.PublishAsync(ctx, "s/q2", 2, false, []byte("two"))
				t1 := pub.PublishAsync(ctx, "s/q1", 1, false, []byte("one"))
				// The broker reads in order: once it has forwarded the QoS 1
				// message it has the QoS 2 one too.
				counts := map[string]int{}
				for counts["one"] == 0 {
					counts[string(nextMessage(t, sub, 5*time.Second).Payload)]++
				}
				resetLink(t, px, pub, remote)
				requirePending(t, t1, t2)

				pub2, ack, _ := dialVia(t, px, opts)
				if !ack.SessionPresent {
					t.Fatalf("CONNACK Session Present 0 for a persistent session")
				}
				for _, tok := range []*Token{t2, t1} {
					if err := tok.Wait(ctx); err != nil {
						t.Fatalf("held publish after reconnect: %v", err)
					}
				}
				if n := rec.Count(events.And(events.Is(events.PublishSent), func(e events.Event) bool { return e.Dup })); n != 2 {
					t.Errorf("%d PUBLISH resent with DUP, want 2", n)
				}
				// Markers on both topics: each broker forwards a topic's
				// messages in order [MQTT-4.6.0-6], so every copy of the two
				// messages comes before its topic's marker.
				for _, m := range []struct {
					topic string
					qos   byte
				}{{"s/q1", 1}, {"s/q2", 2}} {
					if err := pub2.Publish(ctx, m.topic, m.qos, false, []byte("marker")); err != nil {
						t.Fatal(err)
					}
				}
				for counts["marker"] < 2 {
					counts[string(nextMessage(t, sub, 5*time.Second).Payload)]++
				}
				if counts["two"] != 1 || counts["one"] < 1 {
					t.Fatalf("subscriber got QoS 2 x%d, QoS 1 x%d; want exactly 1 and at least 1", counts["two"], counts["one"])
				}
				t.Logf("QoS 1 message delivered %d times", counts["one"])
			})
		}
	}
}

// TestSessionIncomingAcrossCut: the broker sends a QoS 2 message, the
// client delivers it and answers PUBREC, and the PUBREC is lost with the
// link. The broker resends the PUBLISH on the new connection; with the
// Session the client answers it without delivering it again.
func TestSessionIncomingAcrossCut(t *testing.T) {
	for _, b := range sessionBrokers {
		for _, v := range sessionVersions {
			t.Run(b.name+"/"+v.name, func(t *testing.T) {
				broker := b.start(t)
				px := startProxy(t, broker)
				ctx := ctxT(t, 20*time.Second)
				sess := NewSession()
				opts := Options{ClientID: "dev-in", ProtocolLevel: v.level, Props: v.props, Session: sess}
				clean := opts
				clean.CleanSession, clean.Session = true, nil
				dialBroker(t, broker, clean).Disconnect(ctx)

				sub, _, remote := dialVia(t, px, opts)
				if _, err := sub.Subscribe(ctx, packet.Subscription{Filter: "r/x", QoS: 2}); err != nil {
					t.Fatal(err)
				}
				pub := dialBroker(t, broker, Options{ClientID: "pub", CleanSession: true, ProtocolLevel: v.level})
				applyFault(t, px, remote, netem.Fault{Kind: netem.Blackhole, Direction: netem.Upstream})
				if err := pub.Publish(ctx, "r/x", 2, false, []byte("once")); err != nil {
					t.Fatal(err)
				}
				if m := nextMessage(t, sub, 5*time.Second); string(m.Payload) != "once" {
					t.Fatalf("got %q, want once", m.Payload)
				}
				resetLink(t, px, sub, remote)
				if _, in := sess.Pending(); in != 1 {
					t.Fatalf("session holds %d incoming QoS 2 ids, want 1", in)
				}

				sub2, ack, _ := dialVia(t, px, opts)
				if !ack.SessionPresent {
					t.Fatalf("CONNACK Session Present 0 for a persistent session")
				}
				// The resent copy, if delivered, would come before the marker.
				markerNext(t, ctx, pub, sub2, "r/x", 2, "marker")
			})
		}
	}
}
