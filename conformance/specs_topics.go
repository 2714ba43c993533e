package conformance

import (
	"strings"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
)

var _ = register(specDef{
	Area: "topics", Text: "sends each subscriber only topic names its filter matches ('+' one level, '#' parent and children)",
	Statements: []string{"MQTT-3.3.2-3"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		cases := []struct {
			filter string
			match  []string
			miss   []string
		}{
			{"m/+/b", []string{"m/a/b", "m//b"}, []string{"m/a/c", "m/a/b/c", "m/b"}},
			{"m/a/#", []string{"m/a", "m/a/b", "m/a/b/c"}, []string{"m/ab", "m/b/a"}},
			{"m/+", []string{"m/x", "m/"}, []string{"m", "m/x/y"}},
		}
		pub := e.client("p")
		for i, c := range cases {
			sub := e.client("s" + string(rune('a'+i)))
			root := e.prefix() + "/" + string(rune('a'+i)) + "/"
			e.subOK(sub, 1, root+c.filter)
			for _, t := range append(append([]string{}, c.miss...), c.match...) {
				e.pub(pub, root+t, t, 1, false)
			}
			var got []string
			for range c.match {
				got = append(got, strings.TrimPrefix(e.recv(sub).Topic, root))
			}
			Expect(got).To(ConsistOf(c.match), "topics delivered for filter %s", c.filter)
			Expect(payloads(e.untilPing(sub))).To(BeEmpty(), "extra topics delivered for filter %s", c.filter)
		}
	},
})

var _ = register(specDef{
	Area: "topics", Text: "closes the connection on a filter with '#' not last or not alone in its level",
	Statements: []string{"MQTT-4.7.1-2"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		// Not a valid Topic Filter, so the SUBSCRIBE is malformed: the server
		// closes the connection (section 4.8); SUBACK 0x80 would accept the
		// packet as well formed.
		for _, f := range []string{"/#/b", "/a#", "#x"} {
			r := e.client("h")
			e.sendBytes(r, rawSubscribe(0x82, 1, e.prefix()+f, 0))
			e.closed(r)
		}
	},
})

var _ = register(specDef{
	Area: "topics", Text: "closes the connection on a filter with '+' not filling a whole level",
	Statements: []string{"MQTT-4.7.1-3"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		for _, f := range []string{"/a+", "/+a/b"} {
			r := e.client("p")
			e.sendBytes(r, rawSubscribe(0x82, 1, e.prefix()+f, 0))
			e.closed(r)
		}
	},
})

var _ = register(specDef{
	Area: "topics", Text: "closes the connection on a PUBLISH whose topic name holds a wildcard",
	Statements: []string{"MQTT-3.3.2-2", "MQTT-4.7.1-1", "MQTT-4.8.0-1"},
	Body: func(e *env) {
		for _, t := range []string{"/+", "/a/#", "/a+b"} {
			r := e.client("w")
			e.sendBytes(r, rawPublish(0x30, e.prefix()+t, 0, "x"))
			e.closed(r)
		}
	},
})

var _ = register(specDef{
	Area: "topics", Text: "does not match topics starting with '$' by filters starting with '#' or '+'",
	Statements: []string{"MQTT-4.7.2-1"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		dollar := "$mqf/" + e.prefix()
		marker := e.topic("marker")
		all, plus, own, pub := e.client("all"), e.client("plus"), e.client("own"), e.client("p")
		e.subOK(all, 0, "#")
		e.subOK(plus, 0, "+/"+strings.SplitN(e.prefix(), "/", 2)[1]+"/#", "+/#")
		e.subOK(own, 0, "$mqf/"+e.prefix()+"/#")
		e.pub(pub, dollar, "dollar", 1, false)
		e.pub(pub, marker, "marker", 1, false)
		Expect(e.recvOn(own, dollar).Topic).To(Equal(dollar), "the '$' topic is publishable and matched by its own filter")
		for _, r := range []*client.Raw{all, plus} {
			for range 1000 {
				p := e.recv(r)
				Expect(p.Topic).NotTo(Equal(dollar), "a filter starting with a wildcard matched %s", dollar)
				if p.Topic == marker {
					break
				}
			}
		}
	},
})

