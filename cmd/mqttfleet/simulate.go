package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/simulator"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

func init() {
	register("simulate [profile.yaml]", "bring up a fleet of simulated devices against a broker and measure it",
		"Brings up a fleet from a profile (or from the flags, as one group), runs it for --duration and judges it:\n"+
			"--min-connected, --max-loss, --max-dup. Exit status: 0 every verdict passed, 1 one failed (or the run was\n"+
			"interrupted), 2 bad flags or profile, 3 the broker never answered.", simulateCmd)
}

// simulateFlags are the flags of `mqttfleet simulate`.
type simulateFlags struct {
	profile, broker, driver, shard, results, metrics, events, startAt, runID string
	prog                                                                     progress
	fs                                                                       *pflag.FlagSet
	procs, devices, qos, maxConnecting, shards                               int
	duration, interval, keepalive                                            time.Duration
	rate                                                                     float64
	seed                                                                     uint64
	echo                                                                     bool
	minConnected, maxLoss, maxDup                                            string
	limits                                                                   simulator.Limits
	kafka                                                                    kafkaWatchFlags
}

func simulateCmd(fs *pflag.FlagSet) runFunc {
	o := &simulateFlags{fs: fs}
	fs.StringVar(&o.profile, "profile", "", "YAML fleet profile (see docs/simulator.md); without it the flags below describe one group")
	fs.StringVar(&o.broker, "broker", "", "broker address: host:port or tcp://, ws://, tls://, wss:// URL (overrides the profile's)")
	fs.StringVar(&o.driver, "driver", "native", "client library: native (lean, for scale) or paho (paho.mqtt.golang)")
	fs.StringVar(&o.shard, "shard", "", "run only shard i/N of the fleet (contiguous device indexes)")
	fs.IntVar(&o.shards, "shards", 0, "the fleet's shard count when this process is one pod of a Kubernetes Indexed Job: its index comes from $JOB_COMPLETION_INDEX (instead of --shard i/N)")
	fs.IntVar(&o.procs, "procs", 1, "run the fleet as this many local shard processes and merge their results")
	fs.StringVar(&o.results, "results", "simulate-results.json", "write the results file here ({index} is replaced by the shard index)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus /metrics on this host:port while running")
	o.prog = progressFlags(fs)
	o.kafka.define(fs)
	fs.StringVar(&o.runID, "run-id", "", "the run's ID in its results, shared by its shards (default: from profile name, seed and --start-at)")
	fs.StringVar(&o.events, "events", "", "write every fleet event as JSON lines to this file")
	fs.StringVar(&o.startAt, "start-at", "", "run start as Unix milliseconds (set by --procs so shards ramp up as one)")
	fs.IntVar(&o.maxConnecting, "max-connecting", 0, "connect attempts in flight at once (overrides the profile; default 96)")
	fs.IntVar(&o.devices, "devices", 100, "device count (overrides the first group's count of a profile)")
	fs.DurationVar(&o.duration, "duration", 0, "how long devices publish (overrides the profile; 0 = until Ctrl-C)")
	fs.Uint64Var(&o.seed, "seed", 0, "run seed (overrides the profile's)")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "without a profile: publish interval per device")
	fs.IntVar(&o.qos, "qos", 1, "without a profile: QoS of publishes and subscriptions")
	fs.DurationVar(&o.keepalive, "keepalive", 30*time.Second, "without a profile: keepalive")
	fs.Float64Var(&o.rate, "rate", 1000, "without a profile: ramp-up rate, devices per second")
	fs.BoolVar(&o.echo, "echo", true, "without a profile: each device subscribes to its own topic (end-to-end latency, loss)")
	fs.StringVar(&o.minConnected, "min-connected", "100%", "verdict: devices that must connect at least once, a count or a share (95%)")
	fs.StringVar(&o.maxLoss, "max-loss", "", "verdict: expected deliveries that may be lost, a count or a share (default 0 when --qos or any profile publish is QoS 1 or 2; unchecked for QoS 0)")
	fs.StringVar(&o.maxDup, "max-dup", "", "verdict: duplicate deliveries allowed, a count or a share (default 0 for QoS 2; else unchecked)")
	return func(ctx context.Context, args []string) error { return runSimulate(ctx, o, args) }
}

