package conformance

import (
	"time"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/packet"
)

var _ = register(specDef{
	Area: "keepalive", Text: "disconnects a client silent for 1.5 times its keepalive, not before the keepalive",
	Statements: []string{"MQTT-3.1.2-24"},
	Body: func(e *env) {
		cp := connectPacket(e.id("ka"))
		cp.KeepAlive = 1
		start := time.Now()
		r, _ := e.connectOK(cp)
		Expect(r.ExpectClosed(keepaliveDeadline(1))).To(Succeed(), "still open after 1.5 x keepalive + grace")
		Expect(time.Since(start)).To(BeNumerically(">=", time.Second), "closed before the keepalive elapsed")
	},
})

var _ = register(specDef{
	Area: "keepalive", Text: "keeps a client that sends PINGREQ within its keepalive",
	Statements: []string{"MQTT-3.1.2-24", "MQTT-3.12.4-1"},
	Body: func(e *env) {
		cp := connectPacket(e.id("ka"))
		cp.KeepAlive = 1
		r, _ := e.connectOK(cp)
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond) // the client's idle period under test, not a wait for a condition
			e.send(r, &packet.Pingreq{})
			expect[*packet.Pingresp](e, r)
		}
	},
})
