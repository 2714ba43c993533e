package clientconf

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/mqttfleet/mqttfleet/adversary"
	"github.com/mqttfleet/mqttfleet/packet"
)

// keepAlive is every probe's Keep Alive: mosquitto_sub/pub take no less.
const keepAlive = 5 * time.Second

// Probe is one situation the client is put in: what the server does wrong
// (Script), what the client is asked to do (Job), how long it runs, what
// the server does meanwhile (During) and what is graded (Grade).
type Probe struct {
	Name   string
	Window time.Duration
	Script []adversary.Action
	Job    func(*Job)
	// During runs while the client does its job, from the start; it may
	// wait for the client (run.await) and act on the server.
	During func(r *probeRun)
	// Twin runs the job on two instances of the client at once.
	Twin  bool
	Grade func(g *grader)
}

// Probes are the suite, in the order they are reported.
var Probes = []Probe{
	{
		Name: "connect-will-credentials", Window: 13 * time.Second,
		Job: func(j *Job) {
			j.Username, j.Password = "device", "secret"
			j.Will = &Msg{Topic: "cc/will", QoS: 1, Payload: "gone"}
			j.Subscribe = []Sub{{Filter: "cc/+/cmd/#", QoS: 1}}
		},
		Grade: func(g *grader) {
			g.wellFormed()
			g.idleKeepAlive(g.id("MQTT-3.1.2-23", "MQTT-3.1.2-20"))
			g.disconnected()
		},
	},
	{
		Name: "connect-plain", Window: 3 * time.Second,
		Job: func(j *Job) { j.Subscribe = []Sub{{Filter: "cc/plain", QoS: 0}} },
		Grade: func(g *grader) {
			g.wellFormed()
			g.disconnected()
		},
	},
	{
		Name: "keepalive-busy", Window: 14 * time.Second,
		Job: func(j *Job) { j.PublishEvery, j.Topic = 700*time.Millisecond, "cc/busy" },
		Grade: func(g *grader) {
			g.wellFormed()
			g.idleKeepAlive("client:keepalive-busy")
		},
	},
	{
		Name: "pingresp-withheld", Window: 28 * time.Second,
		Script: []adversary.Action{{On: adversary.OnPingreq, Do: adversary.Withhold}},
		Job:    func(j *Job) { j.Subscribe = []Sub{{Filter: "cc/ping", QoS: 0}} },
		Grade: func(g *grader) {
			g.wellFormed()
			var ping time.Time
			for _, r := range g.recs {
				if _, ok := r.Packet.(*packet.Pingreq); ok && r.Conn == g.recs[0].Conn && ping.IsZero() {
					ping = r.Time
				}
			}
			if ping.IsZero() {
				g.check("client:pingresp-timeout", false, "the client sent no PINGREQ in %s with Keep Alive %s", 28*time.Second, g.keepAlive())
				return
			}
			end, who := g.closeOf(g.recs[0].Conn)
			limit := g.keepAlive() + 15*time.Second
			g.check("client:pingresp-timeout", !end.IsZero() && who == adversary.ErrClientClosed && end.Sub(ping) <= limit,
				"PINGREQ unanswered; the client closed %s after it (limit %s)", since(ping, end, who), limit)
		},
	},
	{
		Name: "publish-qos0", Window: 4 * time.Second,
		Job: func(j *Job) { j.Publish = msgs("cc/q0", 0, 5); j.DisconnectEarly = true },
		Grade: func(g *grader) {
			g.wellFormed()
			pubs := g.publishes(1)
			ok := len(pubs) == 5
			for _, p := range pubs {
				ok = ok && p.QoS == 0 && !p.Dup
			}
			g.check(g.id("MQTT-4.3.1-1", "MQTT-4.3.1-1"), ok, "%d QoS 0 PUBLISHes of 5, each QoS 0 DUP 0: %t", len(pubs), ok)
			g.disconnected()
		},
	},
	{
		Name: "publish-qos1", Window: 5 * time.Second,
		Job: func(j *Job) { j.Publish = msgs("cc/q1", 1, 5); j.DisconnectEarly = true },
		Grade: func(g *grader) {
			g.wellFormed()
			pubs := g.publishes(1)
			ids, ok := map[uint16]bool{}, len(pubs) == 5
			for _, p := range pubs {
				ok = ok && p.QoS == 1 && !p.Dup && !ids[p.PacketID]
				ids[p.PacketID] = true
			}
			g.check(g.id("MQTT-4.3.2-1", "MQTT-4.3.2-2"), ok, "%d QoS 1 PUBLISHes of 5, fresh IDs, DUP 0: %t", len(pubs), ok)
			g.check(g.id("MQTT-2.3.1-2", "MQTT-4.3.2-1"), len(ids) == len(pubs) && len(pubs) > 0, "%d distinct packet IDs in %d PUBLISHes in flight", len(ids), len(pubs))
			g.disconnected()
		},
	},
	{
		Name: "publish-qos2-reordered-pubrec", Window: 5 * time.Second,
		Script: []adversary.Action{{On: adversary.OnPublish, Do: adversary.Reorder, Count: 4}},
		Job:    func(j *Job) { j.Publish = msgs("cc/q2", 2, 4); j.DisconnectEarly = true },
		Grade: func(g *grader) {
			g.wellFormed()
			pubs := g.publishes(1)
			var recs, rels []uint16
			rePublished := false
			for _, r := range g.recs {
				switch p := r.Packet.(type) {
				case *packet.Pubrec:
					recs = append(recs, p.PacketID)
				case *packet.Pubrel:
					rels = append(rels, p.PacketID)
				case *packet.Publish:
					rePublished = rePublished || (r.Dir == adversary.DirIn && len(recs) > 0 && slices.Contains(recs, p.PacketID))
				}
			}
			g.check(g.id("MQTT-4.3.3-1", "MQTT-4.3.3-6"), len(pubs) == 4 && len(rels) == 4 && !rePublished,
				"4 QoS 2 PUBLISHes: %d sent, %d PUBRELs after PUBREC, PUBLISH again after PUBREC: %t", len(pubs), len(rels), rePublished)
			g.check(g.id("MQTT-4.6.0-4", "MQTT-4.6.0-4"), len(rels) == 4 && slices.Equal(recs, rels), "PUBREC order %v, PUBREL order %v", recs, rels)
			g.check(g.id("MQTT-2.3.1-6", "MQTT-2.2.1-5"), len(rels) > 0 && sameSet(recs, rels), "PUBREL IDs %v echo PUBREC IDs %v", rels, recs)
			g.disconnected()
		},
	},
	{
		Name: "publish-qos1-reordered-puback", Window: 6 * time.Second,
		Script: []adversary.Action{{On: adversary.OnPublish, Do: adversary.Reorder, Count: 4}},
		Job:    func(j *Job) { j.Publish = msgs("cc/r1", 1, 4) },
		Grade: func(g *grader) {
			g.wellFormed()
			pubs := g.publishes(0)
			dropped := g.droppedBeforeDisconnect(g.recs[0].Conn)
			g.check("client:reordered-acks", len(pubs) == 4 && !dropped && len(g.connects()) == 1,
				"%d PUBLISHes (4 expected, no resend), %d connection(s), client closed the connection without DISCONNECT: %t", len(pubs), len(g.connects()), dropped)
		},
	},
	{
		Name: "receive-qos", Window: 6 * time.Second,
		Job: func(j *Job) { j.Subscribe = []Sub{{Filter: "cc/rx/#", QoS: 2}} },
		During: func(r *probeRun) {
			if r.awaitOut(func(p packet.Packet) bool { _, ok := p.(*packet.Suback); return ok }) {
				for i, q := range []byte{1, 1, 1, 2, 2, 2, 0, 0} {
					r.srv.Publish(fmt.Sprintf("cc/rx/%d", i), q, []byte(fmt.Sprintf("m%d", i)))
				}
			}
		},
		Grade: func(g *grader) {
			g.wellFormed()
			g.acks()
			if g.blind {
				return
			}
			g.check(g.id("MQTT-3.3.4-1", "MQTT-3.3.4-1"), len(g.got) == 8, "the application got %d of 8 messages", len(g.got))
		},
	},
	{
		Name: "receive-duplicates", Window: 6 * time.Second,
		Script: []adversary.Action{{On: adversary.OnDeliver, Do: adversary.Duplicate}},
		Job:    func(j *Job) { j.Subscribe = []Sub{{Filter: "cc/dup/#", QoS: 2}} },
		During: func(r *probeRun) {
			if r.awaitOut(func(p packet.Packet) bool { _, ok := p.(*packet.Suback); return ok }) {
				r.srv.Publish("cc/dup/1", 1, []byte("d1"))
				r.srv.Publish("cc/dup/2", 2, []byte("d2"))
			}
		},
		Grade: func(g *grader) {
			g.wellFormed()
			g.acks()
			if g.blind {
				return
			}
			n := 0
			for _, m := range g.got {
				if m.Payload == "d2" {
					n++
				}
			}
			g.check("client:qos2-exactly-once", n == 1, "QoS 2 message sent twice with DUP before PUBREL: the application got it %d times", n)
		},
	},
	{
		Name: "unsubscribe", Window: 4 * time.Second,
		Job: func(j *Job) {
			j.Subscribe = []Sub{{Filter: "cc/u/+", QoS: 1}}
			j.Unsubscribe = []string{"cc/u/+"}
		},
		Grade: func(g *grader) {
			g.wellFormed()
			n := 0
			for _, r := range g.in() {
				if _, ok := r.Packet.(*packet.Unsubscribe); ok {
					n++
				}
			}
			g.check(g.id("MQTT-3.10.3-2", "MQTT-3.10.3-2"), n > 0, "%d UNSUBSCRIBE sent", n)
		},
	},
	{
		Name: "resend-qos1-after-break", Window: 14 * time.Second,
		Script: []adversary.Action{
			{On: adversary.OnPublish, Nth: 3, Conn: 1, Do: adversary.Close},
			{On: adversary.OnPublish, Conn: 1, Do: adversary.Withhold},
		},
		Job: func(j *Job) { j.Clean, j.Reconnect, j.Publish = false, true, msgs("cc/re1", 1, 3) },
		Grade: func(g *grader) {
			g.wellFormed()
			g.resent(1)
		},
	},
	{
		Name: "resend-qos2-publish-after-break", Window: 14 * time.Second,
		Script: []adversary.Action{
			{On: adversary.OnPublish, Nth: 2, Conn: 1, Do: adversary.Close},
			{On: adversary.OnPublish, Conn: 1, Do: adversary.Withhold},
		},
		Job: func(j *Job) { j.Clean, j.Reconnect, j.Publish = false, true, msgs("cc/re2", 2, 2) },
		Grade: func(g *grader) {
			g.wellFormed()
			g.resent(2)
		},
	},
	{
		Name: "resend-qos2-pubrel-after-break", Window: 14 * time.Second,
		Script: []adversary.Action{{On: adversary.OnPubrel, Conn: 1, Do: adversary.Close}},
		Job:    func(j *Job) { j.Clean, j.Reconnect, j.Publish = false, true, msgs("cc/rel", 2, 1) },
		Grade: func(g *grader) {
			g.wellFormed()
			cs := g.conns()
			var rel1 uint16
			for _, r := range cs[0] {
				if p, ok := r.Packet.(*packet.Pubrel); ok {
					rel1 = p.PacketID
				}
			}
			var again []string
			relAgain := false
			if len(cs) > 1 {
				for _, r := range cs[1] {
					switch p := r.Packet.(type) {
					case *packet.Pubrel:
						relAgain = relAgain || p.PacketID == rel1
						again = append(again, "PUBREL")
					case *packet.Publish:
						if r.Dir == adversary.DirIn {
							again = append(again, "PUBLISH")
						}
					}
				}
			}
			g.check(g.id("MQTT-4.4.0-1", "MQTT-4.4.0-1"), relAgain, "PUBREL %d unanswered when the link broke; after %d reconnect(s) the client sent %v", rel1, len(cs)-1, again)
			g.check(g.id("MQTT-4.3.3-1", "MQTT-4.3.3-6"), !slices.Contains(again, "PUBLISH"), "after PUBREC the client sent %v on the new connection", again)
		},
	},
	{
		Name: "disconnect", Window: 4 * time.Second,
		Job: func(j *Job) { j.Publish = msgs("cc/bye", 0, 1); j.DisconnectEarly = true },
		Grade: func(g *grader) {
			g.wellFormed()
			g.disconnected()
		},
	},
	{
		// A link cut without a word, as a NAT timeout or a 3.1.1 takeover
		// looks to the client. (A 5.0 DISCONNECT 0x8E is a different
		// matter: a client may rightly stay away after it.)
		Name: "link-cut-reconnect", Window: 9 * time.Second,
		Script: []adversary.Action{{On: adversary.OnConnect, Conn: 1, Do: adversary.CloseAfter}},
		Job:    func(j *Job) { j.Reconnect, j.Subscribe = true, []Sub{{Filter: "cc/t", QoS: 1}} },
		Grade: func(g *grader) {
			g.wellFormed()
			n := len(g.connects())
			g.check("client:reconnects", n >= 2, "connection cut right after CONNACK; %d CONNECTs in %s", n, 9*time.Second)
		},
	},
	refusedProbe(5, "client:refused-5-no-tight-loop"),
	refusedProbe(4, "client:refused-4-no-tight-loop"),
	refusedProbe(3, "client:refused-3-retries"),
	{
		Name: "backoff", Window: 20 * time.Second,
		Script: []adversary.Action{{On: adversary.OnConnect, Do: adversary.CloseAfter}},
		Job:    func(j *Job) { j.Reconnect, j.Subscribe = true, []Sub{{Filter: "cc/b", QoS: 0}} },
		Grade: func(g *grader) {
			g.wellFormed()
			gaps := gapsOf(g.connects())
			if len(gaps) < 3 {
				g.check("client:backoff-grows", len(gaps) > 0, "%d reconnects in 20 s (gaps %s)", len(gaps), fmtGaps(gaps))
				g.check("client:backoff-jitter", false, "too few reconnects to judge: %s", fmtGaps(gaps))
				return
			}
			g.check("client:backoff-grows", gaps[len(gaps)-1] >= gaps[0]*3/2, "connection cut after every CONNACK: gaps between CONNECTs %s", fmtGaps(gaps))
			g.check("client:backoff-jitter", jittered(gaps), "gaps between CONNECTs %s", fmtGaps(gaps))
		},
	},
	{
		Name: "receive-malformed-flags", Window: 6 * time.Second,
		Script: []adversary.Action{{On: adversary.OnSubscribe, Do: adversary.Send, Bytes: []byte{0xD1, 0x00}}}, // PINGRESP with flags 0001
		Job:    func(j *Job) { j.Subscribe = []Sub{{Filter: "cc/m", QoS: 0}} },
		Grade: func(g *grader) {
			g.closesOnBadInput(g.id("MQTT-2.2.2-2", ""), "PINGRESP with reserved flags 0001")
		},
	},
	{
		Name: "receive-qos3", Window: 6 * time.Second,
		Script: []adversary.Action{{On: adversary.OnSubscribe, Do: adversary.Send,
			Bytes: []byte{0x36, 0x09, 0x00, 0x04, 'c', 'c', '/', 'm', 0x00, 0x07, 'x'}}},
		Job:   func(j *Job) { j.Subscribe = []Sub{{Filter: "cc/m", QoS: 2}} },
		Grade: func(g *grader) { g.closesOnBadInput(g.id("MQTT-3.3.1-4", "MQTT-3.3.1-4"), "PUBLISH with QoS 3") },
	},
	{
		Name: "receive-null-in-topic", Window: 6 * time.Second,
		Script: []adversary.Action{{On: adversary.OnSubscribe, Do: adversary.Send,
			Bytes: []byte{0x30, 0x07, 0x00, 0x04, 'c', 'c', '/', 0x00, 'x'}}},
		Job: func(j *Job) { j.Subscribe = []Sub{{Filter: "#", QoS: 0}} },
		Grade: func(g *grader) {
			g.closesOnBadInput(g.id("MQTT-1.5.3-2", "MQTT-1.5.4-2"), "PUBLISH whose topic holds U+0000")
		},
	},
	{
		Name: "receive-bad-utf8", Window: 6 * time.Second,
		Script: []adversary.Action{{On: adversary.OnSubscribe, Do: adversary.Send,
			Bytes: []byte{0x30, 0x08, 0x00, 0x05, 'c', 0xED, 0xA0, 0x80, 'x', 'y'}}}, // a UTF-16 surrogate
		Job: func(j *Job) { j.Subscribe = []Sub{{Filter: "#", QoS: 0}} },
		Grade: func(g *grader) {
			g.closesOnBadInput(g.id("MQTT-1.5.3-1", "MQTT-1.5.4-1"), "PUBLISH whose topic is ill-formed UTF-8 (a surrogate)")
		},
	},
	{
		Name: "receive-second-connack", Window: 6 * time.Second,
		Script: []adversary.Action{{On: adversary.OnConnect, Do: adversary.Unexpected}},
		Job:    func(j *Job) { j.Subscribe = []Sub{{Filter: "cc/m", QoS: 0}} },
		Grade:  func(g *grader) { g.closesOnBadInput(g.id("MQTT-4.8.0-1", ""), "a second CONNACK") },
	},
	{
		Name: "receive-bom", Window: 5 * time.Second,
		Job: func(j *Job) { j.Subscribe = []Sub{{Filter: "cc/bom/#", QoS: 0}} },
		During: func(r *probeRun) {
			if r.awaitOut(func(p packet.Packet) bool { _, ok := p.(*packet.Suback); return ok }) {
				r.srv.Publish("cc/bom/\uFEFFx", 0, []byte("bom"))
			}
		},
		Grade: func(g *grader) {
			g.wellFormed()
			if g.blind {
				return
			}
			ok := len(g.got) == 1 && g.got[0].Topic == "cc/bom/\uFEFFx"
			g.check(g.id("MQTT-1.5.3-3", "MQTT-1.5.4-3"), ok, "topic with U+FEFF delivered as %q", topics(g.got))
		},
	},
	{
		Name: "twin-kick-loop", Window: 24 * time.Second, Twin: true,
		Job: func(j *Job) { j.Reconnect, j.Subscribe = true, []Sub{{Filter: "cc/twin", QoS: 0}} },
		Grade: func(g *grader) {
			// Both instances reach a broker that takes the ID over as the
			// standard says: every CONNECT after the first kicks the other.
			cs := g.connects()
			if len(cs) < 2 {
				g.check("client:twin-no-kick-loop", false, "%d CONNECTs from the twins", len(cs))
				return
			}
			half := cs[0].Add(12 * time.Second)
			late := 0
			for _, t := range cs {
				if t.After(half) {
					late++
				}
			}
			rate := float64(late) / 12
			g.check("client:twin-no-kick-loop", rate <= 0.5, "takeovers %.2f/s in the second half (%d in all over 24 s)", rate, len(cs)-1)
		},
	},
}

