package targets

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/mqttfleet/mqttfleet/adversary"
	"github.com/mqttfleet/mqttfleet/events"
)

// Adversary is the adversarial broker (package adversary) as a target: a
// scenario's fleet connects to it to show what its client library does
// when the broker misbehaves as the script says. It keeps its port across
// Restart.
type Adversary struct {
	Script adversary.Script
	Events events.Sink

	mu   sync.Mutex
	srv  *adversary.Server
	addr string
}

// NewAdversary returns the target; the script is checked at Start.
func NewAdversary(script adversary.Script, sink events.Sink) *Adversary {
	return &Adversary{Script: script, Events: sink}
}

// Name is "adversary".
func (a *Adversary) Name() string { return "adversary" }

// Start listens (on the previous port after a Restart).
func (a *Adversary) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		return nil
	}
	listen := a.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	s, err := adversary.Start(adversary.Config{Addr: listen, Script: a.Script, Events: a.Events})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	a.srv, a.addr = s, s.Addr()
	return nil
}

// Stop closes the server and every connection.
func (a *Adversary) Stop(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv == nil {
		return nil
	}
	err := a.srv.Close()
	a.srv = nil
	return err
}

// Restart stops and starts on the same port.
func (a *Adversary) Restart(ctx context.Context) error {
	if err := a.Stop(ctx); err != nil {
		return err
	}
	return a.Start(ctx)
}

// Addr is the tcp listener's URL.
func (a *Adversary) Addr(transport string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv == nil || (transport != "tcp" && transport != "") {
		return "", false
	}
	return "tcp://" + a.addr, true
}

// Capabilities: QoS 2 and wildcards; no retained messages, wills or
// WebSocket (it is a test double, not a broker).
func (a *Adversary) Capabilities() Capabilities {
	return Capabilities{MaxQoS: 2, Wildcards: true, MQTT5: true}
}

// Logs: the adversary reports through events only.
func (a *Adversary) Logs(context.Context) ([]byte, error) { return nil, nil }

// String names the script for logs.
func (a *Adversary) String() string {
	var acts []string
	for _, x := range a.Script.Actions {
		acts = append(acts, x.String())
	}
	return "adversary[" + strings.Join(acts, "; ") + "]"
}
