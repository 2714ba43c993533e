package broker

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestEffectiveQoS checks that a message is delivered with the minimum of
// its QoS and the subscription's, and that overlapping subscriptions deliver
// once at the highest QoS [MQTT-3.3.5-1].
func TestEffectiveQoS(t *testing.T) {
	tb := startBroker(t, nil)
	pub := tb.connect(t, "eq-pub")
	for _, tc := range []struct {
		subs    []packet.Subscription
		pubQoS  byte
		wantQoS byte
	}{
		{[]packet.Subscription{sub("eq/a", 0)}, 2, 0},
		{[]packet.Subscription{sub("eq/b", 1)}, 2, 1},
		{[]packet.Subscription{sub("eq/c", 2)}, 1, 1},
		{[]packet.Subscription{sub("eq/d", 2)}, 2, 2},
		{[]packet.Subscription{sub("eq/e", 0), sub("eq/+", 2)}, 2, 2},
	} {
		name := tc.subs[0].Filter
		t.Run(name, func(t *testing.T) {
			r := tb.connect(t, "eq-sub-"+name)
			subscribe(t, r, tc.subs...)
			publish(t, pub, &packet.Publish{Topic: name, QoS: tc.pubQoS, PacketID: 5, Payload: []byte("m")})
			p := expect[*packet.Publish](t, r)
			if p.QoS != tc.wantQoS {
				t.Errorf("delivered at QoS %d, want %d", p.QoS, tc.wantQoS)
			}
			if p.QoS == 1 {
				_ = r.WritePacket(&packet.Puback{PacketID: p.PacketID})
			}
			expectNothing(t, r, 100*time.Millisecond)
		})
	}
}

// TestQoS2ExactlyOnce checks [MQTT-4.3.3-2]: a QoS 2 PUBLISH resent before
// PUBREL is acknowledged again but routed once; after PUBREL the ID is new.
func TestQoS2ExactlyOnce(t *testing.T) {
	tb := startBroker(t, nil)
	s := tb.connect(t, "x2-sub")
	subscribe(t, s, sub("x2", 0))
	p, _ := tb.raw(t, &packet.Connect{ClientID: "x2-pub"}, 0)
	m := &packet.Publish{Topic: "x2", QoS: 2, PacketID: 7, Payload: []byte("once")}
	for i := range 3 {
		m.Dup = i > 0
		_ = p.WritePacket(m)
		if rec := expect[*packet.Pubrec](t, p); rec.PacketID != 7 {
			t.Fatalf("PUBREC id %d", rec.PacketID)
		}
	}
	// Held across a reconnect of a persistent session too.
	_ = p.Close()
	tb.wait(t, disconnectOf("x2-pub"))
	p, _ = tb.raw(t, &packet.Connect{ClientID: "x2-pub"}, 0)
	m.Dup = true
	_ = p.WritePacket(m)
	expect[*packet.Pubrec](t, p)
	_ = p.WritePacket(&packet.Pubrel{PacketID: 7})
	expect[*packet.Pubcomp](t, p)
	if got := expect[*packet.Publish](t, s); string(got.Payload) != "once" {
		t.Fatalf("got %q", got.Payload)
	}
	expectNothing(t, s, 200*time.Millisecond)
	// After PUBCOMP the same ID carries a new message.
	m.Dup, m.Payload = false, []byte("again")
	publish(t, p, m)
	if got := expect[*packet.Publish](t, s); string(got.Payload) != "again" {
		t.Fatalf("got %q", got.Payload)
	}
}