func refusedProbe(code int, id string) Probe {
	return Probe{
		Name: fmt.Sprintf("connack-refused-%d", code), Window: 10 * time.Second,
		Script: []adversary.Action{{On: adversary.OnConnect, Do: adversary.Refuse, Code: code}},
		Job: func(j *Job) {
			j.Reconnect, j.Subscribe = true, []Sub{{Filter: "cc/r", QoS: 0}}
			if code == 4 {
				j.Username, j.Password = "device", "wrong"
			}
		},
		Grade: func(g *grader) {
			g.wellFormed()
			cs := g.connects()
			rate := float64(len(cs)-1) / 10
			if code == 3 {
				g.check(id, len(cs) >= 1 && rate <= 1, "%d CONNECTs in 10 s after CONNACK 3 (gaps %s)", len(cs), fmtGaps(gapsOf(cs)))
				return
			}
			g.check(id, len(cs) >= 1 && rate <= 1, "%d CONNECTs in 10 s after CONNACK %d, %.1f retries/s (gaps %s)", len(cs), code, rate, fmtGaps(gapsOf(cs)))
		},
	}
}

// idleKeepAlive checks the largest gap between the client's packets on its
// first connection against Keep Alive. A gap up to 1.5 x Keep Alive passes:
// that is where the broker gives up on the client [MQTT-3.1.2-24].
func (g *grader) idleKeepAlive(id string) {
	var last time.Time
	var worst time.Duration
	conn, pings := 0, 0
	for _, r := range g.recs {
		if conn == 0 {
			conn = r.Conn
		}
		if r.Conn != conn || r.Dir != adversary.DirIn {
			continue
		}
		if _, ok := r.Packet.(*packet.Disconnect); ok {
			break
		}
		if _, ok := r.Packet.(*packet.Pingreq); ok {
			pings++
		}
		if !last.IsZero() && r.Time.Sub(last) > worst {
			worst = r.Time.Sub(last)
		}
		last = r.Time
	}
	ka := g.keepAlive()
	limit := ka * 3 / 2
	g.check(id, !last.IsZero() && worst <= limit && (pings > 0 || g.job.PublishEvery > 0),
		"Keep Alive %s: longest gap between client packets %s (limit %s), %d PINGREQs", ka, worst.Round(time.Millisecond), limit, pings)
}

