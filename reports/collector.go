package reports

import (
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/histogram"
)

// Bounds on what a Collector keeps besides aggregates.
const (
	MaxFirstEvents   = 20
	MaxNotableEvents = 50
	// maxSeriesSeconds caps the series span (a week); events beyond it still
	// count in totals, so a stray timestamp cannot exhaust memory.
	maxSeriesSeconds = 7 * 24 * 3600
	// compactLag is how many seconds behind the newest one a second's
	// latency histograms are compacted: events arrive a little out of order,
	// but a long soak must not keep dense histograms for every second.
	compactLag = 10
)

// counter indexes the totals a Collector keeps in a fixed array, so an
// event costs no map lookup on the hot path.
type counter int

const (
	cConnects counter = iota
	cConnectFailures
	cDisconnects
	cTakeovers
	cSent
	cReceived
	cAcked
	cLost
	cDup
	cDropped
	cSubscribes
	cPings
	cKeepalive
	cWills
	cViolations
	cFaults
	cLinksOpened
	cLinksClosed
	cKafkaProduced
	cKafkaFailed
	cKafkaRetries
	cKafkaConsumed
	nCounters
)

var counterNames = [nCounters]string{
	"connects", "connect_failures", "disconnects", "takeovers", "publishes_sent", "publishes_received",
	"publishes_acked", "lost", "duplicates", "dropped", "subscribes", "pings", "keepalive_expired",
	"wills_published", "violations", "faults_injected", "links_opened", "links_closed",
	"kafka_produced", "kafka_failed", "kafka_retries", "kafka_consumed",
}

// histograms a Collector fills, fleet view; the first len(SeriesLatencies)
// are also kept per second.
const (
	hConnect = iota
	hPublishAck
	hE2E
	hKafka
	hSubscribe
	hPing
	nHists
)

var histNames = [nHists]string{"connect_latency", "publish_ack_latency", "e2e_latency", "kafka_latency", "subscribe_latency", "ping_rtt"}

// per-second columns, in columnOrder; cConnDelta is the change of the
// connected gauge, summed into ColConnected when a snapshot is taken.
const (
	sConnDelta = iota
	sConnects
	sConnectFailures
	sDisconnects
	sTakeovers
	sSent
	sReceived
	sAcked
	sLost
	sDup
	sDropped
	sKafkaProduced
	sKafkaFailed
	sKafkaConsumed
	nCols
)

const nSecondHists = hKafka + 1

type second struct {
	cols [nCols]int64
	// kafka counts the records each Kafka watcher read in this second, for
	// the lag gauge (the slowest watcher's backlog).
	kafka   map[string]int64
	lat     [nSecondHists]*histogram.Histogram
	compact bool // lat histograms are compacted; a late sample recompacts
}

type seqKey struct{ client, topic string }

type faultKey struct{ link, group, direction, fault string }

// Collector is an events.Sink that aggregates a stream into Results:
// counters, latency histograms, a per-second series, disconnect causes and
// fault windows. Each event costs one lock and O(1) work.
//
// Events from the broker count under "broker_"-prefixed counters and in
// BrokerDisconnects; everything else (client, simulator, scenario) is the
// fleet's view, which feeds the series and histograms; the broker's view
// never changes the fleet's figures (takeovers included). Drops are counted
// from whoever reports them.
type Collector struct {
	mu         sync.Mutex
	kind       Kind
	run        Run
	fleet      [nCounters]int64
	broker     [nCounters]int64
	hists      [nHists]*histogram.Histogram
	base       int64 // unix second of secs[0]
	secs       []*second
	compacted  int              // secs[:compacted] have been compacted
	live       map[string]int32 // live connections per client ID, for the connected gauge
	seqs       map[seqKey]uint64
	trackSeqs  bool
	disc       map[string]int64
	brokerDisc map[string]int64
	open       map[faultKey]int // index into faults of windows not yet removed
	faults     []FaultWindow
	byKind     map[string]int64
	bySource   map[string]int64
	total      int64
	first      []events.Event
	notable    []events.Event
	firstTime  time.Time
	lastTime   time.Time
	rc         map[string]int64 // fleet reason-code counters, by name (see RCCounter)
	// kafkaWatchers are the Kafka watchers seen, for the lag gauge.
	kafkaWatchers map[string]bool
}

// TrackSequences turns on counting lost and duplicate messages from the
// Seq of publish_received events (see sequence). Off by default: the
// simulator accounts loss itself, knowing which device published what, and
// writes its own figures into the results.
func (c *Collector) TrackSequences(on bool) {
	c.mu.Lock()
	c.trackSeqs = on
	c.mu.Unlock()
}

