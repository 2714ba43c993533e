package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/netem"
	"github.com/mqttfleet/mqttfleet/netem/kernel"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/simulator"
	"github.com/mqttfleet/mqttfleet/targets"
)

// Options change how a scenario runs.
type Options struct {
	// Target is the broker to run against instead of the file's target. A
	// target already started by the caller (its Addr answers) is left
	// running; otherwise Run starts and stops it.
	Target targets.Target
	// Events also receives every event (a JSON-lines file, say).
	Events events.Sink
	// Progress receives a live status line every ProgressEvery (default 1s).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// Command is recorded in the results.
	Command []string
	// Strict makes a miss that a known deviation of the target explains a
	// failure instead of a deviation.
	Strict bool
	// Deviations names the table of targets.Deviations that applies to a
	// target reached by address (a Mosquitto 2.0.11 the user runs, say);
	// a container or in-process target uses its own.
	Deviations string
}

// runner is one run of one scenario.
type runner struct {
	sc   *Scenario
	opts Options
	log  *slog.Logger

	target targets.Target
	// extra are the brokers of brokers: by name, and bridgeProxies the
	// fault proxies of proxied bridges by "<bridge>/<remote>" (bridges.go).
	extra         map[string]*extraBroker
	bridgeProxies map[string]*netem.Proxy
	brokerURL     string // tcp://host:port
	brokerAddr    string // host:port
	proxy         *netem.Proxy
	runID         uint32

	rec  *events.Recorder
	col  *reports.Collector
	sink events.Sink

	groups  map[string]*groupRun
	clients map[string]*clientRun

	ctx    context.Context // ends when the run is torn down
	cancel context.CancelFunc

	mu        sync.Mutex
	t0        time.Time
	stepAt    map[string]time.Time     // when each step's action began (wait: when satisfied)
	step      string                   // the step running now, for progress
	since     int                      // recorder index when the running step began
	faults    map[string][]string      // proxy fault IDs by the group or client they were applied to
	listeners map[string]string        // proxy group listeners for paho groups
	drops     map[string]*kernel.Drops // kernel DROP rules by the group or client they cover
	ownTarget bool                     // Run started the target, so Run stops it
	// timelineEnd is when the last step finished: messages sent after it
	// fall in the drain, and the run's totals do not expect them.
	timelineEnd time.Time
	timers      sync.WaitGroup // fault restores scheduled by for:
	kafka       *kafkaRun      // the Kafka leg, when the scenario has one (kafka.go)
}