// disconnected checks what follows the client's DISCONNECT, when it sent one.
func (g *grader) disconnected() {
	for _, c := range g.conns() {
		for i, r := range c {
			if _, ok := r.Packet.(*packet.Disconnect); !ok || r.Dir != adversary.DirIn {
				continue
			}
			rest := c[i+1:]
			var after []string
			closed := false
			for _, x := range rest {
				if x.Dir == adversary.DirIn {
					after = append(after, describe(x))
				}
				if x.Dir == adversary.DirClosed {
					closed = x.Err == adversary.ErrClientClosed && x.Time.Sub(r.Time) < 3*time.Second
				}
			}
			g.check(g.id("MQTT-3.14.4-1", "MQTT-3.14.4-2"), closed, "after DISCONNECT the client closed the connection within 3 s: %t", closed)
			g.check(g.id("MQTT-3.14.4-2", "MQTT-3.14.4-1"), len(after) == 0, "packets after DISCONNECT: %v", after)
			return
		}
	}
}

// publishes returns the client's PUBLISHes on connection n (0: all).
func (g *grader) publishes(n int) []*packet.Publish {
	var out []*packet.Publish
	for i, c := range g.conns() {
		if n != 0 && i != n-1 {
			continue
		}
		for _, r := range c {
			if p, ok := r.Packet.(*packet.Publish); ok && r.Dir == adversary.DirIn {
				out = append(out, p)
			}
		}
	}
	return out
}

