package scenarios

import (
	"sort"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
)

// The MQTT 5.0 library scenarios' checks must be able to fail: each test
// here evaluates a file's own assertions over a recorded stream built as
// the standard wants it (every verdict passes: the stream is right), then
// over the same stream with one thing gone wrong (the check for it fails).

// verdicts evaluates the assertions of a library file over evs, with its
// steps at the given offsets from the start, as the reference broker's run.
func verdicts(t *testing.T, file string, steps map[string]time.Duration, evs []events.Event) map[string]reports.Assertion {
	t.Helper()
	sc, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := moments{t0: t0v5, steps: map[string]time.Time{}}
	var last time.Duration
	for _, s := range sc.Steps {
		d, ok := steps[s.Name]
		if !ok {
			t.Fatalf("%s: no time given for step %s", file, s.Name)
		}
		m.steps[s.Name] = t0v5.Add(d)
		last = max(last, d)
	}
	m.last = t0v5.Add(last)
	m.end = m.last.Add(time.Second)
	r := &runner{sc: sc, target: named{name: "inprocess"}}
	out := map[string]reports.Assertion{}
	for _, a := range r.evaluate(evs, m, nil) {
		out[a.Name] = a
	}
	if len(out) != len(sc.Assertions) {
		t.Fatalf("%d verdicts for %d assertions", len(out), len(sc.Assertions))
	}
	return out
}

var t0v5 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// at is an event d after the start, seen by a scenario client.
func at(d time.Duration, e events.Event) events.Event {
	e.Time, e.Source = t0v5.Add(d), events.SourceClient
	return e
}

// wantVerdicts checks every verdict is pass except those in failing.
func wantVerdicts(t *testing.T, got map[string]reports.Assertion, failing ...string) {
	t.Helper()
	bad := map[string]bool{}
	for _, n := range failing {
		if _, ok := got[n]; !ok {
			t.Fatalf("no assertion %q", n)
		}
		bad[n] = true
	}
	for n, a := range got {
		want := reports.Pass
		if bad[n] {
			want = reports.Fail
		}
		if a.Verdict != want {
			t.Errorf("%q: %s, want %s (%s)", n, a.Verdict, want, a.Message)
		}
	}
}

// without returns evs less the events at the given indexes.
func without(evs []events.Event, drop ...int) []events.Event {
	out := make([]events.Event, 0, len(evs))
	for i, e := range evs {
		keep := true
		for _, d := range drop {
			keep = keep && i != d
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

func TestV5WillDelayVerdicts(t *testing.T) {
	const file = "library/v5-will-delay-quick-reconnect.yaml"
	steps := map[string]time.Duration{"cut-quick": 0, "cut-away": time.Millisecond, "back": time.Second,
		"wait#4": 5010 * time.Millisecond, "past-delay": 9010 * time.Millisecond}
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	resumed := at(sec(1.002), events.Event{Kind: events.ConnAck, ClientID: "quick", Group: "quick", SessionPresent: true})
	awayWill := func(after float64) events.Event {
		return at(sec(0.001+after), events.Event{Kind: events.PublishReceived, ClientID: "watcher", Group: "watcher",
			Topic: "trackers/away/state", QoS: 1})
	}
	t.Run("as the standard wants", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, []events.Event{resumed, awayWill(5.01)}))
	})
	t.Run("the will fires early", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, []events.Event{resumed, awayWill(2)}),
			"away past the Will Delay Interval - will once, after the delay and not before")
	})
	t.Run("the will fires at once, ignoring the delay", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, []events.Event{resumed, awayWill(0.003)}),
			"away past the Will Delay Interval - will once, after the delay and not before")
	})
	t.Run("the will never fires", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, []events.Event{resumed}),
			"away past the Will Delay Interval - will once, after the delay and not before")
	})
	t.Run("the will of the device that came back fires", func(t *testing.T) {
		quickWill := at(sec(5), events.Event{Kind: events.PublishReceived, ClientID: "watcher", Group: "watcher",
			Topic: "trackers/quick/state", QoS: 1})
		wantVerdicts(t, verdicts(t, file, steps, []events.Event{resumed, quickWill, awayWill(5.01)}),
			"back within the Will Delay Interval - no will")
	})
	t.Run("the session is not resumed", func(t *testing.T) {
		fresh := resumed
		fresh.SessionPresent = false
		wantVerdicts(t, verdicts(t, file, steps, []events.Event{fresh, awayWill(5.01)}),
			"quick resumed its session within the delay")
	})
}