// Totals returns the fleet-view counters so far, by name: the same numbers
// Results will hold, cheap enough for a live progress line (no series or
// histogram is copied).
func (c *Collector) Totals() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, nCounters+1)
	for i, name := range counterNames {
		out[name] = c.fleet[i]
	}
	out["events"] = c.total
	return out
}

// NewCollector returns an empty Collector for a run of the given kind.
func NewCollector(kind Kind, run Run) *Collector {
	c := &Collector{
		kind: kind, run: run,
		live: map[string]int32{}, seqs: map[seqKey]uint64{}, kafkaWatchers: map[string]bool{},
		disc: map[string]int64{}, brokerDisc: map[string]int64{},
		open: map[faultKey]int{}, byKind: map[string]int64{}, bySource: map[string]int64{},
		rc: map[string]int64{},
	}
	for i := range c.hists {
		c.hists[i] = histogram.New()
	}
	return c
}

// Emit aggregates one event. Safe for concurrent use.
func (c *Collector) Emit(e events.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	c.byKind[string(e.Kind)]++
	c.bySource[string(e.Source)]++
	if len(c.first) < MaxFirstEvents {
		c.first = append(c.first, e)
	}
	if c.firstTime.IsZero() || e.Time.Before(c.firstTime) {
		c.firstTime = e.Time
	}
	if e.Time.After(c.lastTime) {
		c.lastTime = e.Time
	}
	fromBroker := e.Source == events.SourceBroker
	cnt := &c.fleet
	if fromBroker {
		cnt = &c.broker
	}
	sec := c.second(e.Time)
	c.compactOld()
	col := func(i int, n int64) {
		if sec != nil && !fromBroker {
			sec.cols[i] += n
		}
	}
	if !fromBroker {
		if name := rcCounterOf(e); name != "" {
			c.rc[name]++
		}
	}
	switch e.Kind {
	case events.ConnAck:
		if e.Code != 0 {
			cnt[cConnectFailures]++
			col(sConnectFailures, 1)
			break
		}
		cnt[cConnects]++
		col(sConnects, 1)
		if !fromBroker {
			c.live[connKey(e)]++
			col(sConnDelta, 1)
			c.latency(hConnect, sec, e.Latency)
		}
	case events.Disconnect:
		cnt[cDisconnects]++
		col(sDisconnects, 1)
		cause := string(e.Cause)
		if cause == "" {
			cause = "unknown"
		}
		if fromBroker {
			c.brokerDisc[cause]++
			break
		}
		c.disc[cause]++
		// A refused attempt never counted as connected.
		if k := connKey(e); e.Cause != events.CauseRefused && c.live[k] > 0 {
			if c.live[k]--; c.live[k] == 0 {
				delete(c.live, k)
			}
			col(sConnDelta, -1)
		}
	case events.Takeover:
		// The fleet's figure comes from the fleet's own takeover events;
		// the broker's (it decides the takeover) count as broker_takeovers.
		// Counting both would double every takeover whenever the broker's
		// events share the stream (the in-process broker).
		cnt[cTakeovers]++
		col(sTakeovers, 1)
		c.note(e)
	case events.PublishSent:
		cnt[cSent]++
		col(sSent, 1)
	case events.PublishReceived:
		if e.Source == events.SourceKafka {
			// A record a Kafka watcher read: the Kafka leg's own figures,
			// not an MQTT delivery (its latency is device -> Kafka).
			cnt[cKafkaConsumed]++
			col(sKafkaConsumed, 1)
			if sec != nil {
				if sec.kafka == nil {
					sec.kafka = map[string]int64{}
				}
				sec.kafka[e.ClientID]++
			}
			c.kafkaWatchers[e.ClientID] = true
			c.latency(hKafka, sec, e.Latency)
			break
		}
		cnt[cReceived]++
		col(sReceived, 1)
		if !fromBroker {
			c.latency(hE2E, sec, e.Latency)
			if c.trackSeqs {
				c.sequence(e, sec)
			}
		}
	case events.PublishAcked:
		cnt[cAcked]++
		col(sAcked, 1)
		if !fromBroker {
			c.latency(hPublishAck, sec, e.Latency)
		}
	case events.Subscribed:
		cnt[cSubscribes]++
		if !fromBroker {
			c.latency(hSubscribe, sec, e.Latency)
		}
	case events.Ping:
		cnt[cPings]++
		if !fromBroker {
			c.latency(hPing, sec, e.Latency)
		}
	case events.Drop:
		c.fleet[cDropped]++
		if sec != nil {
			sec.cols[sDropped]++
		}
		c.note(e)
	case events.KeepaliveExpired:
		cnt[cKeepalive]++
		c.note(e)
	case events.WillPublished:
		cnt[cWills]++
		c.note(e)
	case events.Violation:
		cnt[cViolations]++
		c.note(e)
	case events.FaultInjected:
		c.fleet[cFaults]++
		c.faultOn(e)
	case events.FaultRemoved:
		c.faultOff(e)
	case events.LinkOpened:
		c.fleet[cLinksOpened]++
	case events.LinkClosed:
		c.fleet[cLinksClosed]++
	case events.KafkaProduced:
		cnt[cKafkaProduced]++
		col(sKafkaProduced, 1)
	case events.KafkaFailed:
		cnt[cKafkaFailed]++
		col(sKafkaFailed, 1)
		c.note(e)
	case events.KafkaRetry:
		cnt[cKafkaRetries]++
	}
}