// droppedBeforeDisconnect reports whether the client closed connection
// conn without sending DISCONNECT first.
func (g *grader) droppedBeforeDisconnect(conn int) bool {
	for _, r := range g.recs {
		if r.Conn != conn || !r.Time.Before(g.end) {
			continue // at the window's end the driver stops the client
		}
		if _, ok := r.Packet.(*packet.Disconnect); ok && r.Dir == adversary.DirIn {
			return false
		}
		if r.Dir == adversary.DirClosed {
			return r.Err != adversary.ErrServerClosed
		}
	}
	return false
}

// acks checks the client's answers to the server's deliveries.
func (g *grader) acks() {
	var q1, q2, acked1, rec2, rel2, comp2 []uint16
	var missing []string
	for _, r := range g.recs {
		switch p := r.Packet.(type) {
		case *packet.Publish:
			if r.Dir == adversary.DirOut && p.QoS == 1 {
				q1 = append(q1, p.PacketID)
			}
			if r.Dir == adversary.DirOut && p.QoS == 2 {
				q2 = append(q2, p.PacketID)
			}
		case *packet.Puback:
			if r.Dir == adversary.DirIn {
				acked1 = append(acked1, p.PacketID)
			}
		case *packet.Pubrec:
			if r.Dir == adversary.DirIn {
				rec2 = append(rec2, p.PacketID)
			}
		case *packet.Pubrel:
			if r.Dir == adversary.DirOut {
				rel2 = append(rel2, p.PacketID)
			}
		case *packet.Pubcomp:
			if r.Dir == adversary.DirIn {
				comp2 = append(comp2, p.PacketID)
			}
		}
	}
	if len(q1)+len(q2) == 0 {
		return // the client never subscribed
	}
	if len(acked1) != len(q1) {
		missing = append(missing, fmt.Sprintf("%d PUBACKs for %d QoS 1", len(acked1), len(q1)))
	}
	if len(rec2) != len(q2) {
		missing = append(missing, fmt.Sprintf("%d PUBRECs for %d QoS 2", len(rec2), len(q2)))
	}
	g.check(g.id("MQTT-4.5.0-2", "MQTT-4.5.0-2"), len(missing) == 0, "deliveries QoS 1 %v, QoS 2 %v; answers PUBACK %v PUBREC %v %v", q1, q2, acked1, rec2, missing)
	g.check(g.id("MQTT-4.3.2-2", "MQTT-4.3.2-4"), len(q1) == 0 || sameSet(q1, acked1), "QoS 1 IDs %v, PUBACK IDs %v", q1, acked1)
	g.check(g.id("MQTT-4.3.3-2", "MQTT-4.3.3-8"), len(q2) == 0 || sameSet(q2, rec2) && len(rel2) > 0 && sameSet(rel2, comp2),
		"QoS 2 deliveries %v, PUBRECs %v; server PUBRELs %v, PUBCOMPs %v", q2, rec2, rel2, comp2)
	g.check(g.id("MQTT-2.3.1-6", "MQTT-2.2.1-5"), sameSet(uniq(append(q1, q2...)), uniq(append(acked1, rec2...))), "acks echo the delivered IDs")
	g.check(g.id("MQTT-4.6.0-2", "MQTT-4.6.0-2"), len(q1) == 0 || slices.Equal(q1, acked1), "QoS 1 delivered %v, PUBACKs in order %v", q1, acked1)
	g.check(g.id("MQTT-4.6.0-3", "MQTT-4.6.0-3"), len(q2) == 0 || slices.Equal(q2, rec2), "QoS 2 delivered %v, PUBRECs in order %v", q2, rec2)
}

