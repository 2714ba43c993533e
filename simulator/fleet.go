package simulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/netem"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/simulator/payload"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// DefaultGrace is how long before a receiver's link ended a message must
// have been sent to still be expected (see the accounting rule in tracker.go).
const DefaultGrace = 500 * time.Millisecond

// maxPairs bounds the (publisher, receiver) routes computed up front; past
// it, loss is not computed (duplicates and reordering still are).
const maxPairs = 20_000_000

// Action is what a test hook asks the fleet to do with one message.
type Action int

// Hook actions.
const (
	Send   Action = iota // send normally
	Skip                 // use up the sequence number without sending: a loss
	Repeat               // send the same message twice: a duplicate
)

// Config is a fleet run.
type Config struct {
	// Profile is the validated fleet description.
	Profile *profile.Profile
	// Broker overrides Profile.Broker.
	Broker string
	// Driver defaults to Native{}.
	Driver Driver
	// Shard selects the devices this process runs; zero runs all.
	Shard Shard
	// Events receives every fleet event besides the internal Collector.
	Events events.Sink
	// AfterPublishing, when set, runs once publishing has stopped and the
	// drain has passed, before the devices disconnect and the results are
	// taken: an outside receiver (a Kafka watcher) finishes reading there,
	// its events still counted (Inject).
	AfterPublishing func(ctx context.Context)
	// TLS is used for tls and wss transports.
	TLS *tls.Config
	// Grace defaults to DefaultGrace.
	Grace time.Duration
	// Tamper, when set, decides per message whether to send, skip or repeat
	// it: a test hook to inject loss and duplication the accounting must find.
	Tamper func(device int, seq uint64) Action
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Netem is an in-process fault proxy (netem.NewProxy with Upstream set
	// to the broker, started). Groups with a netem: placement and no proxy
	// address dial through it, as netem group netem.group.
	Netem *netem.Proxy
	// StartAt is the run's time zero when in the future: shards started as
	// separate processes share it, so their ramp-ups interleave as one.
	StartAt time.Time
	// RunID names the run in its results (Run.ID), so the shard files of
	// one run merge and a shard given twice is refused. Empty: derived
	// from the profile name, the seed and StartAt, which every shard of one
	// run shares.
	RunID string
}

// groupRT is a group with its templates compiled.
type groupRT struct {
	g                   *profile.Group
	base                int // global index of the group's first device
	id, user, pass      *profile.Template
	topic               *profile.Template
	willTopic, willBody *profile.Template
	subs                []*profile.Template
	userProps           []*profile.Template // values of g.UserProperties
	responseTopic       *profile.Template
	autoReconnect       bool // the driver reconnects by itself
	persistent          bool
	pubQoS              byte
	// Topic Aliases the group's devices sent (topic_alias): PUBLISHes that
	// set one, and PUBLISHes that carried one with an empty topic.
	aliasesSet, aliasOnly atomic.Int64
}

// Fleet is a running or finished fleet. Create it with New, run it with Run.
type Fleet struct {
	cfg     Config
	p       *profile.Profile
	addr    string
	driver  Driver
	run     uint32
	lo, hi  int
	groups  []*groupRT
	devices []*device
	tr      *tracker
	col     *reports.Collector
	sink    events.Sink
	ids     idRegistry
	log     *slog.Logger
	Live    Live

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards closing and wg.Add
	closing bool
	wg      sync.WaitGroup

	pubMu      sync.RWMutex // held shared by a publish, exclusively to stop publishing
	publishing bool
	start      time.Time

	evMu   sync.RWMutex // guards evOpen and sending on evq
	evOpen bool
	evq    chan events.Event
	evDone chan struct{}

	connSem chan struct{}     // one slot per connect attempt in flight
	codes   [257]atomic.Int64 // connect outcomes by CONNACK code; [256]: no CONNACK at all
	// Publishing ends early when every local publisher has a message count
	// and has sent it all: finite runs then take no longer than they need.
	countedLeft      atomic.Int64
	allSent          chan struct{}
	lastFirstConnect atomic.Int64 // unix ns of the latest first connect of any device

	base, peak    footprint // at the start, and when publishing stopped
	peakConnected int64
}

// New prepares a fleet: compiles templates, derives device seeds, and
// computes which local publishers each receiver should hear.
func New(cfg Config) (*Fleet, error) {
	if cfg.Profile == nil {
		return nil, errors.New("simulator: no profile")
	}
	p := cfg.Profile
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	f := &Fleet{cfg: cfg, p: p, addr: cfg.Broker, driver: cfg.Driver, log: cfg.Logger}
	if f.addr == "" {
		f.addr = p.Broker
	}
	if f.addr == "" {
		return nil, errors.New("simulator: no broker address (profile broker: or --broker)")
	}
	if f.driver == nil {
		f.driver = Native{}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if cfg.Grace <= 0 {
		f.cfg.Grace = DefaultGrace
	}
	f.run = RunID(p.Seed, p.Name)
	total := p.Devices()
	f.lo, f.hi = cfg.Shard.Range(total)
	if err := f.compile(); err != nil {
		return nil, err
	}
	f.tr = &tracker{run: f.run, lo: f.lo, grace: f.cfg.Grace,
		pubs: make([]*pubState, f.hi-f.lo), recvs: make([]*recvState, f.hi-f.lo)}
	f.devices = make([]*device, 0, f.hi-f.lo)
	for i := f.lo; i < f.hi; i++ {
		f.devices = append(f.devices, f.newDevice(i))
	}
	f.route(total)
	runID := cfg.RunID
	if runID == "" {
		runID = fmt.Sprintf("%s-%08x", p.Name, f.run)
		if !cfg.StartAt.IsZero() {
			runID += fmt.Sprintf("-%d", cfg.StartAt.UnixMilli())
		}
	}
	f.col = reports.NewCollector(reports.KindSimulate, reports.Run{
		ID: runID, Name: p.Name, Target: f.addr, Seed: int64(p.Seed), Devices: f.hi - f.lo,
		Shard: reports.Shard{Index: cfg.Shard.norm().Index, Count: cfg.Shard.norm().Count},
	})
	// The Collector's own sequence check assumes one gap means one loss; the
	// tracker knows better, so it never sees sequence numbers.
	toCol := events.SinkFunc(func(e events.Event) { e.Seq = 0; f.col.Emit(e) })
	f.sink = events.Multi(toCol, cfg.Events)
	f.connSem = make(chan struct{}, p.MaxConnecting)
	f.allSent = make(chan struct{})
	counted := true
	n := 0
	for _, d := range f.devices {
		if d.pub != nil {
			n++
			counted = counted && d.g.g.Publish.Count > 0
		}
	}
	if counted && n > 0 {
		f.countedLeft.Store(int64(n))
	}
	f.evq = make(chan events.Event, 4096)
	f.evDone = make(chan struct{})
	return f, nil
}

func (f *Fleet) compile() error {
	base := 0
	for i := range f.p.Groups {
		g := &f.p.Groups[i]
		rt := &groupRT{g: g, base: base, persistent: !g.IsClean()}
		base += g.Count
		var err error
		c := func(field, text string) *profile.Template {
			t, e := profile.Compile(field, text)
			if e != nil && err == nil {
				err = fmt.Errorf("group %s: %s: %w", g.Name, field, e)
			}
			return t
		}
		rt.id, rt.user, rt.pass = c("client_id", g.ClientID), c("username", g.Username), c("password", g.Password)
		if g.Publish != nil {
			rt.topic = c("publish.topic", g.Publish.Topic)
			rt.pubQoS = byte(g.Publish.QoS)
		}
		if g.Will != nil {
			rt.willTopic, rt.willBody = c("will.topic", g.Will.Topic), c("will.payload", g.Will.Payload)
		}
		for _, s := range g.Subscriptions {
			rt.subs = append(rt.subs, c("subscriptions.filter", s.Filter))
		}
		for _, u := range g.UserProperties {
			rt.userProps = append(rt.userProps, c("user_properties.value", u.Value))
		}
		if g.ResponseTopic != "" {
			rt.responseTopic = c("response_topic", g.ResponseTopic)
		}
		rt.autoReconnect = f.driver.Name() == "paho" && g.Reconnect.Policy != profile.ReconnectNone
		if f.driver.Name() == "paho" && g.HasV5Knobs() {
			return fmt.Errorf("simulator: group %s sets MQTT 5 properties, which the paho driver (3.1 and 3.1.1 only) cannot send: use the native driver", g.Name)
		}
		if n := g.Netem; n != nil && n.Proxy == "" && f.cfg.Netem == nil {
			return fmt.Errorf("simulator: group %s is placed behind netem but neither netem.proxy nor an in-process proxy (Config.Netem) is given", g.Name)
		}
		if err != nil {
			return err
		}
		f.groups = append(f.groups, rt)
	}
	return nil
}

// vars returns the template variables of global device index i.
func (f *Fleet) vars(rt *groupRT, i int) profile.Vars {
	return profile.Vars{Index: i, N: i + 1, GroupIndex: i - rt.base, Group: rt.g.Name}
}

func (f *Fleet) groupOf(i int) *groupRT {
	for _, rt := range f.groups {
		if i < rt.base+rt.g.Count {
			return rt
		}
	}
	return nil
}

// route computes, for every local receiver, the local publishers whose
// topics its filters match. Identical filters are matched once.
func (f *Fleet) route(total int) {
	byTopic := map[string][]int32{}
	for _, d := range f.devices {
		if d.pub != nil {
			byTopic[d.topic] = append(byTopic[d.topic], int32(d.idx))
		}
	}
	cache := map[string][]int32{}
	pairs := 0
	for _, d := range f.devices {
		if d.recv == nil {
			continue
		}
		best := map[int32]byte{}
		for j, s := range d.g.g.Subscriptions {
			filter := d.subs[j]
			pubs, ok := cache[filter]
			if !ok {
				if !hasWildcard(filter) {
					pubs = byTopic[filter]
				} else {
					for topic, ps := range byTopic {
						if packet.MatchTopic(filter, topic) {
							pubs = append(pubs, ps...)
						}
					}
				}
				cache[filter] = pubs
			}
			for _, p := range pubs {
				if q, seen := best[p]; !seen || byte(s.QoS) > q {
					best[p] = byte(s.QoS)
				}
			}
		}
		pairs += len(best)
		if pairs > maxPairs {
			f.log.Warn("too many publisher-receiver routes to account loss; counting duplicates and reordering only", "routes", pairs)
			for _, d := range f.devices {
				if d.recv != nil {
					d.recv.matches = nil
				}
			}
			return
		}
		d.recv.matches = make([]match, 0, len(best))
		for p, q := range best {
			d.recv.matches = append(d.recv.matches, match{pub: p, qos: q})
		}
	}
}

func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '+' || s[i] == '#' {
			return true
		}
	}
	return false
}

