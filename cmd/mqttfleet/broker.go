package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/broker"
	_ "github.com/mqttfleet/mqttfleet/broker/bridge" // bridges: in the config, and in scenarios
	"github.com/mqttfleet/mqttfleet/events"
)

func init() {
	register("broker", "run the reference MQTT 3.1.1 broker (TCP, WebSocket, TLS; metrics; events)",
		"Runs the reference broker until Ctrl-C or SIGTERM, then closes it gracefully (wills with cause shutdown).", brokerCmd)
}

// brokerCmd is `mqttfleet broker`: it runs the broker until ctx ends
// (Ctrl-C, SIGTERM), then closes it gracefully (wills with cause shutdown).
func brokerCmd(fs *pflag.FlagSet) runFunc {
	configPath := fs.String("config", "", "YAML configuration file (see docs/broker.md)")
	var listens, wss repeated
	fs.Var(&listens, "listen", "listener URL, repeatable: tcp://127.0.0.1:1883 (also ws://host:port/path); replaces the config file's listeners")
	fs.Var(&wss, "ws", "WebSocket listener URL, repeatable: ws://127.0.0.1:8080/mqtt")
	metrics := fs.String("metrics", "", "serve Prometheus /metrics on this host:port")
	eventsPath := fs.String("events", "", "write every broker event as JSON lines to this file")
	sys := fs.Duration("sys", -1, "period of the $SYS/ topics (0: off; default from config, else off)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		return runBroker(ctx, *configPath, listens, wss, *metrics, *eventsPath, *sys, *logLevel)
	}
}

func runBroker(ctx context.Context, configPath string, listens, wss repeated, metrics, eventsPath string, sys time.Duration, logLevel string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := broker.DefaultConfig()
	if configPath != "" {
		var err error
		if cfg, err = broker.LoadConfig(configPath); err != nil {
			return err
		}
	}
	if len(listens)+len(wss) > 0 {
		cfg.Listeners = nil
		for _, u := range append(listens, wss...) {
			lc, err := parseListenURL(u)
			if err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			cfg.Listeners = append(cfg.Listeners, lc)
		}
	}
	if metrics != "" {
		cfg.MetricsAddr = metrics
	}
	if sys >= 0 {
		cfg.SysInterval = sys
	}
	cfg.Logger = log
	if eventsPath != "" {
		f, err := os.Create(eventsPath)
		if err != nil {
			return fmt.Errorf("open events file: %w", err)
		}
		jl := events.NewJSONLines(f)
		defer func() {
			if err := jl.Close(); err != nil {
				log.Error("close events file", "err", err)
			}
		}()
		cfg.Events = jl
	}
	raiseFileLimit(log)

	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	if err := b.Start(); err != nil {
		return err
	}
	for _, a := range b.Addrs() {
		fmt.Fprintf(os.Stderr, "mqttfleet broker: %s listening on %s\n", a.Name, a.Addr)
	}
	if a := b.MetricsAddr(); a != "" {
		fmt.Fprintf(os.Stderr, "mqttfleet broker: metrics on http://%s/metrics\n", a)
	}
	<-ctx.Done()
	start := time.Now()
	err = b.Close()
	log.Info("broker stopped", "took", time.Since(start), "stats", fmt.Sprintf("%+v", b.Stats()))
	return err
}

// parseListenURL turns tcp://host:port, ws://host:port/path, tls:// or
// wss:// (which need a config file for certificates) into a listener.
func parseListenURL(s string) (broker.ListenerConfig, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return broker.ListenerConfig{}, fmt.Errorf("listener %q: want scheme://host:port[/path]", s)
	}
	lc := broker.ListenerConfig{Type: u.Scheme, Addr: u.Host, Path: u.Path}
	switch u.Scheme {
	case "tcp", "mqtt":
		lc.Type, lc.Path = "tcp", ""
	case "ws":
	default:
		return lc, fmt.Errorf("listener %q: flags take tcp:// or ws://; put tls and wss listeners (certificates) in the config file", s)
	}
	return lc, nil
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// connection is a file descriptor.
func raiseFileLimit(log *slog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Warn("read open-file limit", "err", err)
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			log.Warn("raise open-file limit", "err", err)
			return
		}
	}
	log.Info("open-file limit", "soft", rl.Cur, "hard", rl.Max)
}