// TestRetained checks [MQTT-3.3.1-5] store, replace, [MQTT-3.3.1-10]
// [MQTT-3.3.1-11] clear with an empty payload, [MQTT-3.3.1-8] RETAIN 1 on
// subscribe and [MQTT-3.3.1-9] RETAIN 0 to existing subscribers.
func TestRetained(t *testing.T) {
	tb := startBroker(t, nil)
	pub := tb.connect(t, "ret-pub")
	live := tb.connect(t, "ret-live")
	subscribe(t, live, sub("ret/#", 1))

	publish(t, pub, &packet.Publish{Topic: "ret/a", Retain: true, QoS: 1, PacketID: 1, Payload: []byte("v1")})
	publish(t, pub, &packet.Publish{Topic: "ret/a", Retain: true, QoS: 1, PacketID: 2, Payload: []byte("v2")})
	publish(t, pub, &packet.Publish{Topic: "ret/b", Retain: true, Payload: []byte("b")})
	for range 3 {
		p := expect[*packet.Publish](t, live)
		if p.Retain {
			t.Errorf("forwarded with RETAIN 1: %+v", p)
		}
		if p.QoS == 1 {
			_ = live.WritePacket(&packet.Puback{PacketID: p.PacketID})
		}
	}
	if n := tb.Stats().Retained; n != 2 {
		t.Errorf("retained count %d, want 2", n)
	}
	late := tb.connect(t, "ret-late")
	subscribe(t, late, sub("ret/+", 1))
	got := map[string]string{}
	for range 2 {
		p := expect[*packet.Publish](t, late)
		if !p.Retain {
			t.Errorf("retained delivered with RETAIN 0: %+v", p)
		}
		got[p.Topic] = string(p.Payload)
		if p.QoS == 1 {
			_ = late.WritePacket(&packet.Puback{PacketID: p.PacketID})
		}
	}
	if got["ret/a"] != "v2" || got["ret/b"] != "b" {
		t.Errorf("retained %v", got)
	}
	// Clearing: delivered to live subscribers, then gone.
	publish(t, pub, &packet.Publish{Topic: "ret/a", Retain: true})
	if p := expect[*packet.Publish](t, live); p.Topic != "ret/a" || len(p.Payload) != 0 {
		t.Errorf("clear not forwarded: %+v", p)
	}
	later := tb.connect(t, "ret-later")
	subscribe(t, later, sub("ret/a", 0))
	expectNothing(t, later, 200*time.Millisecond)
}

// TestWildcards checks + and # matching and [MQTT-4.7.2-1] for $ topics; an
// invalid filter closes a 3.1.1 connection without SUBACK [MQTT-4.7.1-2]
// [MQTT-4.7.1-3] [MQTT-4.7.3-1] (TestInvalidFilterCloses).
func TestWildcards(t *testing.T) {
	tb := startBroker(t, nil)
	pub := tb.connect(t, "wc-pub")
	id := uint16(0)
	for _, tc := range []struct {
		filter string
		code   byte
		topics map[string]bool // topic -> delivered
	}{
		{"a/+/c", 0, map[string]bool{"a/b/c": true, "a/c": false, "a/b/c/d": false}},
		{"a/#", 0, map[string]bool{"a": true, "a/b/c": true, "b/a": false}},
		{"#", 0, map[string]bool{"x/y": true, "$SYS/x": false}},
		{"+/x", 0, map[string]bool{"$foo/x": false, "foo/x": true}},
		{"$SYS/#", 0, map[string]bool{"$SYS/x": true}},
		{"/", 0, map[string]bool{"/": true, "a/": false}},
		{"+/+", 0, map[string]bool{"a/b": true, "/x": true, "a": false}},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			r := tb.connect(t, "wc-"+tc.filter)
			codes := subscribe(t, r, sub(tc.filter, 0))
			if codes[0] != tc.code {
				t.Fatalf("SUBACK %#x, want %#x", codes[0], tc.code)
			}
			for topic, want := range tc.topics {
				// QoS 1: the broker routes before it sends PUBACK, so a wrong
				// delivery is already on its way when the silence check starts.
				id++
				publish(t, pub, &packet.Publish{Topic: topic, Payload: []byte(topic), QoS: 1, PacketID: id})
				if want {
					if p := expect[*packet.Publish](t, r); p.Topic != topic {
						t.Errorf("got %q, want %q", p.Topic, topic)
					}
				}
			}
			expectNothing(t, r, 100*time.Millisecond)
		})
	}
}