// publisherDone counts a publisher that has sent its whole message count.
func (f *Fleet) publisherDone() {
	if f.countedLeft.Add(-1) == 0 {
		close(f.allSent)
	}
}

// enter registers a goroutine doing fleet work; false once the fleet closes.
func (f *Fleet) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.wg.Add(1)
	return true
}

// emit queues an event for the sinks. Events are handed to one goroutine
// so that the callers — client reader goroutines, thousands of them — keep
// shallow stacks (2 KiB instead of 8) and never wait on a sink's lock.
func (f *Fleet) emit(e events.Event) {
	e.Source = events.SourceSimulator
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	f.evMu.RLock()
	if f.evOpen {
		f.evq <- e
	}
	f.evMu.RUnlock()
}

// pump delivers queued events until the queue closes.
func (f *Fleet) pump() {
	defer close(f.evDone)
	for e := range f.evq {
		f.sink.Emit(e)
	}
}

// closeEvents stops accepting events and waits for the queue to drain.
func (f *Fleet) closeEvents() {
	f.evMu.Lock()
	if f.evOpen {
		f.evOpen = false
		close(f.evq)
	}
	f.evMu.Unlock()
	<-f.evDone
}

// Run brings the fleet up, runs it for the profile's duration or until ctx
// ends, stops publishing, drains, disconnects every device and returns the
// results. Cancelling ctx ends the run early but cleanly: results are still
// complete for the time run.
func (f *Fleet) Run(ctx context.Context) (*reports.Results, error) {
	f.ctx, f.cancel = context.WithCancel(context.Background())
	defer f.cancel()
	f.evOpen = true
	go f.pump()
	base := measure()
	f.start = time.Now()
	if f.cfg.StartAt.After(f.start) {
		f.start = f.cfg.StartAt
	}
	f.pubMu.Lock()
	f.publishing = true
	f.pubMu.Unlock()
	for _, d := range f.devices {
		d.scheduleStart()
	}
	var end <-chan time.Time
	if f.p.Duration > 0 {
		t := time.NewTimer(time.Until(f.start.Add(f.p.Duration)))
		defer t.Stop()
		end = t.C
	}
	status := reports.StatusCompleted
	select {
	case <-ctx.Done():
		// Without a duration the fleet runs until it is stopped: that is
		// its normal end. With one, stopping early leaves partial results.
		if f.p.Duration > 0 {
			status = reports.StatusInterrupted
		}
	case <-end:
	case <-f.allSent:
	}
	f.pubMu.Lock()
	f.publishing = false
	f.pubMu.Unlock()
	stopped := time.Now()
	f.peak = measure()
	f.peakConnected = f.Live.Connected.Load()
	f.base = base
	f.tr.finish()
	drain := time.NewTimer(f.p.Drain)
	<-drain.C
	if f.cfg.AfterPublishing != nil {
		f.cfg.AfterPublishing(ctx)
	}
	f.shutdown()
	f.closeEvents()
	res := f.results(stopped)
	res.Run.Status = status
	return res, nil
}

