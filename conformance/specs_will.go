package conformance

import (
	"errors"
	"os"
	"time"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// willClient connects a client whose CONNECT carries a will on topic.
func (e *env) willClient(tag, topic string, qos byte, retain bool, keepAlive uint16) *client.Raw {
	cp := connectPacket(e.id(tag))
	cp.KeepAlive = keepAlive
	cp.Will = &packet.Will{Topic: topic, Payload: []byte("will of " + cp.ClientID), QoS: qos, Retain: retain}
	if retain {
		e.retained = append(e.retained, topic)
	}
	r, _ := e.connectOK(cp)
	return r
}

var _ = register(specDef{
	Area: "will", Text: "publishes the will, not retained, when the connection closes without DISCONNECT",
	Statements: []string{"MQTT-3.1.2-8", "MQTT-3.1.2-16"}, Needs: []string{"qos1"},
	Body: func(e *env) {
		t := e.topic("will")
		watch := e.client("watch")
		e.subOK(watch, 1, t)
		w := e.willClient("w", t, 1, false, 60)
		Expect(w.Close()).To(Succeed())
		got := e.recv(watch)
		Expect(got.Topic).To(Equal(t))
		Expect(got.QoS).To(Equal(byte(1)))
		Expect(got.Retain).To(BeFalse())
		e.nothing(watch) // published once [MQTT-3.1.2-10]
	},
})

var _ = register(specDef{
	Area: "will", Text: "publishes the will once, then deletes it",
	Statements: []string{"MQTT-3.1.2-10"},
	Body: func(e *env) {
		t := e.topic("will")
		watch := e.client("watch")
		e.subOK(watch, 0, t)
		w := e.willClient("w", t, 0, false, 60)
		Expect(w.Close()).To(Succeed())
		e.recv(watch)
		e.nothing(watch)
	},
})

var _ = register(specDef{
	Area: "will", Text: "publishes a will with Will Retain=1 as a retained message",
	Statements: []string{"MQTT-3.1.2-17"}, Needs: []string{"retain"},
	Body: func(e *env) {
		t := e.topic("will")
		watch := e.client("watch")
		e.subOK(watch, 0, t)
		w := e.willClient("w", t, 0, true, 60)
		Expect(w.Close()).To(Succeed())
		e.recv(watch)
		late := e.client("late")
		e.subOK(late, 0, t)
		got := e.recv(late)
		Expect(got.Retain).To(BeTrue(), "the will was not stored as retained")
	},
})

var _ = register(specDef{
	Area: "will", Text: "discards the will on DISCONNECT",
	Statements: []string{"MQTT-3.14.4-3", "MQTT-3.1.2-10"},
	Body: func(e *env) {
		t := e.topic("will")
		watch := e.client("watch")
		e.subOK(watch, 0, t)
		w := e.willClient("w", t, 0, false, 60)
		e.send(w, &packet.Disconnect{})
		// The broker SHOULD close the connection after DISCONNECT
		// [MQTT-3.14.4-1]; its close shows it has handled the DISCONNECT.
		// One that keeps it open is tolerated: willDecided below proves the
		// connection ended either way.
		if err := w.ExpectClosed(wait); err != nil {
			Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeTrue(), "after DISCONNECT the broker may only close the connection: %v", err)
		}
		Expect(w.Close()).To(Succeed())
		e.willDecided(watch, e.id("w"), t)
	},
})

var _ = register(specDef{
	Area: "will", Text: "publishes no will for a connection without the will flag",
	Statements: []string{"MQTT-3.1.2-12"}, Needs: []string{"wildcards"},
	Body: func(e *env) {
		watch := e.client("watch")
		e.subOK(watch, 0, e.prefix()+"/#")
		r := e.client("nowill")
		Expect(r.Close()).To(Succeed())
		e.willDecided(watch, e.id("nowill"), e.topic("marker"))
	},
})

// willDecided requires that no will reaches watch for the connection of
// clientID, which the spec has closed. Watching a quiet period alone proves
// nothing: the broker may not have handled the close yet, and a will it
// wrongly publishes later would go unseen. So it connects clientID again:
// the CONNACK comes only once the old connection has ended (the broker closes
// it on takeover [MQTT-3.1.4-2]), and a will for it is owed from then on.
// Then a QoS 1 marker is published on topic, which watch must receive, and it
// must be the next PUBLISH there. The quiet watch afterwards catches a broker
// that queues the will behind later traffic.
func (e *env) willDecided(watch *client.Raw, clientID, topic string) {
	again, _ := e.connectOK(connectPacket(clientID))
	e.pub(again, topic, "marker", 1, false)
	got := e.recv(watch)
	Expect(got.Topic).To(Equal(topic), "a PUBLISH on %s arrived before the marker: the will was published (payload %q)", got.Topic, got.Payload)
	Expect(string(got.Payload)).To(Equal("marker"), "the will arrived on %s instead of the marker", topic)
	e.nothing(watch)
}

// willViolations are protocol violations after which the broker closes the
// connection and must publish the will, as for any close without DISCONNECT.
var willViolations = []struct {
	name  string
	bytes func(e *env) []byte
}{
	{"a second CONNECT", func(e *env) []byte { return rawConnect(0x02, 60, e.id("w2")) }},
	{"a SUBSCRIBE with flags 0000", func(e *env) []byte { return rawSubscribe(0x80, 1, e.topic("f"), 0) }},
	{"a PUBLISH with QoS 3", func(e *env) []byte { return rawPublish(0x36, e.topic("q3"), 1, "x") }},
}

func init() {
	for _, v := range willViolations {
		register(specDef{
			Area: "will", Text: "publishes the will when it closes the connection after " + v.name,
			Statements: []string{"MQTT-3.1.2-8"},
			Body: func(e *env) {
				t := e.topic("will")
				watch := e.client("watch")
				e.subOK(watch, 0, t)
				w := e.willClient("w", t, 0, false, 60)
				e.sendBytes(w, v.bytes(e))
				e.closed(w)
				Expect(e.recv(watch).Topic).To(Equal(t), "will after the broker closed the connection")
			},
		})
	}
}

var _ = register(specDef{
	Area: "keepalive", Text: "publishes the will when the keepalive expires",
	Statements: []string{"MQTT-3.1.2-8"},
	Body: func(e *env) {
		t := e.topic("will")
		watch := e.client("watch")
		e.subOK(watch, 0, t)
		e.willClient("w", t, 0, false, 1)
		// The timing is the keepalive spec's business; this one gives
		// coarse broker timers room and checks only that the will goes out.
		p, err := watch.ReadPacket(keepaliveDeadline(1) + 6*time.Second)
		Expect(err).NotTo(HaveOccurred(), "no will after the keepalive expired")
		Expect(p.(*packet.Publish).Topic).To(Equal(t))
	},
})

// keepaliveDeadline is 1.5 times the keepalive plus the grace a broker's
// timer granularity and a loaded machine need.
func keepaliveDeadline(keepAlive uint16) time.Duration {
	return time.Duration(keepAlive)*1500*time.Millisecond + keepaliveGrace
}

const keepaliveGrace = 1500 * time.Millisecond