// resent checks the resend of unacknowledged PUBLISHes on the reconnect.
func (g *grader) resent(qos byte) {
	cs := g.conns()
	var first []*packet.Publish
	for _, r := range cs[0] {
		if p, ok := r.Packet.(*packet.Publish); ok && r.Dir == adversary.DirIn {
			first = append(first, p)
		}
	}
	var second []*packet.Publish
	var conn2 *packet.Connect
	if len(cs) > 1 {
		for _, r := range cs[1] {
			if p, ok := r.Packet.(*packet.Connect); ok {
				conn2 = p
			}
			if p, ok := r.Packet.(*packet.Publish); ok && r.Dir == adversary.DirIn {
				second = append(second, p)
			}
		}
	}
	ids := func(ps []*packet.Publish) []uint16 {
		var out []uint16
		for _, p := range ps {
			out = append(out, p.PacketID)
		}
		return out
	}
	what := fmt.Sprintf("QoS %d: first connection sent IDs %v unacknowledged; %d reconnect(s), resent IDs %v", qos, ids(first), len(cs)-1, ids(second))
	allDup := len(second) > 0
	for _, p := range second {
		allDup = allDup && p.Dup
	}
	resent := len(second) >= len(first) && len(first) > 0 && sameSet(ids(first), ids(second)[:min(len(second), len(first))])
	g.check(g.id("MQTT-4.4.0-1", "MQTT-4.4.0-1"), resent, "%s", what)
	g.check(g.id("MQTT-3.3.1-1", "MQTT-3.3.1-1"), allDup, "%s; DUP on every resend: %t", what, allDup)
	g.check(g.id("MQTT-2.3.1-3", ""), resent, "%s (same IDs)", what)
	g.check(g.id("MQTT-4.6.0-1", "MQTT-4.6.0-1"), resent && slices.Equal(ids(first), ids(second)[:len(first)]), "%s (in order)", what)
	g.check(g.id("MQTT-4.1.0-1", "MQTT-4.1.0-1"), resent, "%s (session state kept across the connection)", what)
	g.check(g.id("MQTT-3.1.2-4", ""), conn2 != nil && !conn2.CleanSession, "the reconnect asks for the session: %s", cleanOf(conn2))
}