func runSimulate(ctx context.Context, o *simulateFlags, args []string) error {
	fs := o.fs
	if len(args) > 1 || (len(args) == 1 && o.profile != "") {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
	}
	if len(args) == 1 {
		o.profile = args[0]
	}
	if err := o.prog.check(); err != nil {
		return err
	}
	if err := o.shardFromJob(); err != nil {
		return err
	}
	p, err := o.buildProfile(fs)
	if err != nil {
		return err
	}
	if err := o.parseLimits(p); err != nil {
		return err
	}
	if o.procs > 1 {
		if o.shard != "" {
			return fmt.Errorf("%w: --procs and --shard exclude each other", errUsage)
		}
		if o.kafka.spec != "" {
			// Each shard would read the whole topic; one watcher for the
			// fleet needs the merged run (not built yet).
			return fmt.Errorf("%w: --kafka-watch runs with one process: drop --procs", errUsage)
		}
		return runProcs(ctx, o)
	}
	return runOneFleet(ctx, o, p)
}

// buildProfile loads the profile or builds one from flags, then applies overrides.
func (o *simulateFlags) buildProfile(fs *pflag.FlagSet) (*profile.Profile, error) {
	var p *profile.Profile
	if o.profile != "" {
		var err error
		if p, err = profile.Load(o.profile); err != nil {
			return nil, err // names the field and line
		}
	} else {
		n := o.devices
		ka := o.keepalive
		g := profile.Group{
			Name: "devices", Count: n, ClientID: "dev-{{.Index}}", KeepAlive: &ka,
			Publish: &profile.Publish{Interval: o.interval, QoS: o.qos, Topic: "fleet/{{.Index}}",
				Payload: profile.Payload{Kind: profile.PayloadRandomWalk, Start: 20, Step: 0.5, Min: -20, Max: 60}},
			Lifecycle: profile.Lifecycle{Rate: o.rate},
		}
		if o.echo {
			g.Subscriptions = []profile.Subscription{{Filter: "fleet/{{.Index}}", QoS: o.qos}}
		}
		p = &profile.Profile{Name: "simulate", Broker: "127.0.0.1:1883", Groups: []profile.Group{g}}
	}
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	for _, c := range []struct {
		name string
		bad  bool
		want string
	}{
		{"devices", o.devices <= 0, "at least 1 device"},
		{"qos", o.qos < 0 || o.qos > 2, "0, 1 or 2"},
		{"interval", o.interval <= 0, "a positive duration"},
		{"keepalive", o.keepalive < 0 || o.keepalive > 65535*time.Second, "0 to 18h12m15s"},
		{"rate", o.rate <= 0, "a positive number of devices per second"},
		{"duration", o.duration < 0, "0 (until Ctrl-C) or a positive duration"},
		{"max-connecting", o.maxConnecting < 0, "0 (default) or a positive count"},
		{"procs", o.procs < 1, "at least 1"},
	} {
		if c.bad && (set[c.name] || o.profile == "") {
			f := fs.Lookup(c.name)
			return nil, fmt.Errorf("%w: --%s %s: want %s", errUsage, c.name, f.Value, c.want)
		}
	}
	if set["devices"] && o.profile != "" {
		p.Groups[0].Count = o.devices
	}
	if set["duration"] {
		p.Duration = o.duration
	}
	if set["seed"] {
		p.Seed = o.seed
	}
	if set["max-connecting"] {
		p.MaxConnecting = o.maxConnecting
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func (o *simulateFlags) driverOf() (simulator.Driver, error) {
	switch o.driver {
	case "native":
		return simulator.Native{}, nil
	case "paho":
		return simulator.Paho{}, nil
	}
	return nil, fmt.Errorf("%w: --driver must be native or paho, not %q", errUsage, o.driver)
}

// runOneFleet runs the fleet (or one shard of it) in this process.
func runOneFleet(ctx context.Context, o *simulateFlags, p *profile.Profile) error {
	drv, err := o.driverOf()
	if err != nil {
		return err
	}
	cfg := simulator.Config{Profile: p, Broker: o.broker, Driver: drv, RunID: o.runID}
	if o.shard != "" {
		if cfg.Shard, err = simulator.ParseShard(o.shard); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if o.startAt != "" {
		ms, err := strconv.ParseInt(o.startAt, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: --start-at %q: want Unix milliseconds", errUsage, o.startAt)
		}
		cfg.StartAt = time.UnixMilli(ms)
	}
	if o.events != "" {
		f, err := os.Create(o.events)
		if err != nil {
			return fmt.Errorf("open events file: %w", err)
		}
		jl := events.NewJSONLines(f)
		defer jl.Close()
		cfg.Events = jl
	}
	var kw *kafkaWatch
	if o.kafka.spec != "" {
		if kw, err = newKafkaWatch(&o.kafka, &cfg); err != nil {
			return err
		}
	}
	fleet, err := simulator.New(cfg)
	if err != nil {
		return err
	}
	if kw != nil {
		if err := kw.start(fleet); err != nil {
			return err
		}
		defer kw.stop()
	}
	// Every device holds one socket: refuse up front, naming the numbers,
	// rather than failing at device 19,937.
	if err := simulator.CheckOpenFiles(fleet.Devices()); err != nil {
		return err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	if o.metrics != "" {
		ln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return fmt.Errorf("listen for metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", fleet.MetricsHandler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		wg.Add(2)
		go func() { defer wg.Done(); _ = srv.Serve(ln) }()
		go func() { defer wg.Done(); <-done; _ = srv.Close() }()
	}
	if every := o.prog.interval(); every > 0 {
		prefix := ""
		if o.shard != "" {
			prefix = "[shard " + o.shard + "] "
		}
		tty := o.prog.resolved() == "tty"
		wg.Add(1)
		go func() { defer wg.Done(); fleet.Progress(done, os.Stderr, every, tty, prefix) }()
	}
	lo, hi := fleet.Range()
	slog.Info("simulate", "devices", hi-lo, "range", fmt.Sprintf("[%d,%d)", lo, hi), "driver", drv.Name(),
		"duration", p.Duration, "broker", firstNonEmpty(o.broker, p.Broker))
	res, err := fleet.Run(ctx)
	if err != nil {
		return err
	}
	res.Run.Command = os.Args
	res.Run.Host, _ = os.Hostname()
	judge(res, o.limits)
	if kw != nil && res.Run.Status != reports.StatusTargetUnavailable {
		kw.judge(res)
	}
	if err := res.Write(o.results); err != nil {
		return err
	}
	printSummary(os.Stderr, res)
	return outcome(res)
}

// judge sets the run's status and verdicts: a broker that never answered
// makes the run target_unavailable (exit 3) with nothing judged; otherwise
// the --min-connected, --max-loss and --max-dup verdicts are added.
func judge(res *reports.Results, lim simulator.Limits) {
	if down, why := simulator.Unreachable(res); down {
		res.Run.Status, res.Run.StatusReason = reports.StatusTargetUnavailable, why
		return
	}
	for _, a := range simulator.Verdicts(res, lim) {
		res.AddAssertion(a)
	}
}

// outcome turns a written results file into the command's error, so the
// exit code follows the contract: 3 unreachable, 1 failed or interrupted.
func outcome(res *reports.Results) error {
	switch reports.ExitCode(res, nil) {
	case reports.ExitTargetUnavailable:
		return fmt.Errorf("%s: %w", res.Run.StatusReason, reports.ErrTargetUnavailable)
	case reports.ExitPass:
		return nil
	}
	if res.Run.Status == reports.StatusInterrupted {
		return errors.New("interrupted: the results written are partial")
	}
	n := 0
	for _, a := range res.Assertions {
		if a.Verdict == reports.Fail || a.Verdict == reports.Error {
			n++
		}
	}
	return fmt.Errorf("%d of %d verdicts failed", n, len(res.Assertions))
}

// parseLimits reads the verdict flags; the loss and duplicate bounds
// default from the QoS the fleet publishes with.
func (o *simulateFlags) parseLimits(p *profile.Profile) error {
	var err error
	if o.limits.MinConnected, err = simulator.ParseThreshold(o.minConnected); err != nil {
		return fmt.Errorf("%w: --min-connected %v", errUsage, err)
	}
	maxQoS := 0
	for _, g := range p.Groups {
		if g.Publish != nil {
			maxQoS = max(maxQoS, g.Publish.QoS)
		}
	}
	for _, f := range []struct {
		name, val string
		dst       *simulator.Threshold
		minQoS    int // the QoS from which the bound defaults to 0
	}{{"max-loss", o.maxLoss, &o.limits.MaxLoss, 1}, {"max-dup", o.maxDup, &o.limits.MaxDup, 2}} {
		switch {
		case f.val != "":
			if *f.dst, err = simulator.ParseThreshold(f.val); err != nil {
				return fmt.Errorf("%w: --%s %v", errUsage, f.name, err)
			}
		case maxQoS >= f.minQoS && hasSubscriptions(p):
			*f.dst = simulator.Threshold{Set: true}
		}
	}
	return nil
}

// hasSubscriptions says whether any device subscribes: without receivers no
// delivery is expected, so loss has no default bound.
func hasSubscriptions(p *profile.Profile) bool {
	for _, g := range p.Groups {
		if len(g.Subscriptions) > 0 {
			return true
		}
	}
	return false
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// runProcs starts n copies of this command, each with --shard i/n, a shared
// --start-at and its own results file, then merges their results. Ctrl-C is
// passed on as SIGINT so every shard still writes its results.
func runProcs(ctx context.Context, o *simulateFlags) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(o.results), ".shards-*")
	if err != nil {
		return fmt.Errorf("make shard results directory: %w", err)
	}
	defer os.RemoveAll(dir)
	start := time.Now().Add(time.Second).UnixMilli()
	n := o.procs
	errs := make([]error, n)
	paths := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		paths[i] = filepath.Join(dir, fmt.Sprintf("shard-%d.json", i))
		child := []string{"simulate", "--procs=1", "--shard", fmt.Sprintf("%d/%d", i, n), "--results", paths[i],
			"--start-at", strconv.FormatInt(start, 10)}
		// Several shards redrawing one terminal line would garble it.
		progress := *o.prog.mode
		if progress == "auto" || progress == "tty" {
			progress = "plain"
		}
		child = append(child, "--progress", progress)
		if o.metrics != "" {
			host, port, _ := net.SplitHostPort(o.metrics)
			pn, _ := strconv.Atoi(port)
			child = append(child, "--metrics", net.JoinHostPort(host, strconv.Itoa(pn+i)))
		}
		child = append(child, shardFlags(o.fs)...)
		if o.profile != "" {
			child = append(child, "--profile", o.profile)
		}
		cmd := exec.CommandContext(ctx, self, child...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
		cmd.WaitDelay = 30 * time.Second
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start shard %d: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cmd.Wait(); err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("shard %d/%d: %w", i, n, err)
			}
		}()
	}
	wg.Wait()
	var parts []*reports.Results
	for i, p := range paths {
		r, err := reports.Read(p)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("shard %d/%d wrote no results: %w", i, n, err))...)
		}
		parts = append(parts, r)
	}
	merged, err := reports.Merge(parts...)
	if err != nil {
		return fmt.Errorf("merge shard results: %w", err)
	}
	if down, why := simulator.Unreachable(merged); down {
		merged.Run.Status, merged.Run.StatusReason = reports.StatusTargetUnavailable, why
	}
	if err := merged.Write(o.results); err != nil {
		return err
	}
	printSummary(os.Stderr, merged)
	if err := outcome(merged); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// shardFlags passes the flags the user set on to a shard process, except
