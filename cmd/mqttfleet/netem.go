package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/netem"
	"github.com/mqttfleet/mqttfleet/reports"
)

func init() {
	register("netem", "fault proxy between any client and broker, with an HTTP JSON control API (see docs/netem.md)",
		"Proxies --listen to --upstream and serves the control API on --api until Ctrl-C.", netemCmd)
}

// netemCmd is `mqttfleet netem`: it proxies --listen to --upstream and serves
// the control API on --api until ctx ends.
func netemCmd(fs *pflag.FlagSet) runFunc {
	listen := fs.String("listen", "127.0.0.1:1884", "address devices connect to")
	upstream := fs.String("upstream", "127.0.0.1:1883", "broker address every link dials")
	api := fs.String("api", "127.0.0.1:8474", "HTTP JSON control API address (empty: none)")
	eventsPath := fs.String("events", "", "write link and fault events as JSON lines to this file")
	results := fs.String("results", "netem-results.json", "write the results file (links, fault windows) here when the proxy stops")
	seed := fs.Int64("seed", 1, "seed for fault shares and jitter")
	var groups repeated
	fs.Var(&groups, "group", "open a listener for this link group at start, repeatable (its address is printed)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		return runNetem(ctx, *listen, *upstream, *api, *eventsPath, *results, *seed, groups, *logLevel)
	}
}

func runNetem(ctx context.Context, listen, upstream, api, eventsPath, results string, seed int64, groups repeated, logLevel string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	netemRaiseFileLimit(log)

	var sink events.Sink = events.Discard
	if eventsPath != "" {
		f, err := os.Create(eventsPath)
		if err != nil {
			return fmt.Errorf("open events file: %w", err)
		}
		jl := events.NewJSONLines(f)
		defer jl.Close()
		sink = jl
	}

	// The proxy's events also fill the results model, so a netem session
	// ends in a results file like every other command: links opened and
	// closed, and every fault window (report html renders it).
	col := reports.NewCollector(reports.KindNetem, reports.Run{Name: "netem", Target: upstream, Seed: seed,
		Shard: reports.Shard{Index: 0, Count: 1}, Command: os.Args})
	started := time.Now()
	sink = events.Multi(sink, col)
	var px *netem.Proxy
	if results != "" {
		defer func() {
			res := col.Results()
			if px != nil { // closed by now: the counts include every link
				maps.Copy(res.Counters, px.Counts().Counters())
			}
			res.Run.Start, res.Run.End, res.Run.Status = started, time.Now(), reports.StatusCompleted
			res.Run.Host, _ = os.Hostname()
			if err := res.Write(results); err != nil {
				log.Error("write results", "err", err)
				return
			}
			fmt.Fprintf(os.Stderr, "netem: wrote %s (%d links, %d fault windows)\n", results, res.Counters["links_opened"], len(res.Faults))
		}()
	}
	px = netem.NewProxy(netem.ProxyConfig{Listen: listen, Upstream: upstream, Events: sink, Seed: seed, Logger: log})
	if err := px.Start(); err != nil {
		return err
	}
	defer px.Close()
	for _, g := range groups {
		addr, err := px.ListenGroup(g)
		if err != nil {
			return err
		}
		fmt.Printf("group %s listening on %s\n", g, addr)
	}
	fmt.Printf("netem: %s -> %s\n", px.Addr(), upstream)

	var srv *http.Server
	errc := make(chan error, 1)
	if api != "" {
		ln, err := net.Listen("tcp", api)
		if err != nil {
			return fmt.Errorf("listen for control API on %s: %w", api, err)
		}
		srv = &http.Server{Handler: px.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
		fmt.Printf("netem: control API on http://%s\n", ln.Addr())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("control API: %w", err)
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-errc
	}
	return px.Close()
}

// netemRaiseFileLimit lifts the soft open-file limit to the hard one: each link
// holds two sockets.
func netemRaiseFileLimit(log *slog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			log.Warn("raise open file limit", "err", err)
		}
	}
	log.Debug("open file limit", "limit", rl.Cur, "max_links", (rl.Cur-16)/2)
}