// closesOnBadInput checks that the client closed the connection soon after
// the server sent what it must not, and did not hand it to the application.
func (g *grader) closesOnBadInput(id, what string) {
	g.wellFormed()
	var sent time.Time
	var conn int
	for _, r := range g.recs {
		if r.Dir == adversary.DirOut && (r.Packet == nil || isSecondConnack(g.recs, r)) && sent.IsZero() {
			sent, conn = r.Time, r.Conn
		}
	}
	if sent.IsZero() {
		g.check(id, false, "the client never got to the point where the server sends %s", what)
		return
	}
	end, who := g.closeOf(conn)
	ok := who == adversary.ErrClientClosed && end.Sub(sent) <= 3*time.Second
	g.check(id, ok, "server sent %s; the client %s", what, since(sent, end, who))
	// 5.0 numbers no client-side "close on a protocol violation"; the
	// behaviour is graded under its own name there.
	g.check(g.id("MQTT-4.8.0-1", ""), ok, "server sent %s; the client %s", what, since(sent, end, who))
	if g.v5 {
		g.check("client:closes-on-bad-input", ok, "server sent %s; the client %s", what, since(sent, end, who))
	}
}

func isSecondConnack(recs []adversary.Record, r adversary.Record) bool {
	if _, ok := r.Packet.(*packet.Connack); !ok {
		return false
	}
	n := 0
	for _, x := range recs {
		if x.Conn == r.Conn && x.Dir == adversary.DirOut {
			if _, ok := x.Packet.(*packet.Connack); ok {
				n++
			}
			if x.Time.Equal(r.Time) && n == 2 {
				return true
			}
		}
	}
	return false
}

