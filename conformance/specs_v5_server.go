package conformance

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 specs of what a server decides for itself and announces in
// CONNACK: Topic Aliases it sends, Server Keep Alive, Response Information,
// Maximum QoS and Retain Available. The limits a broker shows only when it
// is configured below the full protocol run on a variant of the target
// (env.useVariant, capability "variants": the in-process broker); on other
// targets they skip with that reason.

// aliasReader reads PUBLISHes as they come on the wire and resolves the
// server's Topic Aliases as a client must, holding the server to the Topic
// Alias Maximum the client gave.
type aliasReader struct {
	most    uint16
	aliases map[uint16]string
	used    int // PUBLISHes that came with an alias
}

// recv reads the next PUBLISH, acknowledges it, checks its alias and
// returns it with its topic resolved.
func (a *aliasReader) recv(e *env, r *client.Raw) *packet.Publish {
	p := e.recv(r)
	if p.Props == nil || p.Props.TopicAlias == nil {
		Expect(p.Topic).NotTo(BeEmpty(), "a PUBLISH with an empty topic and no Topic Alias")
		return p
	}
	alias := *p.Props.TopicAlias
	a.used++
	// The codec refuses alias 0 before this; a 0 shows as a decode error.
	Expect(alias).NotTo(BeZero(), "Topic Alias 0 [MQTT-3.3.2-8]")
	Expect(alias).To(BeNumerically("<=", a.most), "Topic Alias %d over the client's Topic Alias Maximum %d [MQTT-3.1.2-26] [MQTT-3.3.2-11]", alias, a.most)
	if p.Topic != "" {
		a.aliases[alias] = p.Topic
		return p
	}
	topic, ok := a.aliases[alias]
	Expect(ok).To(BeTrue(), "Topic Alias %d with an empty topic, never set on this connection", alias)
	p.Topic = topic
	return p
}

var _ = register(specDef{
	V5: true, Area: "publish", Text: "sends Topic Aliases only from 1 to the client's Topic Alias Maximum, each set before it is used alone",
	Statements: []string{"MQTT-3.1.2-26", "MQTT-3.3.2-11", "MQTT-3.3.2-8"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		const most = 2
		r, _ := e.connectOK(connect5(e.id("s"), true, &packet.Properties{TopicAliasMaximum: u16p(most)}))
		e.sub5(r, packet.Subscription{Filter: e.prefix() + "/#"})
		pub := e.client("p")
		// More topics than aliases, each more than once: a server that uses
		// aliases must both reuse some and stop at the maximum.
		topics := []string{"one", "two", "three", "one", "two", "three", "four", "one"}
		for _, s := range topics {
			e.publish5(pub, &packet.Publish{Topic: e.topic(s), Payload: []byte(s)})
		}
		a := &aliasReader{most: most, aliases: map[uint16]string{}}
		for _, s := range topics {
			m := a.recv(e, r)
			Expect(m.Topic).To(Equal(e.topic(s)), "topic of the message sent as %q (aliases resolved)", s)
			Expect(string(m.Payload)).To(Equal(s))
		}
		AddReportEntry("server Topic Aliases", fmt.Sprintf("%d of %d PUBLISHes came with a Topic Alias", a.used, len(topics)), ReportEntryVisibilityFailureOrVerbose)
	},
})

var _ = register(specDef{
	V5: true, Area: "publish", Text: "sends no Topic Alias to a client that gave no Topic Alias Maximum or 0",
	Statements: []string{"MQTT-3.1.2-27"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		absent, _ := e.connectOK(connect5(e.id("n"), true, nil))
		zero, _ := e.connectOK(connect5(e.id("z"), true, &packet.Properties{TopicAliasMaximum: u16p(0)}))
		// A third client allows aliases, so a server that sends them has
		// every reason to here, and must still not to the other two.
		allows, _ := e.connectOK(connect5(e.id("a"), true, &packet.Properties{TopicAliasMaximum: u16p(10)}))
		for _, r := range []*client.Raw{absent, zero, allows} {
			e.sub5(r, packet.Subscription{Filter: e.prefix() + "/#"})
		}
		pub := e.client("p")
		topics := []string{"alpha", "beta", "alpha", "beta"}
		for _, s := range topics {
			e.publish5(pub, &packet.Publish{Topic: e.topic(s), Payload: []byte(s)})
		}
		for name, r := range map[string]*client.Raw{"no Topic Alias Maximum": absent, "Topic Alias Maximum 0": zero} {
			for _, s := range topics {
				m := e.recv(r)
				if m.Props != nil {
					Expect(m.Props.TopicAlias).To(BeNil(), "Topic Alias sent to a client with %s", name)
				}
				Expect(m.Topic).To(Equal(e.topic(s)), "topic sent to a client with %s", name)
			}
		}
		a := &aliasReader{most: 10, aliases: map[uint16]string{}}
		for _, s := range topics {
			Expect(a.recv(e, allows).Topic).To(Equal(e.topic(s)))
		}
	},
})

