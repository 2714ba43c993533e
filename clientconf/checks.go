package clientconf

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/adversary"
	"github.com/mqttfleet/mqttfleet/conformance"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Behaviour is a client behaviour users chase in the field that the
// standard leaves to "a reasonable amount of time" or does not number:
// graded like a statement, keyed "client:<name>".
type Behaviour struct {
	ID, Summary string
}

// Behaviours are the keepalive, reconnect and backoff behaviours graded
// beside the numbered statements.
var Behaviours = []Behaviour{
	{"client:connects", "Connects to the server at all: a probe it never connected in grades nothing else, so this cell says so."},
	{"client:keepalive-busy", "Keeps packet gaps within Keep Alive while busy publishing QoS 0 (nothing to read)."},
	{"client:pingresp-timeout", "Closes the connection when no PINGRESP comes within a reasonable time of its PINGREQ (at most Keep Alive + 15 s)."},
	{"client:reconnects", "Reconnects by itself after the link is lost (auto-reconnect on)."},
	{"client:refused-5-no-tight-loop", "After CONNACK 5 (not authorised) does not retry faster than once a second."},
	{"client:refused-4-no-tight-loop", "After CONNACK 4 (bad user name or password) does not retry faster than once a second."},
	{"client:refused-3-retries", "After CONNACK 3 (server unavailable) tries again later, not at once in a loop."},
	{"client:backoff-grows", "When every connection is cut right after CONNACK, the wait between attempts grows."},
	{"client:backoff-jitter", "The waits between reconnect attempts carry random jitter, so a fleet does not reconnect in step."},
	{"client:twin-no-kick-loop", "Two instances with one client ID and auto-reconnect do not take the ID from each other more than 0.5 times a second once settled."},
	{"client:reordered-acks", "Accepts PUBACKs out of order: every publish completes, no resend, no close."},
	{"client:closes-on-bad-input", "5.0: closes the connection on a malformed packet or protocol error from the server (3.1.1 numbers this MQTT-4.8.0-1)."},
	{"client:well-formed", "Every packet the client sends decodes; this row holds decoding failures that cite no numbered statement."},
	{"client:qos2-exactly-once", "A QoS 2 message delivered twice (DUP, same packet ID) before PUBREL reaches the application once."},
}

// Checked lists what the suite grades: the client-side (client or both)
// statements of 3.1.1 and 5.0, then the behaviours, as matrix rows.
func Checked() []conformance.Statement {
	var out []conformance.Statement
	for _, s := range conformance.Statements() {
		if s.Role == "client" || s.Role == "both" {
			out = append(out, s)
		}
	}
	for _, b := range Behaviours {
		out = append(out, conformance.Statement{ID: b.ID, Section: "behaviour", Role: "client", Summary: b.Summary})
	}
	return out
}

// Verdicts of one check.
const (
	Pass = "pass"
	Fail = "fail"
)

// Check is one graded assertion of one probe about one statement.
type Check struct {
	ID     string // statement key (v5-prefixed for 5.0) or behaviour ID
	Probe  string
	Status string // Pass or Fail
	Reason string // what was seen
}

// grader grades one probe run from the server's wire records.
type grader struct {
	probe  string
	end    time.Time // when the probe's window ended and the driver stopped the client
	v5     bool
	job    Job
	recs   []adversary.Record
	got    Received
	blind  bool // the driver cannot say what the client delivered
	checks []Check
	failed bool
}

// id turns a 3.1.1 statement ID into the protocol's key: the same ID for
// 3.1.1, and for 5.0 the given 5.0 ID with the v5 prefix ("" skips).
func (g *grader) id(v311, v5 string) string {
	if !g.v5 {
		return v311
	}
	if v5 == "" {
		return ""
	}
	return conformance.V5Prefix + v5
}

func (g *grader) check(id string, ok bool, format string, args ...any) {
	if id == "" {
		return
	}
	st := Pass
	if !ok {
		st, g.failed = Fail, true
	}
	g.checks = append(g.checks, Check{ID: id, Probe: g.probe, Status: st, Reason: fmt.Sprintf(format, args...)})
}

// in returns the client's frames, in order.
func (g *grader) in() []adversary.Record { return g.dir(adversary.DirIn) }