// connKey identifies a device's connection for the connected gauge.
func connKey(e events.Event) string {
	if e.ClientID != "" {
		return e.ClientID
	}
	return e.Remote
}

func (c *Collector) note(e events.Event) {
	if len(c.notable) < MaxNotableEvents {
		c.notable = append(c.notable, e)
	}
}

func (c *Collector) latency(h int, sec *second, d time.Duration) {
	if d <= 0 {
		return
	}
	c.hists[h].Record(d)
	if sec != nil && h < nSecondHists {
		if sec.lat[h] == nil {
			sec.lat[h] = histogram.New()
		}
		sec.lat[h].Record(d)
		if sec.compact {
			sec.lat[h].Compact()
		}
	}
}

// compactOld compacts the latency histograms of seconds that fell
// compactLag seconds behind the newest. Amortised O(1) per event.
func (c *Collector) compactOld() {
	for ; c.compacted < len(c.secs)-compactLag; c.compacted++ {
		sec := c.secs[c.compacted]
		if sec == nil {
			continue
		}
		for _, h := range sec.lat {
			if h != nil {
				h.Compact()
			}
		}
		sec.compact = true
	}
}

// sequence counts gaps (lost) and repeats (dup) in the sequence numbers one
// receiver sees on one topic. It assumes one publisher per topic with
// increasing Seq, the simulator's convention; events without Seq are ignored.
func (c *Collector) sequence(e events.Event, sec *second) {
	if e.Seq == 0 {
		return
	}
	k := seqKey{e.ClientID, e.Topic}
	last, ok := c.seqs[k]
	switch {
	case !ok || e.Seq == last+1:
	case e.Seq <= last:
		c.fleet[cDup]++
		if sec != nil {
			sec.cols[sDup]++
		}
		return
	default:
		gap := int64(e.Seq - last - 1)
		c.fleet[cLost] += gap
		if sec != nil {
			sec.cols[sLost] += gap
		}
	}
	c.seqs[k] = e.Seq
}

// second returns the bucket of t's wall-clock second, growing the series
// at either end; nil when t is absurdly far from the rest.
func (c *Collector) second(t time.Time) *second {
	s := t.Unix()
	if c.secs == nil {
		c.base = s
	}
	i := s - c.base
	switch {
	case i < 0:
		if int64(len(c.secs))-i > maxSeriesSeconds {
			return nil
		}
		grown := make([]*second, int(-i), int(-i)+len(c.secs))
		c.secs = append(grown, c.secs...)
		c.base = s
		c.compacted += int(-i) // the same seconds, shifted
		i = 0
	case i >= int64(len(c.secs)):
		if i >= maxSeriesSeconds {
			return nil
		}
		for int64(len(c.secs)) <= i {
			c.secs = append(c.secs, nil)
		}
	}
	if c.secs[i] == nil {
		c.secs[i] = &second{}
	}
	return c.secs[i]
}

func faultKeyOf(e events.Event) faultKey {
	return faultKey{e.Link, e.Group, e.Direction, e.Fault}
}

func (c *Collector) faultOn(e events.Event) {
	target := e.Link
	if target == "" {
		target = e.Group
	}
	c.open[faultKeyOf(e)] = len(c.faults)
	c.faults = append(c.faults, FaultWindow{
		Start: e.Time, Target: target, Link: e.Link, Group: e.Group,
		Kind: e.Fault, Direction: e.Direction, Detail: e.Detail, Open: true,
	})
}

func (c *Collector) faultOff(e events.Event) {
	k := faultKeyOf(e)
	i, ok := c.open[k]
	if !ok {
		// Removal events may not repeat the fault name; match on the link alone.
		for ok2k, j := range c.open {
			if ok2k.link == e.Link && ok2k.group == e.Group {
				k, i, ok = ok2k, j, true
				break
			}
		}
	}
	if !ok {
		return
	}
	delete(c.open, k)
	c.faults[i].End = e.Time
	c.faults[i].Open = false
}