// closeOf is when connection conn ended and who ended it (nil: still open
// at the end of the window, which the server then closed).
func (g *grader) closeOf(conn int) (time.Time, error) {
	for _, r := range g.recs {
		if r.Conn == conn && r.Dir == adversary.DirClosed {
			if r.Err == adversary.ErrServerClosed {
				return r.Time, adversary.ErrServerClosed
			}
			return r.Time, adversary.ErrClientClosed
		}
	}
	return time.Time{}, nil
}

func since(from, end time.Time, who error) string {
	if end.IsZero() {
		return "kept the connection open"
	}
	if who == adversary.ErrServerClosed {
		return fmt.Sprintf("kept the connection open until the server closed it %s later", end.Sub(from).Round(10*time.Millisecond))
	}
	return fmt.Sprintf("closed the connection %s later (at the end of its job when that is the probe's window)", end.Sub(from).Round(10*time.Millisecond))
}

func cleanOf(c *packet.Connect) string {
	if c == nil {
		return "no reconnect"
	}
	return fmt.Sprintf("clean session %t", c.CleanSession)
}

func msgs(topic string, qos byte, n int) []Msg {
	out := make([]Msg, n)
	for i := range out {
		out[i] = Msg{Topic: topic, QoS: qos, Payload: fmt.Sprintf("m%d", i+1)}
	}
	return out
}