// those the parent sets per shard.
func shardFlags(fs *pflag.FlagSet) []string {
	skip := map[string]bool{"procs": true, "shard": true, "shards": true, "results": true, "start-at": true, "progress": true,
		"metrics": true, "profile": true}
	var out []string
	fs.Visit(func(f *pflag.Flag) {
		if !skip[f.Name] {
			out = append(out, "--"+f.Name+"="+f.Value.String())
		}
	})
	return out
}

// printSummary writes the headline figures of a results file.
func printSummary(w io.Writer, r *reports.Results) {
	c := r.Counters
	if r.Run.Status != "" && r.Run.Status != reports.StatusCompleted {
		fmt.Fprintf(w, "run %s: %s\n", r.Run.Status, r.Run.StatusReason)
	}
	for _, a := range r.Assertions {
		mark := map[reports.Verdict]string{reports.Pass: "PASS", reports.Fail: "FAIL", reports.Error: "ERROR", reports.Skipped: "SKIP"}[a.Verdict]
		fmt.Fprintf(w, "%-5s %s: %s\n", mark, a.Name, a.Message)
	}
	fmt.Fprintf(w, "devices %d  connects %d  failed %d  reconnects %d  takeovers %d\n",
		c["devices"], c["connects"], c["connect_failures"], c["reconnects"], c["takeovers"])
	if ms := c["ramp_ms"]; ms > 0 {
		fmt.Fprintf(w, "all first connects done %d ms after start: %.0f connects/s\n", ms, float64(c["connects"]-c["reconnects"])/(float64(ms)/1000))
	}
	fmt.Fprintf(w, "sent %d  received %d  acked %d  expected %d  lost %d  duplicated %d  out of order %d\n",
		c["publishes_sent"], c["publishes_received"], c["publishes_acked"], c["expected"], c["lost"], c["duplicates"], c["out_of_order"])
	for _, name := range []string{"connect_latency", "subscribe_latency", "publish_ack_latency", "e2e_latency"} {
		h := r.Histograms[name]
		if h == nil || h.Count() == 0 {
			continue
		}
		fmt.Fprintf(w, "%-20s n=%-8d p50 %-10s p90 %-10s p99 %-10s p99.9 %-10s max %s\n", name, h.Count(),
			h.Percentile(50), h.Percentile(90), h.Percentile(99), h.Percentile(99.9), h.Max())
	}
	if len(r.Disconnects) > 0 {
		fmt.Fprintf(w, "disconnects by cause: %v\n", r.Disconnects)
	}
	if n := c["connected_at_stop"]; n > 0 {
		fmt.Fprintf(w, "memory per connected device: heap %d B + stacks %d B = %d B (RSS %d B)  goroutines %d\n",
			c["mem_heap_bytes"]/n, c["mem_stack_bytes"]/n, (c["mem_heap_bytes"]+c["mem_stack_bytes"])/n, c["mem_rss_bytes"]/n, c["goroutines_at_stop"])
	}
	if secs := float64(c["run_ms"]) / 1000; secs > 0 {
		rate := float64(c["publishes_sent"]+c["publishes_received"]) / secs
		cpu := float64(c["cpu_user_ms"]+c["cpu_sys_ms"]) / 1000 / secs
		fmt.Fprintf(w, "CPU %.1f%% of one core over %.0f s (%d ms user+sys)", cpu*100, secs, c["cpu_user_ms"]+c["cpu_sys_ms"])
		if rate >= 10 {
			fmt.Fprintf(w, "  messages %.0f/s (sent+received) = %.1f%% of a core per 1,000 msg/s", rate, cpu*100/(rate/1000))
		}
		fmt.Fprintln(w)
	}
}

// shardFromJob takes the shard index from a Kubernetes Indexed Job's
// $JOB_COMPLETION_INDEX when --shards N is given, and fills {index} in
// --results, so every pod of the Job runs the same command line
// (deploy/k8s, docs/simulator.md).
func (o *simulateFlags) shardFromJob() error {
	if o.shards > 0 {
		if o.shard != "" {
			return fmt.Errorf("%w: --shards takes the index from $JOB_COMPLETION_INDEX; --shard i/N gives both: use one", errUsage)
		}
		idx := os.Getenv("JOB_COMPLETION_INDEX")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= o.shards {
			return fmt.Errorf("%w: --shards %d needs $JOB_COMPLETION_INDEX between 0 and %d (an Indexed Job sets it), got %q", errUsage, o.shards, o.shards-1, idx)
		}
		o.shard = fmt.Sprintf("%d/%d", i, o.shards)
	}
	if strings.Contains(o.results, "{index}") {
		idx := "0"
		if o.shard != "" {
			idx, _, _ = strings.Cut(o.shard, "/")
		}
		o.results = strings.ReplaceAll(o.results, "{index}", idx)
	}
	return nil
}
