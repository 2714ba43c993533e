package client

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// aliasAck is a CONNACK giving Topic Alias Maximum most; nil most sends
// no Topic Alias Maximum at all.
func aliasAck(most *uint16) *packet.Connack {
	return &packet.Connack{Props: &packet.Properties{TopicAliasMaximum: most}}
}

func u16(v uint16) *uint16 { return &v }

// wireAlias is the Topic Alias a PUBLISH carried on the wire; 0 for none.
func wireAlias(p *packet.Publish) uint16 {
	if p.Props == nil || p.Props.TopicAlias == nil {
		return 0
	}
	return *p.Props.TopicAlias
}

// TestV5ClientTopicAliasesOnWire: with Options.TopicAliases and a server
// Topic Alias Maximum of 2, the first two topics get aliases 1 and 2: their
// first PUBLISH carries topic and alias, later ones an empty topic and the
// alias; a third topic goes out in full, as does a topic too short to
// gain [MQTT-3.3.2-9] [MQTT-3.2.2-17]. The caller's shared properties are
// sent with the alias added and are not changed; publish_sent events show
// the alias and the full topic.
func TestV5ClientTopicAliasesOnWire(t *testing.T) {
	rec := events.NewRecorder()
	c, srv := sessionLink(t, Options{ClientID: "alias-out", ProtocolLevel: packet.V5, TopicAliases: true, Events: rec}, aliasAck(u16(2)))
	ctx := ctxT(t, 10*time.Second)
	shared := &packet.Properties{User: []packet.UserProperty{{Key: "site", Value: "north"}}}
	steps := []struct {
		topic     string
		qos       byte
		wireTopic string
		alias     uint16
		detail    string
	}{
		{"dev/a/temp", 1, "dev/a/temp", 1, DetailAliasSet},
		{"dev/a/temp", 1, "", 1, DetailAliasOnly},
		{"dev/b/temp", 0, "dev/b/temp", 2, DetailAliasSet},
		{"dev/c/temp", 1, "dev/c/temp", 0, ""}, // both aliases taken
		{"dev/b/temp", 1, "", 2, DetailAliasOnly},
		{"abc", 1, "abc", 0, ""}, // shorter than minAliasTopic
		{"dev/a/temp", 0, "", 1, DetailAliasOnly},
		{"dev/c/temp", 0, "dev/c/temp", 0, ""},
	}
	for i, s := range steps {
		tok := c.PublishAsyncProps(ctx, s.topic, s.qos, false, []byte{byte(i)}, shared)
		p := expect[*packet.Publish](t, srv)
		if p.Topic != s.wireTopic || wireAlias(p) != s.alias || len(p.Payload) != 1 || p.Payload[0] != byte(i) {
			t.Fatalf("publish %d on %s: wire topic %q alias %d payload %v; want topic %q alias %d", i, s.topic, p.Topic, wireAlias(p), p.Payload, s.wireTopic, s.alias)
		}
		if p.Props == nil || !slices.Equal(p.Props.User, shared.User) {
			t.Errorf("publish %d: properties %+v lost the caller's user property", i, p.Props)
		}
		if s.qos == 1 {
			write(t, srv, &packet.Puback{PacketID: p.PacketID})
		}
		if err := tok.Wait(ctx); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if shared.TopicAlias != nil {
		t.Errorf("the caller's properties were changed: Topic Alias %d", *shared.TopicAlias)
	}
	sent := rec.Filter(events.Is(events.PublishSent))
	if len(sent) != len(steps) {
		t.Fatalf("%d publish_sent events, want %d", len(sent), len(steps))
	}
	for i, e := range sent {
		if e.Topic != steps[i].topic || e.Alias != steps[i].alias || e.Detail != steps[i].detail {
			t.Errorf("publish_sent %d: topic %q alias %d detail %q; want %q, %d, %q", i, e.Topic, e.Alias, e.Detail, steps[i].topic, steps[i].alias, steps[i].detail)
		}
	}
}

// TestV5ClientTopicAliasesNone: no alias is sent when the server gives
// Topic Alias Maximum 0 or none [MQTT-3.2.2-18], nor when the options do not
// ask for aliases; every PUBLISH carries its topic.
func TestV5ClientTopicAliasesNone(t *testing.T) {
	for _, tc := range []struct {
		name string
		on   bool
		most *uint16
	}{
		{"maximum 0", true, u16(0)},
		{"no maximum", true, nil},
		{"not asked", false, u16(10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := sessionLink(t, Options{ClientID: "no-alias", ProtocolLevel: packet.V5, TopicAliases: tc.on}, aliasAck(tc.most))
			ctx := ctxT(t, 10*time.Second)
			for i := range 3 {
				tok := c.PublishAsync(ctx, "dev/a/temp", 1, false, nil)
				p := expect[*packet.Publish](t, srv)
				if p.Topic != "dev/a/temp" || wireAlias(p) != 0 {
					t.Fatalf("publish %d: wire topic %q alias %d; want the topic and no alias", i, p.Topic, wireAlias(p))
				}
				write(t, srv, &packet.Puback{PacketID: p.PacketID})
				if err := tok.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestV5ClientTopicAliasInProps: with Options.TopicAliases, a publish whose
// properties carry a Topic Alias is refused before anything is written,
// since the caller's alias could clash with the client's.
func TestV5ClientTopicAliasInProps(t *testing.T) {
	c, srv := sessionLink(t, Options{ClientID: "alias-props", ProtocolLevel: packet.V5, TopicAliases: true}, aliasAck(u16(5)))
	ctx := ctxT(t, 10*time.Second)
	err := c.PublishAsyncProps(ctx, "dev/a/temp", 0, false, nil, &packet.Properties{TopicAlias: u16(1)}).Err()
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("publish with a Topic Alias in props: %v, want ErrProtocol", err)
	}
	// The link is up and the client's own mapping starts at 1.
	if err := c.PublishAsync(ctx, "dev/a/temp", 0, false, nil).Err(); err != nil {
		t.Fatal(err)
	}
	if p := expect[*packet.Publish](t, srv); p.Topic != "dev/a/temp" || wireAlias(p) != 1 {
		t.Fatalf("wire topic %q alias %d, want the topic with alias 1", p.Topic, wireAlias(p))
	}
}

// TestV5ClientTopicAliasesAcrossReconnect: aliases do not outlive the
// connection [MQTT-3.3.2-7]. A QoS 1 message published with an empty topic
// and an alias is cut before its PUBACK; on the next connection (Session
// Present 1) it is resent with DUP, its full topic and no alias, and the
// next new publish on that topic sets alias 1 afresh.
func TestV5ClientTopicAliasesAcrossReconnect(t *testing.T) {
	sess := NewSession()
	rec := events.NewRecorder()
	opts := Options{ClientID: "alias-sess", ProtocolLevel: packet.V5, TopicAliases: true, Session: sess, Events: rec}
	ctx := ctxT(t, 10*time.Second)
	c1, srv1 := sessionLink(t, opts, aliasAck(u16(4)))
	first := c1.PublishAsync(ctx, "dev/a/temp", 1, false, []byte("0"))
	if p := expect[*packet.Publish](t, srv1); p.Topic != "dev/a/temp" || wireAlias(p) != 1 {
		t.Fatalf("first publish: wire topic %q alias %d", p.Topic, wireAlias(p))
	} else {
		write(t, srv1, &packet.Puback{PacketID: p.PacketID})
	}
	if err := first.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	held := c1.PublishAsync(ctx, "dev/a/temp", 1, false, []byte("1"))
	p := expect[*packet.Publish](t, srv1)
	if p.Topic != "" || wireAlias(p) != 1 {
		t.Fatalf("second publish: wire topic %q alias %d, want empty with alias 1", p.Topic, wireAlias(p))
	}
	heldID := p.PacketID
	cut(t, c1, srv1)
	requirePending(t, held)

	ack := aliasAck(u16(4))
	ack.SessionPresent = true
	c2, srv2 := sessionLink(t, opts, ack)
	r := expect[*packet.Publish](t, srv2)
	if r.Topic != "dev/a/temp" || wireAlias(r) != 0 || !r.Dup || r.PacketID != heldID || string(r.Payload) != "1" {
		t.Fatalf("resent: topic %q alias %d dup %v id %d payload %q; want dev/a/temp, no alias, DUP, id %d", r.Topic, wireAlias(r), r.Dup, r.PacketID, r.Payload, heldID)
	}
	write(t, srv2, &packet.Puback{PacketID: r.PacketID})
	if err := held.Wait(ctx); err != nil {
		t.Fatalf("held message: %v", err)
	}
	for i, want := range []struct {
		topic string
		alias uint16
	}{{"dev/a/temp", 1}, {"", 1}} {
		tok := c2.PublishAsync(ctx, "dev/a/temp", 1, false, []byte(fmt.Sprint(i+2)))
		p := expect[*packet.Publish](t, srv2)
		if p.Topic != want.topic || wireAlias(p) != want.alias {
			t.Fatalf("new publish %d after reconnect: wire topic %q alias %d; want %q alias %d", i, p.Topic, wireAlias(p), want.topic, want.alias)
		}
		write(t, srv2, &packet.Puback{PacketID: p.PacketID})
		if err := tok.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The resend's publish_sent shows no alias.
	var dups []events.Event
	for _, e := range rec.Filter(events.Is(events.PublishSent)) {
		if e.Dup {
			dups = append(dups, e)
		}
	}
	if len(dups) != 1 || dups[0].Alias != 0 || dups[0].Topic != "dev/a/temp" {
		t.Errorf("resent publish_sent events %+v, want one on dev/a/temp without alias", dups)
	}
}

// TestAliasOutTable: aliases 1..max in first-come order, found again by
// scan and, past aliasIndexFrom, by the map; none beyond max; forget
// undoes the last assignment only, so its alias is given next time.
func TestAliasOutTable(t *testing.T) {
	a := &aliasOut{max: aliasIndexFrom + 3}
	topic := func(i int) string { return fmt.Sprintf("t/%02d", i) }
	for i := range int(a.max) {
		if got := a.assign(topic(i)); got != uint16(i+1) {
			t.Fatalf("assign %s = %d, want %d", topic(i), got, i+1)
		}
		if i+1 == aliasIndexFrom && a.index != nil {
			t.Fatalf("map made at %d aliases, want a scan up to %d", i+1, aliasIndexFrom)
		}
	}
	if a.index == nil {
		t.Fatalf("no map past %d aliases", aliasIndexFrom)
	}
	if got := a.assign("t/extra"); got != 0 {
		t.Fatalf("assign beyond the maximum = %d, want 0", got)
	}
	for i := range int(a.max) {
		if got := a.lookup(topic(i)); got != uint16(i+1) {
			t.Fatalf("lookup %s = %d, want %d", topic(i), got, i+1)
		}
	}
	a.forget()
	if a.lookup(topic(int(a.max)-1)) != 0 {
		t.Fatal("a forgotten topic still has its alias")
	}
	if got := a.assign("t/other"); got != a.max {
		t.Fatalf("assign after forget = %d, want %d", got, a.max)
	}
	small := &aliasOut{max: 2}
	small.assign("a/one")
	small.forget()
	if small.lookup("a/one") != 0 || small.assign("a/two") != 1 {
		t.Fatal("forget on the scanned table did not free alias 1")
	}
}