func TestV5TopicAliasMisuseVerdicts(t *testing.T) {
	const file = "library/v5-topic-alias-misuse.yaml"
	ms := time.Millisecond
	steps := map[string]time.Duration{"over": 0, "wait#2": 2 * ms, "cut": 3 * ms, "reconnected": 4 * ms,
		"unset": 6 * ms, "wait#6": 8 * ms, "alias-zero": 9 * ms, "wait#8": 11 * ms, "done": 1011 * ms}
	dis := func(d time.Duration, client string, code int, stmt string) events.Event {
		return at(d, events.Event{Kind: events.Disconnect, ClientID: client, Group: client,
			Cause: events.CauseServerDisconnect, Code: code, Statement: stmt})
	}
	good := []events.Event{
		dis(1*ms, "over-max", 0x94, "MQTT-3.3.2-9"),
		at(3*ms, events.Event{Kind: events.Disconnect, ClientID: "carried-over", Group: "carried-over", Cause: events.CauseShutdown}),
		at(5*ms, events.Event{Kind: events.ConnAck, ClientID: "carried-over", Group: "carried-over"}),
		dis(7*ms, "carried-over", 0x82, "MQTT-3.3.2-7"),
		dis(10*ms, "zero", 0x94, "MQTT-3.3.2-8"),
	}
	t.Run("as the standard wants", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, good))
	})
	t.Run("no DISCONNECT for the alias over the maximum", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, without(good, 0)),
			"alias over the Topic Alias Maximum - DISCONNECT 0x94")
	})
	t.Run("the alias over the maximum answered with another code", func(t *testing.T) {
		evs := append([]events.Event(nil), good...)
		evs[0].Code = 0x82
		wantVerdicts(t, verdicts(t, file, steps, evs), "alias over the Topic Alias Maximum - DISCONNECT 0x94")
	})
	t.Run("the connection closed without DISCONNECT", func(t *testing.T) {
		evs := append([]events.Event(nil), good...)
		evs[0].Cause, evs[0].Code = events.CauseIOError, 0
		evs[4].Cause, evs[4].Code = events.CauseIOError, 0
		wantVerdicts(t, verdicts(t, file, steps, evs), "alias over the Topic Alias Maximum - DISCONNECT 0x94",
			"alias 0 - server DISCONNECT")
	})
	t.Run("the unset alias is accepted and routed", func(t *testing.T) {
		routed := at(7*ms, events.Event{Kind: events.PublishReceived, ClientID: "bystander", Group: "bystander", Topic: "mqttfleet/violation"})
		wantVerdicts(t, verdicts(t, file, steps, append(without(good, 3), routed)),
			"alias not set on this connection - server DISCONNECT", "no misused alias was routed")
	})
	t.Run("the broker drops a well-behaved client too", func(t *testing.T) {
		evs := append(append([]events.Event(nil), good...), dis(8*ms, "bystander", 0x94, ""))
		wantVerdicts(t, verdicts(t, file, steps, evs), "the well-behaved client stayed connected")
	})
}

func TestV5ReceiveMaximumVerdicts(t *testing.T) {
	const file = "library/v5-receive-maximum-exceeded.yaml"
	ms := time.Millisecond
	steps := map[string]time.Duration{"steady-start": 0, "flood": 400 * ms, "steady-more": 2400 * ms,
		"wait#4": 2800 * ms, "steady-done": 2800 * ms}
	var good []events.Event
	for i := 0; i < 20; i++ {
		d := time.Duration(i) * 20 * ms
		if i >= 10 {
			d += 2000 * ms
		}
		seq := uint64(i + 1)
		good = append(good,
			at(d, events.Event{Kind: events.PublishSent, ClientID: "steady", Group: "steady", Topic: "readings/steady", QoS: 2, Seq: seq}),
			at(d+ms, events.Event{Kind: events.PublishReceived, ClientID: "consumer", Group: "consumer", Topic: "readings/steady", QoS: 2, Seq: seq}))
	}
	good = append(good,
		at(-ms, events.Event{Kind: events.Subscribed, ClientID: "consumer", Group: "consumer", Topic: "readings/#", QoS: 2}),
		at(401*ms, events.Event{Kind: events.Disconnect, ClientID: "flooder", Group: "flooder",
			Cause: events.CauseServerDisconnect, Code: 0x93, Statement: "MQTT-3.3.4-7"}))
	sortEvents(good)
	t.Run("as the standard wants", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, good))
	})
	t.Run("the flood is answered with PUBREC 0x97 only", func(t *testing.T) {
		var evs []events.Event
		for _, e := range good {
			if e.ClientID != "flooder" {
				evs = append(evs, e)
			}
		}
		wantVerdicts(t, verdicts(t, file, steps, evs), "the flooder was disconnected with 0x93")
	})
	t.Run("a message of the well-behaved publisher is lost", func(t *testing.T) {
		var evs []events.Event
		for _, e := range good {
			if !(e.Kind == events.PublishReceived && e.Seq == 12) {
				evs = append(evs, e)
			}
		}
		wantVerdicts(t, verdicts(t, file, steps, evs), "the consumer got every message of the well-behaved publisher once")
	})
}

