package client

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/packet"
)

// wireLog is a net.Conn that keeps a copy of every byte written, so a test
// reads back the packets the client really sent to a real broker.
type wireLog struct {
	net.Conn
	mu  sync.Mutex
	out []byte
}

func (w *wireLog) Write(b []byte) (int, error) {
	n, err := w.Conn.Write(b)
	w.mu.Lock()
	w.out = append(w.out, b[:n]...)
	w.mu.Unlock()
	return n, err
}

// publishes decodes the PUBLISHes written so far (MQTT 5).
func (w *wireLog) publishes(t *testing.T) []*packet.Publish {
	t.Helper()
	w.mu.Lock()
	b := append([]byte(nil), w.out...)
	w.mu.Unlock()
	var pubs []*packet.Publish
	for len(b) > 0 {
		p, n, err := packet.Decode(b, packet.Options{Version: packet.V5})
		if err != nil {
			t.Fatalf("decode what the client wrote: %v", err)
		}
		if pub, ok := p.(*packet.Publish); ok {
			pubs = append(pubs, pub)
		}
		b = b[n:]
	}
	return pubs
}

// aliasRoundTrip publishes on more distinct topics than the broker's Topic
// Alias Maximum (which must be wantMax), twice each round, through a
// client with Options.TopicAliases, and checks both ends: on the wire,
// aliases 1..wantMax only [MQTT-3.3.2-9], each first sent with its topic
// and then with an empty one; at a plain subscriber, every message on its
// own topic, in order; and the publisher's link still up (a broker
// disconnects with 0x94 for an alias over its maximum).
func aliasRoundTrip(t *testing.T, addr string, wantMax uint16) {
	ctx := ctxT(t, 30*time.Second)
	const prefix = "v5alias/"
	topics := int(wantMax) + 2
	sub := dialBroker(t, addr, v5Opts("alias-sub", true, nil))
	if _, err := sub.Subscribe(ctx, packet.Subscription{Filter: prefix + "#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	wire := &wireLog{Conn: nc}
	rec := events.NewRecorder()
	opts := v5Opts("alias-pub", true, nil)
	opts.TopicAliases, opts.Events = true, rec
	pub, ack, err := Connect(ctx, wire, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if ack.Props == nil || ack.Props.TopicAliasMaximum == nil || *ack.Props.TopicAliasMaximum != wantMax {
		t.Fatalf("CONNACK Topic Alias Maximum %v, want %d", ack.Props, wantMax)
	}
	const rounds = 2
	for r := range rounds {
		for i := range topics {
			topic := fmt.Sprintf("%sdev-%02d/temp", prefix, i)
			if err := pub.Publish(ctx, topic, 1, false, []byte(fmt.Sprintf("%d/%d", r, i))); err != nil {
				t.Fatalf("publish %s round %d: %v", topic, r, err)
			}
		}
	}
	for r := range rounds {
		for i := range topics {
			want := fmt.Sprintf("%sdev-%02d/temp", prefix, i)
			m := nextMessage(t, sub, 5*time.Second)
			if m.Topic != want || string(m.Payload) != fmt.Sprintf("%d/%d", r, i) {
				t.Fatalf("subscriber got %s %q, want %s %q", m.Topic, m.Payload, want, fmt.Sprintf("%d/%d", r, i))
			}
		}
	}
	select {
	case <-pub.Done():
		t.Fatalf("publisher link ended: %v", pub.Err())
	default:
	}

	pubs := wire.publishes(t)
	if len(pubs) != rounds*topics {
		t.Fatalf("%d PUBLISHes on the wire, want %d", len(pubs), rounds*topics)
	}
	for k, p := range pubs {
		r, i := k/topics, k%topics
		topic := fmt.Sprintf("%sdev-%02d/temp", prefix, i)
		var wantTopic string
		var wantAlias uint16
		switch {
		case i >= int(wantMax): // aliases all given: in full
			wantTopic = topic
		case r == 0: // first use: topic and alias
			wantTopic, wantAlias = topic, uint16(i+1)
		default: // later: alias only
			wantAlias = uint16(i + 1)
		}
		if p.Topic != wantTopic || wireAlias(p) != wantAlias {
			t.Errorf("PUBLISH %d (round %d, %s): wire topic %q alias %d; want %q alias %d", k, r, topic, p.Topic, wireAlias(p), wantTopic, wantAlias)
		}
	}
	if n := rec.Count(func(e events.Event) bool { return e.Kind == events.PublishSent && e.Detail == DetailAliasOnly }); n != int(wantMax) {
		t.Errorf("%d publish_sent events with an alias only, want %d", n, wantMax)
	}
}

// TestV5ClientTopicAliasesReferenceBroker: the round trip against the
// reference broker (Topic Alias Maximum 10 by default).
func TestV5ClientTopicAliasesReferenceBroker(t *testing.T) {
	b := brokertest.Start(t, nil)
	aliasRoundTrip(t, brokertest.TCP(b), 10)
}
