package conformance

import (
	"context"
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

// closedAt is when the broker closed a probe connection (as seen by the
// probe's reader), or the error when it did not within the limit.
type closedAt struct {
	at  time.Time
	err error
}

// connectTimed is env.connect that also returns the instant just before the
// CONNECT was written and the one just after the CONNACK was read. A broker
// counts the keepalive from reading CONNECT, which lies between the two: so
// "not before the keepalive" is held from the first (the earliest the
// broker's count can start) and "within 1.5 times it" from the second (the
// latest), each in full, with no fudge either way.
func (e *env) connectTimed(cp *packet.Connect) (r *client.Raw, sent, acked time.Time) {
	nc := e.dial(cp.ClientID).Conn()
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	sent = time.Now()
	r, ack, err := client.RawConnect(ctx, nc, cp)
	acked = time.Now()
	e.conns = append(e.conns, r)
	Expect(err).NotTo(HaveOccurred(), "CONNECT %s", cp.ClientID)
	Expect(ack.ReturnCode).To(Equal(packet.Accepted), "CONNACK return code for %s", cp.ClientID)
	return r, sent, acked
}

var _ = register(specDef{
	Area: "keepalive", Text: "disconnects a client silent for 1.5 times its keepalive, not before the keepalive",
	Statements: []string{"MQTT-3.1.2-24"},
	Body: func(e *env) {
		silentProbes(e, func(id string) *packet.Connect { return connectPacket(id) }, func(r *client.Raw, within time.Duration) (time.Time, error) {
			err := r.ExpectClosed(within)
			return time.Now(), err
		})
	},
})

// silentProbes starts keepaliveProbes clients with Keep Alive 1, staggered
// over keepaliveStagger, that then say nothing, and requires each to be
// disconnected within 1.5 times the keepalive (plus keepaliveGrace) of its
// CONNACK and not before the keepalive after its CONNECT. connect builds a
// probe's CONNECT; closed waits at most within for the broker to end the
// connection (nil: it did), checks what the broker sent before, and says
// when the broker ended it.
func silentProbes(e *env, connect func(id string) *packet.Connect, closed func(r *client.Raw, within time.Duration) (time.Time, error)) {
	const keepAlive = 1
	limit := keepaliveDeadline(keepAlive)
	type probe struct {
		sent, acked time.Time
		closed      chan closedAt
	}
	var probes []probe
	for i := range keepaliveProbes {
		if i > 0 {
			time.Sleep(keepaliveStagger / keepaliveProbes) // the stagger itself, not a wait for a condition
		}
		cp := connect(e.id("ka" + string(rune('a'+i))))
		cp.KeepAlive = keepAlive
		r, sent, acked := e.connectTimed(cp)
		Expect(e.pending[r]).To(BeEmpty())
		p := probe{sent, acked, make(chan closedAt, 1)}
		probes = append(probes, p)
		// One reader per probe so each close is timed when it happens;
		// it ends at the close or at limit after the CONNACK.
		go func(r *client.Raw) {
			// At least a nanosecond: a timeout of 0 reads as none.
			at, err := closed(r, max(time.Until(p.acked.Add(limit)), time.Nanosecond))
			p.closed <- closedAt{at, err}
		}(r)
	}
	for i, p := range probes {
		res := <-p.closed
		Expect(res.err).NotTo(HaveOccurred(), "probe %d: not disconnected within %v of its CONNACK (keepalive %d s; limit 1.5 times it + %v grace)", i, limit, keepAlive, keepaliveGrace)
		Expect(res.at.Sub(p.sent)).To(BeNumerically(">=", keepAlive*time.Second), "probe %d disconnected %v after its CONNECT was written, before its keepalive of %d s elapsed", i, res.at.Sub(p.sent), keepAlive)
	}
}

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