var _ = register(specDef{
	Area: "topics", Text: "matches topics as they are: no case folding, slash or space normalisation",
	Statements: []string{"MQTT-4.7.3-4"},
	Body: func(e *env) {
		t := e.topic("Case/x")
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, t)
		for _, other := range []string{e.topic("case/x"), e.topic("Case//x"), e.topic("Case/x/"), e.topic("Case/ x"), e.topic("Case/x ")} {
			e.pub(pub, other, other, 1, false)
		}
		e.pub(pub, t, "exact", 1, false)
		got := e.recv(sub)
		Expect(got.Topic).To(Equal(t), "a differently spelled topic was delivered")
	},
})

var _ = register(specDef{
	Area: "topics", Text: "closes the connection on a zero-length topic name",
	Statements: []string{"MQTT-4.7.3-1"},
	Body: func(e *env) {
		r := e.client("z")
		e.sendBytes(r, rawPublish(0x30, "", 0, "x"))
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "topics", Text: "closes the connection on a zero-length topic filter",
	Statements: []string{"MQTT-4.7.3-1"},
	Body: func(e *env) {
		r := e.client("z")
		e.sendBytes(r, rawSubscribe(0x82, 1, "", 0))
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "topics", Text: "closes the connection on U+0000 in a topic name",
	Statements: []string{"MQTT-4.7.3-2", "MQTT-1.5.3-2"},
	Body: func(e *env) {
		r := e.client("n")
		e.sendBytes(r, rawPublish(0x30, e.topic("a\x00b"), 0, "x"))
		e.closed(r)
	},
})

var _ = register(specDef{
	Area: "topics", Text: "closes the connection on ill-formed UTF-8 in a topic name or filter",
	Statements: []string{"MQTT-1.5.3-1"},
	Body: func(e *env) {
		for _, bad := range []string{"\xc3\x28", "\xed\xa0\x80", "\xff"} { // truncated sequence, surrogate, invalid byte
			r := e.client("u")
			e.sendBytes(r, rawPublish(0x30, e.topic("bad"+bad), 0, "x"))
			e.closed(r)
			r = e.client("v")
			e.sendBytes(r, rawSubscribe(0x82, 1, e.topic("bad"+bad), 0))
			e.closed(r)
		}
	},
})

var _ = register(specDef{
	Area: "topics", Text: "keeps a leading U+FEFF (EF BB BF) in topics: neither stripped nor skipped",
	Statements: []string{"MQTT-1.5.3-3"},
	Body: func(e *env) {
		// U+FEFF must be the topic's first character: one inside the topic
		// says nothing about a broker that strips a leading BOM. The decoy is
		// the same topic without it, where a stripped subscription or a
		// stripped publish would land.
		plain := e.topic("bom")
		bom := "\ufeff" + plain
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, bom)
		e.pub(pub, plain, "without", 1, false)
		e.pub(pub, bom, "with", 1, false)
		got := e.recv(sub)
		Expect(got.Topic).To(Equal(bom))
		Expect(string(got.Payload)).To(Equal("with"))
	},
})

var _ = register(specDef{
	Area: "topics", Text: "handles topic names and filters of 65535 bytes",
	Statements: []string{"MQTT-4.7.3-3"},
	Body: func(e *env) {
		p := e.prefix() + "/"
		t := p + strings.Repeat("x", 65535-len(p))
		sub, pub := e.client("s"), e.client("p")
		e.subOK(sub, 0, t)
		e.pub(pub, t, "long", 1, false)
		Expect(e.recv(sub).Topic).To(Equal(t))
	},
})