// limited5 is a server with Maximum QoS 1 and Retain Available 0.
func limited5(c *broker.Config) {
	one, off := 1, false
	c.MaximumQoS, c.RetainAvailable = &one, &off
}

var _ = register(specDef{
	V5: true, Area: "connect", Text: "announces Maximum QoS 1 and still grants a QoS 2 SUBSCRIBE, at QoS 1 or less",
	Statements: []string{"MQTT-3.2.2-9", "MQTT-3.2.2-10"}, Needs: []string{"variants"},
	Body: func(e *env) {
		e.useVariant(limited5)
		r, ack := e.connectOK(connect5(e.id("c"), true, nil))
		Expect(ack.Props).NotTo(BeNil(), "CONNACK properties")
		Expect(ack.Props.MaximumQoS).NotTo(BeNil(), "Maximum QoS from a server without QoS 2")
		Expect(*ack.Props.MaximumQoS).To(Equal(byte(1)), "Maximum QoS")
		codes := e.subscribe5(r, packet.Subscription{Filter: e.topic("q2"), QoS: 2}).ReturnCodes
		Expect(codes).To(HaveLen(1))
		Expect(codes[0]).To(BeNumerically("<=", 1), "SUBACK for a QoS 2 subscription on a Maximum QoS 1 server: a granted QoS of at most 1")
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "refuses a Will QoS above its Maximum QoS, with CONNACK 0x9B if any, and closes",
	Statements: []string{"MQTT-3.2.2-12", "MQTT-3.2.2-6", "MQTT-3.2.2-7"}, Needs: []string{"variants"},
	Body: func(e *env) {
		e.useVariant(limited5)
		cp := connect5(e.id("w"), true, nil)
		cp.Will = &packet.Will{Topic: e.topic("will"), QoS: 2, Payload: []byte("w")}
		refusedWill(e, cp, 0x9B)
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "refuses a retained Will when it has Retain Available 0, with CONNACK 0x9A if any, and closes",
	Statements: []string{"MQTT-3.2.2-13", "MQTT-3.2.2-6", "MQTT-3.2.2-7"}, Needs: []string{"variants"},
	Body: func(e *env) {
		e.useVariant(limited5)
		r, ack := e.connectOK(connect5(e.id("c"), true, nil))
		Expect(ack.Props).NotTo(BeNil(), "CONNACK properties")
		Expect(ack.Props.RetainAvailable).NotTo(BeNil(), "Retain Available from a server without retain")
		Expect(*ack.Props.RetainAvailable).To(BeZero(), "Retain Available")
		e.ping(r)
		cp := connect5(e.id("w"), true, nil)
		cp.Will = &packet.Will{Topic: e.topic("will"), Retain: true, Payload: []byte("w")}
		refusedWill(e, cp, 0x9A)
	},
})

// refusedWill sends cp and requires it refused: a CONNACK with a reason of
// 0x80 or more (the one advised, want, or another) and Session Present 0,
// then the close. The standard lets the server close without CONNACK.
func refusedWill(e *env, cp *packet.Connect, want byte) {
	r := e.dial(cp.ClientID)
	e.send(r, cp)
	p, err := r.ReadPacket(wait)
	if err != nil {
		Expect(r.ExpectClosed(time.Millisecond)).To(Succeed(), "expected a CONNACK refusal or the close, got %v", err)
		return
	}
	ack, ok := p.(*packet.Connack)
	Expect(ok).To(BeTrue(), "expected CONNACK, got %s", p.Type())
	Expect(ack.ReturnCode).To(BeNumerically(">=", 0x80), "CONNACK reason code: the connection must be refused")
	Expect(ack.SessionPresent).To(BeFalse(), "Session Present on a refusal [MQTT-3.2.2-6]")
	if ack.ReturnCode != want {
		AddReportEntry("reason code", fmt.Sprintf("refused with 0x%02X, not the advised 0x%02X", ack.ReturnCode, want), ReportEntryVisibilityFailureOrVerbose)
	}
	e.closed(r)
}

var _ = register(specDef{
	V5: true, Area: "publish", Text: "disconnects a client publishing above Maximum QoS (0x9B) or retained with Retain Available 0 (0x9A)",
	Statements: []string{"MQTT-4.13.1-1", "MQTT-3.14.2-1"}, Needs: []string{"variants"},
	Body: func(e *env) {
		e.useVariant(limited5)
		// MQTT 5.0 sections 3.3.1.2 and 3.3.1.3 say how (DISCONNECT 0x9B,
		// 0x9A, as in 4.13), with no statement number of their own.
		q2, _ := e.connectOK(connect5(e.id("q"), true, nil))
		e.publish5(q2, &packet.Publish{Topic: e.topic("ok"), QoS: 1, Payload: []byte("1")})
		e.send(q2, &packet.Publish{Topic: e.topic("no"), QoS: 2, PacketID: e.nextID(), Payload: []byte("2")})
		e.closedOnError(q2, 0x9B)
		ret, _ := e.connectOK(connect5(e.id("r"), true, nil))
		e.send(ret, &packet.Publish{Topic: e.topic("no"), Retain: true, Payload: []byte("r")})
		e.closedOnError(ret, 0x9A)
	},
})

var _ = register(specDef{
	V5: true, Area: "keepalive", Text: "announces a Server Keep Alive and disconnects a client silent for 1.5 times it",
	Statements: []string{"MQTT-3.1.2-22"}, Needs: []string{"variants"},
	Body: func(e *env) {
		const ska = 1
		e.useVariant(func(c *broker.Config) { c.ServerKeepAlive = ska })
		cp := connect5(e.id("k"), true, nil) // Keep Alive 60: the server's replaces it
		sent := time.Now()
		r, ack := e.connectOK(cp)
		acked := time.Now()
		Expect(ack.Props).NotTo(BeNil(), "CONNACK properties")
		Expect(ack.Props.ServerKeepAlive).NotTo(BeNil(), "Server Keep Alive")
		Expect(*ack.Props.ServerKeepAlive).To(Equal(uint16(ska)), "Server Keep Alive")
		// Silent: the server holds us to 1.5 times its value, not ours. A
		// DISCONNECT 0x8D may come first.
		within := time.Until(acked.Add(keepaliveDeadline(ska)))
		p, err := r.ReadPacket(within)
		at := time.Now()
		if err == nil {
			d, ok := p.(*packet.Disconnect)
			Expect(ok).To(BeTrue(), "expected DISCONNECT or the close, got %s", p.Type())
			Expect(d.ReasonCode).To(Equal(byte(0x8D)), "DISCONNECT reason code on keep alive timeout")
			Expect(r.ExpectClosed(wait)).To(Succeed(), "the close after DISCONNECT")
		} else {
			Expect(r.ExpectClosed(time.Millisecond)).To(Succeed(), "not closed within %v of CONNACK with Server Keep Alive %d", keepaliveDeadline(ska), ska)
		}
		Expect(at.Sub(sent)).To(BeNumerically(">=", ska*time.Second), "closed before the Server Keep Alive elapsed")
	},
})

var _ = register(specDef{
	V5: true, Area: "connect", Text: "returns Response Information only to a client asking for it",
	Statements: []string{"MQTT-3.1.2-28"}, Needs: []string{"variants"},
	Body: func(e *env) {
		const info = "mqf/responses/"
		e.useVariant(func(c *broker.Config) { c.ResponseInformation = info })
		_, asked := e.connectOK(connect5(e.id("y"), true, &packet.Properties{RequestResponseInfo: u8p(1)}))
		Expect(asked.Props).NotTo(BeNil(), "CONNACK properties")
		Expect(asked.Props.HasResponseInfo).To(BeTrue(), "Response Information for Request Response Information 1")
		Expect(asked.Props.ResponseInfo).To(Equal(info))
		for i, req := range []*byte{u8p(0), nil} {
			_, ack := e.connectOK(connect5(e.id(string(rune('m'+i))), true, &packet.Properties{RequestResponseInfo: req}))
			if ack.Props != nil {
				Expect(ack.Props.HasResponseInfo).To(BeFalse(), "Response Information nobody asked for [MQTT-3.1.2-28]")
			}
		}
	},
})

func u8p(v byte) *byte { return &v }

var _ = register(specDef{
	V5: true, Area: "connect", Text: "refuses a Client Identifier it does not admit, with CONNACK 0x85 if any, and closes",
	Statements: []string{"MQTT-3.1.3-8", "MQTT-3.2.2-6", "MQTT-3.2.2-7"}, Needs: []string{"variants"},
	Body: func(e *env) {
		// A broker admitting only identifiers with a prefix (Mosquitto's
		// clientid_prefixes, the reference broker's client_id_prefixes).
		const admitted = "mqf-ok-"
		e.useVariant(func(c *broker.Config) { c.ClientIDPrefixes = []string{admitted} })
		refusedWill(e, connect5(e.id("no"), true, nil), 0x85)
		// The same broker accepts an identifier it admits: the refusal was
		// about the identifier.
		r, _ := e.connectOK(connect5(admitted+e.id("ok"), true, nil))
		e.ping(r)
	},
})