func gapsOf(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

func fmtGaps(gs []time.Duration) string {
	s := "["
	for i, g := range gs {
		if i > 0 {
			s += " "
		}
		s += g.Round(10 * time.Millisecond).String()
	}
	return s + "]"
}

// jittered reports whether the gaps are not all whole multiples (within
// 3%) of the shortest: a fixed or doubling schedule without jitter lands on
// them every time, a jittered one misses.
func jittered(gs []time.Duration) bool {
	// An immediate first retry (paho's) says nothing about jitter.
	var waits []time.Duration
	for _, g := range gs {
		if g >= 200*time.Millisecond {
			waits = append(waits, g)
		}
	}
	if len(waits) < 2 {
		return false
	}
	base := slices.Min(waits)
	for _, g := range waits {
		r := float64(g) / float64(base)
		if math.Abs(r-math.Round(r)) > 0.03 {
			return true
		}
	}
	return false
}

func sameSet(a, b []uint16) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	sort.Slice(x, func(i, j int) bool { return x[i] < x[j] })
	sort.Slice(y, func(i, j int) bool { return y[i] < y[j] })
	return slices.Equal(x, y)
}

func uniq(a []uint16) []uint16 {
	seen := map[uint16]bool{}
	var out []uint16
	for _, v := range a {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func topics(ms Received) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Topic)
	}
	return out
}

// keepAlive is the Keep Alive of the client's first CONNECT: what it asked
// for is what it is held to (a command-line client may not take ours).
func (g *grader) keepAlive() time.Duration {
	for _, r := range g.in() {
		if c, ok := r.Packet.(*packet.Connect); ok {
			return time.Duration(c.KeepAlive) * time.Second
		}
	}
	return keepAlive
}
