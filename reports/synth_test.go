package reports

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// synthStart is the wall-clock start of the synthetic run; fixed so that
// rendered output is reproducible.
var synthStart = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// synthStream returns a deterministic event stream shaped like a real fleet
// run: devices connect over a ramp, publish QoS 1 telemetry once a second
// to a mirror subscriber, a half-open fault hits a quarter of the fleet
// from 30 s to 45 s (messages lost, acks slow, keepalive expiries,
// takeovers on reconnect), and everyone disconnects at the end. Every
// device event carries Device, so the stream can be split into shards.
func synthStream(seed uint64, devices, seconds int) []events.Event {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out []events.Event
	at := func(sec float64) time.Time { return synthStart.Add(time.Duration(sec * float64(time.Second))) }
	logn := func(median time.Duration, sigma float64) time.Duration {
		return time.Duration(math.Exp(r.NormFloat64()*sigma) * float64(median))
	}
	const faultFrom, faultTo = 30.0, 45.0
	out = append(out,
		events.Event{Time: at(faultFrom), Kind: events.FaultInjected, Source: events.SourceNetem, Group: "edge-a", Fault: "half_open", Direction: "upstream", Detail: "drop device->broker bytes, keep the socket"},
		events.Event{Time: at(faultTo), Kind: events.FaultRemoved, Source: events.SourceNetem, Group: "edge-a", Fault: "half_open", Direction: "upstream"},
	)
	for d := 1; d <= devices; d++ {
		id := fmt.Sprintf("dev-%04d", d)
		sub := id + "-mirror"
		topic := fmt.Sprintf("fleet/%s/telemetry", id)
		faulted := d <= devices/4
		connectAt := float64(d-1) * 20 / float64(devices)
		connect := func(t float64, slow bool) {
			lat := logn(3*time.Millisecond, 0.5)
			if slow {
				lat *= 8
			}
			for _, cid := range []string{id, sub} {
				out = append(out,
					events.Event{Time: at(t), Kind: events.Connect, Source: events.SourceClient, ClientID: cid, Device: d, KeepAlive: 10, Clean: true},
					events.Event{Time: at(t + lat.Seconds()), Kind: events.ConnAck, Source: events.SourceClient, ClientID: cid, Device: d, Latency: lat},
					events.Event{Time: at(t + lat.Seconds()), Kind: events.ConnAck, Source: events.SourceBroker, ClientID: cid, Device: d},
				)
			}
			out = append(out, events.Event{Time: at(t + 0.01), Kind: events.Subscribed, Source: events.SourceClient, ClientID: sub, Device: d, Topic: topic, QoS: 1, Latency: logn(time.Millisecond, 0.3)})
		}
		if d%50 == 7 { // a few devices are refused once before they get in
			out = append(out,
				events.Event{Time: at(connectAt), Kind: events.ConnAck, Source: events.SourceClient, ClientID: id, Device: d, Code: 5, Latency: logn(2*time.Millisecond, 0.3)},
				events.Event{Time: at(connectAt + 0.001), Kind: events.Disconnect, Source: events.SourceClient, ClientID: id, Device: d, Cause: events.CauseRefused})
			connectAt += 1.5
		}
		connect(connectAt, false)
		var seq uint64
		down := false
		for s := math.Ceil(connectAt) + r.Float64()*0.9; s < float64(seconds-2); s++ {
			inFault := faulted && s >= faultFrom && s < faultTo
			if faulted && s >= faultFrom+12 && !down && s < faultTo {
				// The broker gives up on the silent link; the device notices later.
				down = true
				out = append(out,
					events.Event{Time: at(s), Kind: events.KeepaliveExpired, Source: events.SourceBroker, ClientID: id, Device: d, KeepAlive: 10, Latency: 15 * time.Second},
					events.Event{Time: at(s), Kind: events.Disconnect, Source: events.SourceBroker, ClientID: id, Device: d, Cause: events.CauseKeepalive},
				)
				continue
			}
			if down && s >= faultTo {
				down = false
				cause := events.CauseIOError
				if d%3 == 0 {
					// It reconnects before it notices its old socket died: a takeover.
					// Both views report it: the broker's and the fleet's (the
					// simulator knows its devices' client IDs).
					out = append(out,
						events.Event{Time: at(s), Kind: events.Takeover, Source: events.SourceBroker, ClientID: id, Device: d, Remote: "127.0.0.1:40000"},
						events.Event{Time: at(s), Kind: events.Takeover, Source: events.SourceSimulator, ClientID: id, Device: d})
					cause = events.CauseTakeover
				}
				out = append(out, events.Event{Time: at(s), Kind: events.Disconnect, Source: events.SourceClient, ClientID: id, Device: d, Cause: cause})
				out = append(out, events.Event{Time: at(s), Kind: events.Disconnect, Source: events.SourceClient, ClientID: sub, Device: d, Cause: events.CauseIOError})
				connect(s+0.05, true)
				continue
			}
			if down {
				continue
			}
			seq++
			out = append(out, events.Event{Time: at(s), Kind: events.PublishSent, Source: events.SourceClient, ClientID: id, Device: d, Topic: topic, QoS: 1, Seq: seq, Size: 120})
			if inFault {
				continue // lost upstream
			}
			e2e := logn(4*time.Millisecond, 0.6)
			if s > 50 && s < 53 {
				e2e *= 5 // a broker GC pause, say
			}
			out = append(out,
				events.Event{Time: at(s + e2e.Seconds()), Kind: events.PublishReceived, Source: events.SourceClient, ClientID: sub, Device: d, Topic: topic, QoS: 1, Seq: seq, Size: 120, Latency: e2e},
				events.Event{Time: at(s + e2e.Seconds()), Kind: events.PublishAcked, Source: events.SourceClient, ClientID: id, Device: d, QoS: 1, Latency: e2e / 2},
			)
			if r.IntN(400) == 0 {
				out = append(out, events.Event{Time: at(s + e2e.Seconds() + 0.002), Kind: events.PublishReceived, Source: events.SourceClient, ClientID: sub, Device: d, Topic: topic, QoS: 1, Dup: true, Seq: seq, Size: 120, Latency: e2e})
			}
		}
		end := float64(seconds-1) + r.Float64()*0.5
		for _, cid := range []string{id, sub} {
			out = append(out,
				events.Event{Time: at(end), Kind: events.Disconnect, Source: events.SourceClient, ClientID: cid, Device: d, Cause: events.CauseClientDisconnect},
				events.Event{Time: at(end), Kind: events.Disconnect, Source: events.SourceBroker, ClientID: cid, Device: d, Cause: events.CauseClientDisconnect},
			)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// shardOf places a device event in one of n shards of contiguous device
// ranges; events of no device (netem) go to shard 0.
func shardOf(e events.Event, devices, n int) int {
	if e.Device == 0 {
		return 0
	}
	return (e.Device - 1) * n / devices
}