func (g *grader) dir(d string) []adversary.Record {
	var out []adversary.Record
	for _, r := range g.recs {
		if r.Dir == d {
			out = append(out, r)
		}
	}
	return out
}

// conns returns the records of each connection, by connection number.
func (g *grader) conns() [][]adversary.Record {
	idx := map[int]int{}
	var out [][]adversary.Record
	for _, r := range g.recs {
		i, ok := idx[r.Conn]
		if !ok {
			i = len(out)
			idx[r.Conn] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// connects returns the time of every CONNECT the client sent.
func (g *grader) connects() []time.Time {
	var out []time.Time
	for _, r := range g.in() {
		if _, ok := r.Packet.(*packet.Connect); ok {
			out = append(out, r.Time)
		}
	}
	return out
}

// trace renders the wire records for a failure's reason.
func (g *grader) trace() string {
	if len(g.recs) == 0 {
		return "(no connection reached the server)"
	}
	var b strings.Builder
	t0 := g.recs[0].Time
	for i, r := range g.recs {
		if i == 60 {
			fmt.Fprintf(&b, "... %d more\n", len(g.recs)-i)
			break
		}
		arrow := map[string]string{adversary.DirIn: "client->server", adversary.DirOut: "server->client", adversary.DirClosed: "closed"}[r.Dir]
		fmt.Fprintf(&b, "%8.3fs conn %d %s %s", r.Time.Sub(t0).Seconds(), r.Conn, arrow, describe(r))
		b.WriteByte('\n')
	}
	return b.String()
}

func describe(r adversary.Record) string {
	if r.Dir == adversary.DirClosed {
		return r.Err.Error()
	}
	raw := fmt.Sprintf("% X", r.Raw)
	if len(raw) > 48 {
		raw = raw[:48] + "..."
	}
	if r.Packet == nil {
		return fmt.Sprintf("[%s] %v", raw, r.Err)
	}
	s := r.Packet.Type().String()
	switch p := r.Packet.(type) {
	case *packet.Connect:
		s += fmt.Sprintf(" id=%q clean=%t keepalive=%d will=%t user=%t pass=%t", p.ClientID, p.CleanSession, p.KeepAlive, p.Will != nil, p.UsernameFlag, p.PasswordFlag)
	case *packet.Connack:
		s += fmt.Sprintf(" code=%d sp=%t", p.ReturnCode, p.SessionPresent)
	case *packet.Publish:
		s += fmt.Sprintf(" topic=%q qos=%d dup=%t id=%d", p.Topic, p.QoS, p.Dup, p.PacketID)
	case *packet.Puback:
		s += fmt.Sprintf(" id=%d", p.PacketID)
	case *packet.Pubrec:
		s += fmt.Sprintf(" id=%d", p.PacketID)
	case *packet.Pubrel:
		s += fmt.Sprintf(" id=%d", p.PacketID)
	case *packet.Pubcomp:
		s += fmt.Sprintf(" id=%d", p.PacketID)
	case *packet.Subscribe:
		s += fmt.Sprintf(" id=%d filters=%d", p.PacketID, len(p.Subscriptions))
	case *packet.Unsubscribe:
		s += fmt.Sprintf(" id=%d filters=%d", p.PacketID, len(p.Filters))
	}
	return s + " [" + raw + "]"
}

// wellFormed grades every frame the client sent against the rules its
// decoding checks: a frame that fails names the statement it breaks, and
// the statements each well-formed packet type exercises pass.
func (g *grader) wellFormed() {
	seen := map[string]bool{}
	for _, c := range g.conns() {
		first := true
		for _, r := range c {
			if r.Dir != adversary.DirIn {
				continue
			}
			if first {
				_, ok := r.Packet.(*packet.Connect)
				g.check(g.id("MQTT-3.1.0-1", "MQTT-3.1.0-1"), ok, "first packet on connection %d: %s", r.Conn, describe(r))
				first = false
			}
			if r.Err != nil {
				var pe *packet.Error
				stmt := ""
				if errors.As(r.Err, &pe) {
					stmt = pe.Statement
				}
				if stmt == "" {
					stmt = "client:well-formed"
				} else if g.v5 {
					stmt = conformance.V5Prefix + stmt
				}
				g.check(stmt, false, "client sent a malformed packet: %v", r.Err)
				continue
			}
			if !seen["flags"] {
				seen["flags"] = true
				g.check(g.id("MQTT-2.2.2-1", "MQTT-2.1.3-1"), true, "reserved fixed-header flags as the table gives")
			}
			for _, id := range exercised(r.Packet, g) {
				if id != "" && !seen[id] {
					seen[id] = true
					g.check(id, true, "%s well formed", r.Packet.Type())
				}
			}
		}
	}
}

// exercised lists the statements a well-formed client packet of this kind
// met (the decoder refuses a packet breaking any of them).
func exercised(p packet.Packet, g *grader) []string {
	id := g.id
	switch p := p.(type) {
	case *packet.Connect:
		out := []string{id("MQTT-3.1.3-1", "MQTT-3.1.3-1"), id("MQTT-3.1.3-3", "MQTT-3.1.3-3"), id("MQTT-3.1.3-4", "MQTT-3.1.3-4"),
			id("MQTT-1.5.3-1", "MQTT-1.5.4-1"), id("MQTT-1.5.3-2", "MQTT-1.5.4-2"), id("MQTT-3.1.2-22", "")}
		if p.Will != nil {
			out = append(out, id("MQTT-3.1.2-9", "MQTT-3.1.2-9"), id("MQTT-3.1.2-14", "MQTT-3.1.2-12"), id("MQTT-3.1.3-10", "MQTT-3.1.3-11"))
		} else {
			out = append(out, id("MQTT-3.1.2-11", "MQTT-3.1.2-11"), id("MQTT-3.1.2-13", "MQTT-3.1.2-11"), id("MQTT-3.1.2-15", "MQTT-3.1.2-13"))
		}
		if p.UsernameFlag {
			out = append(out, id("MQTT-3.1.2-19", "MQTT-3.1.2-17"), id("MQTT-3.1.3-11", "MQTT-3.1.3-12"))
		} else {
			out = append(out, id("MQTT-3.1.2-18", "MQTT-3.1.2-16"))
		}
		if p.PasswordFlag {
			out = append(out, id("MQTT-3.1.2-21", "MQTT-3.1.2-19"))
		} else {
			out = append(out, id("MQTT-3.1.2-20", "MQTT-3.1.2-18"))
		}
		if p.ClientID == "" {
			g.check(id("MQTT-3.1.3-7", ""), p.CleanSession, "empty client ID with clean session %t", p.CleanSession)
		}
		return out
	case *packet.Publish:
		out := []string{id("MQTT-3.3.2-1", "MQTT-3.3.2-1"), id("MQTT-3.3.2-2", "MQTT-3.3.2-2"), id("MQTT-4.7.1-1", "MQTT-4.7.0-1"),
			id("MQTT-4.7.3-1", "MQTT-4.7.3-1"), id("MQTT-4.7.3-2", "MQTT-4.7.3-2"), id("MQTT-4.7.3-3", "MQTT-4.7.3-3"), id("MQTT-3.3.1-4", "MQTT-3.3.1-4")}
		if p.QoS == 0 {
			out = append(out, id("MQTT-2.3.1-5", "MQTT-2.2.1-2"), id("MQTT-3.3.1-2", "MQTT-3.3.1-2"))
		} else {
			out = append(out, id("MQTT-2.3.1-1", "MQTT-2.2.1-3"))
		}
		return out
	case *packet.Subscribe:
		return []string{id("MQTT-3.8.1-1", "MQTT-3.8.1-1"), id("MQTT-2.3.1-1", "MQTT-2.2.1-3"), id("MQTT-3.8.3-1", "MQTT-3.8.3-1"),
			id("MQTT-3.8.3-3", "MQTT-3.8.3-2"), id("MQTT-4.7.1-2", "MQTT-4.7.1-1"), id("MQTT-4.7.1-3", "MQTT-4.7.1-2")}
	case *packet.Unsubscribe:
		return []string{id("MQTT-3.10.1-1", "MQTT-3.10.1-1"), id("MQTT-3.10.3-1", "MQTT-3.10.3-1"), id("MQTT-3.10.3-2", "MQTT-3.10.3-2"),
			id("MQTT-2.3.1-1", "MQTT-2.2.1-3")}
	case *packet.Pubrel:
		return []string{id("MQTT-3.6.1-1", "MQTT-3.6.1-1")}
	}
	return nil
}
