package conformance

import (
	"time"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// keepaliveProbes is how many silent clients the keepalive spec starts,
// staggered over keepaliveStagger: a broker that checks keepalives on a
// coarse periodic timer then shows its worst case on at least one of them,
// whatever the phase of its timer.
const (
	keepaliveProbes  = 3
	keepaliveStagger = 5 * time.Second
)

// closedAt is when a probe connection was closed by the broker, measured
// from the CONNACK, or the error when it was not.
type closedAt struct {
	after time.Duration
	err   error
}

var _ = register(specDef{
	Area: "keepalive", Text: "disconnects a client silent for 1.5 times its keepalive, not before the keepalive",
	Statements: []string{"MQTT-3.1.2-24"},
	Body: func(e *env) {
		limit := keepaliveDeadline(1)
		var results []chan closedAt
		for i := range keepaliveProbes {
			if i > 0 {
				time.Sleep(keepaliveStagger / keepaliveProbes) // the stagger itself, not a wait for a condition
			}
			cp := connectPacket(e.id("ka" + string(rune('a'+i))))
			cp.KeepAlive = 1
			r, _ := e.connectOK(cp)
			start := time.Now()
			ch := make(chan closedAt, 1)
			results = append(results, ch)
			// One reader per probe so each close is timed when it happens;
			// it ends at the close or after limit.
			go func(r *client.Raw) {
				err := r.ExpectClosed(limit)
				ch <- closedAt{time.Since(start), err}
			}(r)
		}
		for i, ch := range results {
			res := <-ch
			Expect(res.err).NotTo(HaveOccurred(), "probe %d still open %v after its CONNACK (keepalive 1 s; limit 1.5 s + %v grace)", i, limit, keepaliveGrace)
			Expect(res.after).To(BeNumerically(">=", 900*time.Millisecond), "probe %d closed before its keepalive elapsed", i)
		}
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
