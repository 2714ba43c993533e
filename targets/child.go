package targets

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/events"
)

// RunChild serves as a Process target's broker when this program was
// started as one (ChildEnv is set), and then exits; otherwise it returns at
// once. Call it first in main, and in TestMain of tests that use Process.
func RunChild() {
	path := os.Getenv(ChildEnv)
	if path == "" {
		return
	}
	addr := os.Getenv(childAddrEnv)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	os.Exit(serveChild(path, addr))
}

// serveChild runs the broker from the configuration file on addr until
// SIGTERM or SIGINT (a graceful Close) or until its standard input closes
// (the harness is gone). It prints
// "ready <host:port> <retained> <sessions> <queued> <inflight> <incoming qos2>"
// on stdout once it accepts, then every event as a JSON line.
func serveChild(path, addr string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg, err := broker.LoadConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.Listeners = []broker.ListenerConfig{{Name: "tcp", Type: "tcp", Addr: addr}}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	out := &childEvents{w: os.Stdout}
	cfg.Events = out
	b, err := broker.New(cfg)
	if err == nil {
		err = b.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r := b.Recovered()
	fmt.Printf("ready %s %d %d %d %d %d\n", strings.TrimPrefix(b.Addr("tcp"), "tcp://"), r.Retained, r.Sessions, r.Queued, r.Inflight, r.IncomingQoS2)
	out.open() // events only after the ready line
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	}
	if err := b.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childEvents writes each event as one JSON line, unbuffered so the harness
// sees it at once and a SIGKILL loses at most the line being written. Events
// before open are held: the first stdout line must be the ready line.
type childEvents struct {
	mu     sync.Mutex
	w      io.Writer
	opened bool
	held   []events.Event
}

func (c *childEvents) Emit(e events.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opened {
		c.held = append(c.held, e)
		return
	}
	c.write(e)
}

func (c *childEvents) open() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened = true
	for _, e := range c.held {
		c.write(e)
	}
	c.held = nil
}

func (c *childEvents) write(e events.Event) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	_, _ = c.w.Write(append(b, '\n'))
}