// shutdown stops every timer and disconnects every device, then waits for
// in-flight connect attempts.
func (f *Fleet) shutdown() {
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	f.cancel()
	const workers = 8
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(f.devices); i += workers {
				f.devices[i].stop()
			}
		}()
	}
	wg.Wait()
	f.wg.Wait()
}

// Results returns the results so far (counters, histograms, series) with
// the tracker's accounting; final after Run returns.
func (f *Fleet) results(stopped time.Time) *reports.Results {
	r := f.col.Results()
	r.Run.Start, r.Run.End = f.start, time.Now()
	t := f.tr.tally()
	r.Counters["lost"] = t.Lost
	r.Counters["duplicates"] = t.Dup
	r.Counters["out_of_order"] = t.OutOfOrder
	r.Counters["expected"] = t.Expected
	r.Counters["received_distinct"] = t.Distinct
	r.Counters["foreign"] = f.tr.foreign.Load()
	r.Counters["reconnects"] = f.Live.Reconnects.Load()
	r.Counters["devices"] = int64(len(f.devices))
	for _, g := range f.groups {
		if g.g.TopicAlias {
			r.Counters["topic_aliases_set"] += g.aliasesSet.Load()
			r.Counters["publishes_alias_only"] += g.aliasOnly.Load()
		}
	}
	for code := range f.codes {
		if n := f.codes[code].Load(); n > 0 {
			name := fmt.Sprintf("connack_%d", code)
			if code == 256 {
				name = "connack_none"
			}
			r.Counters[name] = n
		}
	}
	// Footprint when publishing stopped, beyond what the process held before
	// the fleet started: what the fleet costs.
	r.Counters["connected_at_stop"] = f.peakConnected
	r.Counters["mem_heap_bytes"] = f.peak.HeapLive - f.base.HeapLive
	r.Counters["mem_stack_bytes"] = f.peak.Stack - f.base.Stack
	r.Counters["mem_rss_bytes"] = f.peak.RSS - f.base.RSS
	r.Counters["goroutines_at_stop"] = int64(f.peak.Goroutines)
	r.Counters["cpu_user_ms"] = (f.peak.User - f.base.User).Milliseconds()
	r.Counters["cpu_sys_ms"] = (f.peak.Sys - f.base.Sys).Milliseconds()
	r.Counters["run_ms"] = stopped.Sub(f.start).Milliseconds()
	if t := f.lastFirstConnect.Load(); t != 0 {
		r.Counters["ramp_ms"] = time.Unix(0, t).Sub(f.start).Milliseconds()
	}
	if s := r.Series; s != nil && s.Len > 0 {
		// Loss is known only at the end: it goes to the second publishing stopped.
		i := int(stopped.Unix() - s.Start.Unix())
		i = max(0, min(i, s.Len-1))
		if col := s.Columns[reports.ColLost]; len(col) == s.Len {
			col[i] += t.Lost
		}
		if col := s.Columns[reports.ColDup]; len(col) == s.Len {
			col[i] += t.Dup
		}
	}
	return r
}