func TestV5SessionExpiryVerdicts(t *testing.T) {
	const file = "library/v5-session-expiry-outage.yaml"
	ms := time.Millisecond
	steps := map[string]time.Duration{"leave-brief": 0, "leave-durable": 2 * ms, "outage": 4 * ms, "published": 500 * ms,
		"return-brief": 7000 * ms, "return-durable": 7003 * ms, "wait#7": 7010 * ms, "settled": 9010 * ms}
	connack := func(d time.Duration, client string, present bool) events.Event {
		return at(d, events.Event{Kind: events.ConnAck, ClientID: client, Group: client, SessionPresent: present})
	}
	good := []events.Event{
		at(-10*ms, events.Event{Kind: events.Subscribed, ClientID: "durable", Group: "durable", Topic: "alarms/#", QoS: 1}),
		at(-10*ms, events.Event{Kind: events.Subscribed, ClientID: "brief", Group: "brief", Topic: "alarms/#", QoS: 1}),
	}
	for i := 0; i < 10; i++ {
		good = append(good, at(4*ms+time.Duration(i)*50*ms, events.Event{Kind: events.PublishSent, ClientID: "raiser",
			Group: "raiser", Topic: "alarms/site-1", QoS: 1, Seq: uint64(i + 1)}))
	}
	good = append(good, connack(7001*ms, "brief", false), connack(7004*ms, "durable", true))
	for i := 0; i < 10; i++ {
		good = append(good, at(7005*ms, events.Event{Kind: events.PublishReceived, ClientID: "durable", Group: "durable",
			Topic: "alarms/site-1", QoS: 1, Seq: uint64(i + 1)}))
	}
	sortEvents(good)
	t.Run("as the standard wants", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, good))
	})
	t.Run("the expired session is resumed with its messages", func(t *testing.T) {
		evs := append([]events.Event(nil), good...)
		for i, e := range evs {
			if e.Kind == events.ConnAck && e.ClientID == "brief" {
				evs[i].SessionPresent = true
			}
		}
		evs = append(evs, at(7002*ms, events.Event{Kind: events.PublishReceived, ClientID: "brief", Group: "brief",
			Topic: "alarms/site-1", QoS: 1, Seq: 1}))
		sortEvents(evs)
		wantVerdicts(t, verdicts(t, file, steps, evs), "brief's session expired - Session Present 0", "brief got none of the alarms")
	})
	t.Run("the live session is lost", func(t *testing.T) {
		var evs []events.Event
		for _, e := range good {
			switch {
			case e.Kind == events.ConnAck && e.ClientID == "durable":
				e.SessionPresent = false
			case e.Kind == events.PublishReceived:
				continue
			}
			evs = append(evs, e)
		}
		wantVerdicts(t, verdicts(t, file, steps, evs), "durable resumed its session - Session Present 1",
			"durable got every alarm raised during the outage, once")
	})
}

func TestV5TakeoverVerdicts(t *testing.T) {
	const file = "library/v5-takeover-0x8e.yaml"
	ms := time.Millisecond
	steps := map[string]time.Duration{"take-plain": 0, "wait#2": 2 * ms, "take-delayed": 3 * ms, "wait#4": 5 * ms,
		"past-delay": 8003 * ms}
	dis := func(d time.Duration, group, id string) events.Event {
		return at(d, events.Event{Kind: events.Disconnect, ClientID: id, Group: group, Cause: events.CauseServerDisconnect, Code: 0x8E})
	}
	good := []events.Event{
		dis(1*ms, "plain-old", "gw-plain"),
		at(2*ms, events.Event{Kind: events.PublishReceived, ClientID: "watcher", Group: "watcher", Topic: "gw/plain/state", QoS: 1}),
		dis(4*ms, "delayed-old", "gw-delayed"),
		at(4*ms, events.Event{Kind: events.ConnAck, ClientID: "gw-delayed", Group: "delayed-new", SessionPresent: true}),
	}
	t.Run("as the standard wants", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, good))
	})
	t.Run("closed without DISCONNECT 0x8E", func(t *testing.T) {
		evs := append([]events.Event(nil), good...)
		evs[0].Cause, evs[0].Code = events.CauseIOError, 0
		wantVerdicts(t, verdicts(t, file, steps, evs), "plain - the old connection got DISCONNECT 0x8E")
	})
	t.Run("the delayed will fires although the session was resumed", func(t *testing.T) {
		evs := append(append([]events.Event(nil), good...),
			at(5003*ms, events.Event{Kind: events.PublishReceived, ClientID: "watcher", Group: "watcher", Topic: "gw/delayed/state", QoS: 1}))
		wantVerdicts(t, verdicts(t, file, steps, evs), "delayed - no will, even after the delay")
	})
	t.Run("no will for the plain takeover", func(t *testing.T) {
		wantVerdicts(t, verdicts(t, file, steps, without(good, 1)), "plain - the old connection's will, once, at once")
	})
}

// sortEvents orders a built stream by time, as the recorder would.
func sortEvents(evs []events.Event) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
}