// Run runs the scenario and returns its results: every assertion's verdict
// with the events that decided it, plus the counters, histograms and series
// of the whole run. An error means the run could not happen (the target did
// not start); failed assertions are verdicts in the results, not errors.
func Run(ctx context.Context, sc *Scenario, opts Options) (*reports.Results, error) {
	r := &runner{sc: sc, opts: opts, log: opts.Logger, rec: events.NewRecorder(),
		groups: map[string]*groupRun{}, clients: map[string]*clientRun{},
		stepAt: map[string]time.Time{}, faults: map[string][]string{}, listeners: map[string]string{},
		drops: map[string]*kernel.Drops{}}
	if r.log == nil {
		r.log = silence
	}
	r.runID = simulator.RunID(sc.Seed, sc.Name)
	t, err := r.pickTarget()
	if err != nil {
		return nil, err
	}
	r.target = t
	r.col = reports.NewCollector(reports.KindScenario, reports.Run{ID: runIdentity(sc, time.Now()), Name: sc.Name, Target: t.Name(),
		Seed: int64(sc.Seed), Shard: reports.Shard{Index: 0, Count: 1}, Command: opts.Command, Host: hostname()})
	r.sink = events.Multi(r.rec, newCollectorFeed(r.col), opts.Events)

	if missing := r.missingCapabilities(); len(missing) > 0 {
		return r.skipped(fmt.Sprintf("target %s lacks %s", t.Name(), strings.Join(missing, ", "))), nil
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	defer r.cancel()
	started := time.Now()
	defer r.stopTopology()
	if err := r.startTopology(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", reports.ErrTargetUnavailable, err)
	}
	if err := r.startTarget(ctx); err != nil {
		if errors.Is(err, targets.ErrUnavailable) {
			// Nothing was judged: every assertion is skipped with the reason,
			// and the status makes the run exit 3, never green.
			res := r.skipped(err.Error())
			res.Run.Status = reports.StatusTargetUnavailable
			res.Run.StatusReason = err.Error()
			return res, nil
		}
		return nil, fmt.Errorf("%w: %w", reports.ErrTargetUnavailable, err)
	}
	stopTarget := r.stopTargetFunc()
	defer stopTarget()
	if err := r.setUp(ctx); err != nil {
		r.tearDown()
		return nil, err
	}
	stepErr := r.timeline(ctx)
	r.timelineEnd = time.Now()
	r.drain(ctx)
	r.settleKafka(ctx)
	r.tearDown()
	ended := time.Now()
	stopTarget()
	res := r.results(started, ended, stepErr, ctx.Err() != nil)
	return res, nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// pickTarget returns the target of the options or of the file.
func (r *runner) pickTarget() (targets.Target, error) {
	if r.opts.Target != nil {
		if ip, ok := r.opts.Target.(*targets.InProcess); ok && ip.Events == nil {
			ip.Events = events.SinkFunc(func(e events.Event) { r.sink.Emit(e) })
		}
		return r.opts.Target, nil
	}
	name := r.sc.Target.Kind
	if name == "address" {
		name = r.sc.Target.Address
	}
	t, err := targets.ByName(name)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", r.sc.Name, err)
	}
	if ip, ok := t.(*targets.InProcess); ok {
		// The reference broker's own events (why it closed a link) enrich
		// the report; assertions should rest on what clients observe.
		ip.Events = events.SinkFunc(func(e events.Event) { r.sink.Emit(e) })
	}
	return t, nil
}

// targetKind is the name per_target overrides use for the running target.
func (r *runner) targetKind() string {
	switch n := r.target.Name(); n {
	case "inprocess", "process", "mosquitto", "emqx":
		return n
	}
	return "address"
}

// deviationTable is the targets.Deviations table of the run's target.
func (r *runner) deviationTable() string {
	if k := r.targetKind(); k != "address" {
		return k
	}
	return r.opts.Deviations
}

func (r *runner) missingCapabilities() []string {
	caps := r.target.Capabilities()
	var missing []string
	for _, c := range r.sc.Requires {
		if !caps.Has(c) {
			missing = append(missing, c)
		}
	}
	missing = append(missing, r.missingDurability(caps)...)
	for _, s := range r.sc.Steps {
		if (s.Do == DoRestart || s.Do == DoStopB || s.Do == DoStartB) && s.onTarget() && !caps.Has("restart") {
			missing = append(missing, "restart (step "+s.Name+")")
			break
		}
	}
	if len(r.sc.Bridges) > 0 && !caps.Has("bridges") {
		missing = append(missing, "bridges (the scenario's target runs its bridges)")
	}
	for _, s := range r.sc.Steps {
		if s.Do == DoDropPackets {
			if err := kernelAvailable(); err != nil {
				missing = append(missing, fmt.Sprintf("the kernel backend for step %s: %v", s.Name, err))
			}
			break
		}
	}
	return missing
}

// startTarget starts the target unless the caller already did.
func (r *runner) startTarget(ctx context.Context) error {
	if u, ok := r.target.Addr("tcp"); ok {
		// A broker the user runs: make sure it answers before any verdict
		// is drawn from its silence.
		if err := targets.Check(ctx, r.target); err != nil {
			return err
		}
		return r.setAddr(u)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r.prepareTarget()
	if err := r.target.Start(sctx); err != nil {
		return fmt.Errorf("start target %s: %w", r.target.Name(), err)
	}
	r.ownTarget = true
	u, ok := r.target.Addr("tcp")
	if !ok {
		return fmt.Errorf("target %s has no tcp listener", r.target.Name())
	}
	return r.setAddr(u)
}

func (r *runner) setAddr(u string) error {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return fmt.Errorf("target %s: bad address %q", r.target.Name(), u)
	}
	r.brokerURL, r.brokerAddr = "tcp://"+pu.Host, pu.Host
	return nil
}

// stopTargetFunc returns a function stopping the target once, when Run started it.
func (r *runner) stopTargetFunc() func() {
	if !r.ownTarget {
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := r.target.Stop(ctx); err != nil {
				r.log.Warn("stop target", "err", err)
			}
			if c, ok := r.target.(io.Closer); ok {
				// A process target removes its temporary store.
				if err := c.Close(); err != nil {
					r.log.Warn("close target", "err", err)
				}
			}
		})
	}
}