// Devices returns the number of devices this fleet (shard) runs.
func (f *Fleet) Devices() int { return len(f.devices) }

// Range returns the global device indexes [lo, hi) this fleet runs.
func (f *Fleet) Range() (int, int) { return f.lo, f.hi }

// newDevice builds device i's static state.
func (f *Fleet) newDevice(i int) *device {
	rt := f.groupOf(i)
	v := f.vars(rt, i)
	seed := DeviceSeed(f.p.Seed, i)
	d := &device{f: f, g: rt, idx: i, rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))}
	d.clientID = rt.id.Render(v)
	v.ClientID = d.clientID
	if !rt.g.IsClean() {
		d.sess = client.NewSession()
	}
	if rt.topic != nil {
		d.topic = rt.topic.Render(v)
		d.pub = &pubState{qos: rt.pubQoS}
		f.tr.pubs[i-f.lo] = d.pub
		d.body = payload.NewBody(rt.g.Publish.Payload, !rt.g.Publish.NoHeader, d.rng, v)
	}
	if len(rt.subs) > 0 {
		d.recv = &recvState{}
		f.tr.recvs[i-f.lo] = d.recv
		for _, t := range rt.subs {
			d.subs = append(d.subs, t.Render(v))
		}
	}
	if n := len(rt.g.SourceAddresses); n > 0 {
		d.local = net.ParseIP(rt.g.SourceAddresses[i%n])
	}
	return d
}

