package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/adversary"
	"github.com/mqttfleet/mqttfleet/events"
)

func init() {
	register("adversary", "an MQTT server that misbehaves by script, to see what a device's client does (see docs/clients.md)",
		"Serves --listen until Ctrl-C, answering like a broker except where --script says otherwise; prints every packet in and out and every misbehaviour.", adversaryCmd)
}

// adversaryCmd is `mqttfleet adversary`: point a device at it and watch
// what its client does when the broker withholds a PINGRESP, refuses with
// CONNACK 5, or takes its session over.
func adversaryCmd(fs *pflag.FlagSet) runFunc {
	listen := fs.String("listen", "127.0.0.1:1883", "address the device connects to")
	script := fs.String("script", "", "YAML script of misbehaviours (docs/clients.md); none: a plain broker")
	eventsPath := fs.String("events", "", "write every packet and action as JSON lines to this file (default: stdout)")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		var sc adversary.Script
		if *script != "" {
			var err error
			if sc, err = adversary.LoadScript(*script); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		// Stdout gets each event as it happens (a person is watching);
		// a file is written buffered.
		var sink events.Sink = lineSink{enc: json.NewEncoder(os.Stdout), mu: &sync.Mutex{}}
		if *eventsPath != "" {
			f, err := os.Create(*eventsPath)
			if err != nil {
				return fmt.Errorf("open events file: %w", err)
			}
			jl := events.NewJSONLines(f)
			defer jl.Close()
			sink = jl
		}
		s, err := adversary.Start(adversary.Config{Addr: *listen, Script: sc, Events: sink,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "adversary listening on %s with %d actions\n", s.URL(), len(sc.Actions))
		<-ctx.Done()
		return s.Close()
	}
}

// lineSink writes each event as one JSON line at once.
type lineSink struct {
	enc *json.Encoder
	mu  *sync.Mutex
}

func (l lineSink) Emit(e events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.enc.Encode(e)
}