// setUp starts the proxy and makes the group and client runtimes.
func (r *runner) setUp(ctx context.Context) error {
	needProxy := false
	for i := range r.sc.Groups {
		needProxy = needProxy || r.sc.Groups[i].Proxy
	}
	for i := range r.sc.Clients {
		needProxy = needProxy || r.sc.Clients[i].Proxy
	}
	if needProxy {
		r.proxy = netem.NewProxy(netem.ProxyConfig{Listen: "127.0.0.1:0", Upstream: r.brokerAddr,
			Events: events.SinkFunc(func(e events.Event) { r.sink.Emit(e) }), Seed: int64(r.sc.Seed), Logger: r.log})
		if err := r.proxy.Start(); err != nil {
			return fmt.Errorf("start fault proxy: %w", err)
		}
	}
	base := 0
	for i := range r.sc.Groups {
		g := &r.sc.Groups[i]
		gr := &groupRun{g: g, base: base}
		for _, s := range r.sc.Steps {
			if s.Group == g.Name && len(s.Devices) > 0 {
				gr.perDevice = true
			}
		}
		r.groups[g.Name] = gr
		base += g.Count
	}
	for i := range r.sc.Clients {
		r.clients[r.sc.Clients[i].Name] = &clientRun{cfg: &r.sc.Clients[i], r: r}
	}
	return r.startKafka(ctx)
}

// groupListener returns (opening on first use) the proxy listener of a
// paho group: paho dials an address, so its links join the group there.
func (r *runner) groupListener(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.listeners[name]; ok {
		return a, nil
	}
	a, err := r.proxy.ListenGroup(name)
	if err != nil {
		return "", fmt.Errorf("group %s: %w", name, err)
	}
	r.listeners[name] = a
	return a, nil
}

// drain gives late events (wills, expiries) time to arrive after the last step.
func (r *runner) drain(ctx context.Context) {
	t := time.NewTimer(r.sc.Drain)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// tearDown takes every group down, closes clients and the proxy, and waits
// for every goroutine the run started.
func (r *runner) tearDown() {
	r.cancel()
	r.timers.Wait()
	r.undrop("")
	var wg sync.WaitGroup
	for _, gr := range r.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gr.down()
		}()
	}
	wg.Wait()
	for _, cr := range r.clients {
		cr.close()
	}
	r.stopKafka()
	if r.proxy != nil {
		if err := r.proxy.Close(); err != nil {
			r.log.Warn("close proxy", "err", err)
		}
	}
}

// skipped returns results with every assertion skipped for reason.
func (r *runner) skipped(reason string) *reports.Results {
	res := r.col.Results()
	res.Run.Start, res.Run.End = time.Now(), time.Now()
	res.Run.Status = reports.StatusCompleted
	for _, a := range r.sc.Assertions {
		res.AddAssertion(reports.Assertion{Name: a.Name, Verdict: reports.Skipped, Message: reason, Statements: a.Statements})
	}
	return res
}

// mark records a step's moment and tells the event stream.
func (r *runner) mark(name, detail string, at time.Time) {
	r.mu.Lock()
	r.stepAt[name] = at
	r.step = name
	r.mu.Unlock()
	r.sink.Emit(events.Event{Time: at, Kind: events.Log, Source: events.SourceScenario, Detail: "step " + name + ": " + detail})
}

// connectedDevices sums the connected devices of every group.
func (r *runner) connectedDevices() (n int64, total int) {
	for _, gr := range r.groups {
		n += gr.connected()
		total += gr.g.Count
	}
	return n, total
}

// progress writes a status line every interval until done closes.
func (r *runner) progress(done <-chan struct{}) {
	if r.opts.Progress == nil {
		return
	}
	every := r.opts.ProgressEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			r.mu.Lock()
			step, t0 := r.step, r.t0
			r.mu.Unlock()
			conn, total := r.connectedDevices()
			// The same Collector counters the results file holds. Loss is
			// not shown live: the delivery ledger settles it after the drain.
			c := r.col.Totals()
			fmt.Fprintf(r.opts.Progress, "%6.1fs  step %-24s connected %d/%d  sent %d  recv %d  disc %d  takeovers %d  events %d\n",
				now.Sub(t0).Seconds(), step, conn, total, c["publishes_sent"], c["publishes_received"],
				c["disconnects"], c["takeovers"], r.rec.Len())
		}
	}
}

// runIdentity names one run of a scenario: its name, its run ID (seed and
// name) and when it started, so two runs of one file never share an ID.
func runIdentity(sc *Scenario, at time.Time) string {
	return fmt.Sprintf("%s-%08x-%d", sc.Name, simulator.RunID(sc.Seed, sc.Name), at.UnixMilli())
}