// idRegistry remembers, per client ID, the device that last started a
// connect attempt with it and when, to recognise takeovers: a device whose
// link ends after another device started connecting with its ID was
// (almost certainly) closed by the broker for that reason [MQTT-3.1.4-2].
type idRegistry struct {
	mu sync.Mutex
	m  map[string]idAttempt
}

type idAttempt struct {
	dev *device
	at  time.Time
}

func (r *idRegistry) attempt(id string, d *device, at time.Time) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]idAttempt{}
	}
	r.m[id] = idAttempt{d, at}
	r.mu.Unlock()
}

// takenOver reports whether another device started connecting with id
// since connectedAt.
func (r *idRegistry) takenOver(id string, d *device, connectedAt time.Time) (*device, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.m[id]
	if !ok || a.dev == d || a.at.Before(connectedAt) {
		return nil, false
	}
	return a.dev, true
}

// Live are counters read while the fleet runs (progress, Prometheus).
type Live struct {
	Connected, Connects, ConnectFailures, Disconnects, Reconnects, Takeovers atomic.Int64
	Sent, Received, Acked, Duplicates, OutOfOrder                            atomic.Int64
}

// v5Props renders a device's MQTT 5 CONNECT and PUBLISH properties from
// its group's knobs; either is nil when the group sets none of its knobs.
func (rt *groupRT) v5Props(v profile.Vars) (conn, pub *packet.Properties) {
	g := rt.g
	var user []packet.UserProperty
	for i, u := range g.UserProperties {
		user = append(user, packet.UserProperty{Key: u.Name, Value: rt.userProps[i].Render(v)})
	}
	if s, ok := g.SessionExpirySeconds(); ok || g.ReceiveMaximum > 0 || len(user) > 0 {
		conn = &packet.Properties{User: user}
		if ok {
			conn.SessionExpiry = &s
		}
		if g.ReceiveMaximum > 0 {
			rm := uint16(g.ReceiveMaximum)
			conn.ReceiveMaximum = &rm
		}
	}
	if g.MessageExpiry > 0 || g.ContentType != "" || rt.responseTopic != nil || len(user) > 0 {
		pub = &packet.Properties{User: user, ContentType: g.ContentType, HasContentType: g.ContentType != ""}
		if g.MessageExpiry > 0 {
			e := uint32(g.MessageExpiry / time.Second)
			pub.MessageExpiry = &e
		}
		if rt.responseTopic != nil {
			pub.ResponseTopic, pub.HasResponseTopic = rt.responseTopic.Render(v), true
		}
	}
	return conn, pub
}

// PayloadRun is the run number every device writes in its payload header
// (payload.Header.Run): an outside receiver keeps only this run's messages.
func (f *Fleet) PayloadRun() uint32 { return f.run }

// Inject adds an event an outside receiver observed (a Kafka watcher's
// record) to the run's stream: the results' counters, series and events
// file. Only while Run runs (AfterPublishing included); later ones are
// dropped.
func (f *Fleet) Inject(e events.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	f.evMu.RLock()
	if f.evOpen {
		f.evq <- e // its own Source kept (emit stamps the fleet's)
	}
	f.evMu.RUnlock()
}

// Published returns, per device index of this fleet (or shard), the
// messages it has published so far: the last sequence number it assigned.
func (f *Fleet) Published() map[int]uint64 {
	out := make(map[int]uint64, len(f.devices))
	for _, d := range f.devices {
		d.mu.Lock()
		if d.pub != nil {
			out[d.idx] = d.pub.current()
		}
		d.mu.Unlock()
	}
	return out
}