// TestSlowConsumer checks that a subscriber that never reads does not slow a
// publisher or a fast subscriber: the publisher's flood completes, the fast
// subscriber gets the QoS 1 end marker published after it, and the stalled
// subscriber's drops are counted and evented.
func TestSlowConsumer(t *testing.T) {
	tb := startBroker(t, func(c *Config) { c.OutboundBuffer = 64 })
	stalled := tb.connect(t, "stalled") // never reads again
	subscribe(t, stalled, sub("flood/#", 0))
	fast := tb.connect(t, "fast")
	subscribe(t, fast, sub("flood/data", 0), sub("flood/end", 1))
	pub := tb.connect(t, "flooder")

	const n = 20000
	payload := bytes.Repeat([]byte("x"), 1024)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		for i := range n {
			if err := pub.WritePacket(&packet.Publish{Topic: "flood/data", Payload: payload}); err != nil {
				done <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
		}
		done <- pub.WritePacket(&packet.Publish{Topic: "flood/end", QoS: 1, PacketID: 1, Payload: []byte("end")})
	}()
	got := 0
	for {
		p, err := fast.ReadPacket(20 * time.Second)
		if err != nil {
			t.Fatalf("fast subscriber after %d messages: %v", got, err)
		}
		if m, ok := p.(*packet.Publish); ok && m.Topic == "flood/end" {
			break
		}
		got++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("fast subscriber got %d of %d x 1 KB (+ end marker) in %v", got, n, time.Since(start))
	stalledDrops := tb.rec.Count(events.And(events.Is(events.Drop), events.ForClient("stalled"), func(e events.Event) bool { return e.Cause == events.CauseQueueFull }))
	if stalledDrops < n/2 {
		t.Errorf("stalled subscriber: %d drops evented, want most of %d", stalledDrops, n)
	}
	if d := tb.Stats().MessagesDropped; d < uint64(stalledDrops) {
		t.Errorf("stats count %d drops, events %d", d, stalledDrops)
	}
}

// TestInvalidFilterCloses: in 3.1.1 a SUBSCRIBE carrying a filter that is
// not a valid Topic Filter is malformed, so the connection closes without a
// SUBACK, whatever valid filters come with it [MQTT-4.7.1-2] [MQTT-4.7.1-3]
// [MQTT-4.7.3-1], and the broker says which rule in a violation event; the
// same goes for UNSUBSCRIBE, which 3.1.1 cannot refuse.
func TestInvalidFilterCloses(t *testing.T) {
	tb := startBroker(t, nil)
	for _, tc := range []struct {
		name      string
		subs      []packet.Subscription
		statement string
	}{
		{"empty", []packet.Subscription{sub("", 0)}, "MQTT-4.7.3-1"},
		{"# first with more after", []packet.Subscription{sub("#eclipse/x", 0)}, "MQTT-4.7.1-2"},
		{"# not a whole level", []packet.Subscription{sub("a/b#", 0)}, "MQTT-4.7.1-2"},
		{"# not last", []packet.Subscription{sub("a/#/b", 0)}, "MQTT-4.7.1-2"},
		{"+ sharing a level", []packet.Subscription{sub("a/+data", 0)}, "MQTT-4.7.1-3"},
		{"invalid among valid", []packet.Subscription{sub("mix/a", 1), sub("mix/#/b", 0), sub("mix/+", 2)}, "MQTT-4.7.1-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "inv-" + strings.ReplaceAll(tc.name, " ", "-")
			r := tb.connect(t, id)
			if err := r.WritePacket(&packet.Subscribe{PacketID: 1, Subscriptions: tc.subs}); err != nil {
				t.Fatal(err)
			}
			if err := r.ExpectClosed(5 * time.Second); err != nil {
				t.Fatalf("SUBSCRIBE %v: %v, want the connection closed without SUBACK", tc.subs, err)
			}
			tb.wait(t, events.And(events.Is(events.Violation), events.ForClient(id),
				func(e events.Event) bool { return e.Statement == tc.statement }))
		})
	}
	r := tb.connect(t, "mix-unsub")
	if err := r.WritePacket(&packet.Unsubscribe{PacketID: 3, Filters: []string{"ok/x", "bad/#/x"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpectClosed(5 * time.Second); err != nil {
		t.Fatalf("UNSUBSCRIBE with an invalid filter: %v", err)
	}
}
