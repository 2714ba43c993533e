package targets

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/broker/auth"
	_ "github.com/mqttfleet/mqttfleet/broker/bridge" // bridges: in the config, and in scenarios
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/syncbuf"
)

// InProcess is the reference broker running inside the test process: the
// default target, needing no Docker. It listens on 127.0.0.1 over TCP and
// WebSocket, with ACLFile unless Config names an ACL file of its own and a
// SCRAM file holding SCRAMUser unless Config names one; its logs are its slog output plus every event it emits, one JSON
// object a line, so a failing spec shows why the broker decided what it did.
type InProcess struct {
	// Config is the broker configuration; Start replaces its listeners with
	// TCP and WebSocket ones on 127.0.0.1 and sets Logger and Events.
	Config broker.Config
	// Events, when set, also receives every broker event.
	Events events.Sink

	mu     sync.Mutex
	b      *broker.Broker
	aclDir string            // holds ACLFile and SCRAMFile while the broker runs
	ports  map[string]string // transport -> host:port, reused on Restart
	logs   syncbuf.Buffer
}

// NewInProcess returns the in-process reference broker target with the
// broker's default configuration.
func NewInProcess() *InProcess {
	return &InProcess{Config: broker.DefaultConfig()}
}

// Name returns "inprocess".
func (t *InProcess) Name() string { return "inprocess" }

// Capabilities of the reference broker.
func (t *InProcess) Capabilities() Capabilities {
	maxQoS, retain := byte(2), true
	if q := t.Config.MaximumQoS; q != nil {
		maxQoS = byte(*q)
	}
	if r := t.Config.RetainAvailable; r != nil {
		retain = *r
	}
	return Capabilities{MaxQoS: maxQoS, Retain: retain, Wildcards: true, WebSocket: true, MQTT5: true,
		MaxPacketSize: t.Config.MaxPacketSize, EmptyClientID: true, PersistentSessions: true, Restartable: true,
		ACL: t.Config.Auth.ACLFile == "", EnhancedAuth: t.Config.Auth.SCRAMFile == "", Variants: true,
		SharedSubscriptions: true, SubscriptionIDs: true, Bridges: true}
}

// Start creates and starts the broker.
func (t *InProcess) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b != nil {
		return nil
	}
	cfg := t.Config
	tcpAddr, wsAddr := "127.0.0.1:0", "127.0.0.1:0"
	if t.ports != nil {
		tcpAddr, wsAddr = t.ports["tcp"], t.ports["ws"]
	}
	cfg.Listeners = []broker.ListenerConfig{
		{Name: "tcp", Type: "tcp", Addr: tcpAddr},
		{Name: "ws", Type: "ws", Addr: wsAddr, Path: "/mqtt"},
	}
	if cfg.Auth.ACLFile == "" || cfg.Auth.SCRAMFile == "" {
		dir, err := os.MkdirTemp("", "mqttfleet-acl-")
		if err != nil {
			return fmt.Errorf("start in-process broker: ACL directory: %w", err)
		}
		t.aclDir = dir
		if cfg.Auth.ACLFile == "" {
			cfg.Auth.ACLFile = filepath.Join(dir, "acl")
			if err := os.WriteFile(cfg.Auth.ACLFile, []byte(ACLFile), 0o600); err != nil {
				t.removeACL()
				return fmt.Errorf("start in-process broker: write ACL: %w", err)
			}
		}
		if cfg.Auth.SCRAMFile == "" {
			// The SCRAM user of the enhanced_auth capability.
			cred, err := auth.SCRAMCredential(SCRAMPassword, auth.MinSCRAMIterations)
			if err == nil {
				cfg.Auth.SCRAMFile = filepath.Join(dir, "scram")
				err = os.WriteFile(cfg.Auth.SCRAMFile, []byte(SCRAMUser+":"+cred+"\n"), 0o600)
			}
			if err != nil {
				t.removeACL()
				return fmt.Errorf("start in-process broker: write SCRAM file: %w", err)
			}
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(&t.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sinks := []events.Sink{events.SinkFunc(t.logEvent)}
	if t.Events != nil {
		sinks = append(sinks, t.Events)
	}
	if cfg.Events != nil {
		sinks = append(sinks, cfg.Events)
	}
	cfg.Events = events.Multi(sinks...)
	b, err := broker.New(cfg)
	if err == nil {
		err = b.Start()
	}
	if err != nil {
		t.removeACL()
		return fmt.Errorf("start in-process broker: %w", err)
	}
	t.b = b
	t.ports = map[string]string{}
	for _, tr := range []string{"tcp", "ws"} {
		if u, err := url.Parse(b.Addr(tr)); err == nil && u.Host != "" {
			t.ports[tr] = u.Host
		}
	}
	return nil
}

// logEvent appends one broker event to the logs as a JSON line.
func (t *InProcess) logEvent(e events.Event) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	_, _ = t.logs.Write(append([]byte("event "), append(b, '\n')...))
}

// Stop closes the broker; its sessions and retained messages are lost.
func (t *InProcess) Stop(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b == nil {
		return nil
	}
	b := t.b
	t.b = nil
	defer t.removeACL()
	if err := b.Close(); err != nil {
		return fmt.Errorf("stop in-process broker: %w", err)
	}
	return nil
}

func (t *InProcess) removeACL() {
	if t.aclDir != "" {
		_ = os.RemoveAll(t.aclDir)
		t.aclDir = ""
	}
}

// Restart closes the broker and starts a new one on the same ports.
func (t *InProcess) Restart(ctx context.Context) error {
	if err := t.Stop(ctx); err != nil {
		return err
	}
	return t.Start(ctx)
}

// Addr returns the URL of the broker's listener for "tcp" or "ws".
func (t *InProcess) Addr(transport string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b == nil {
		return "", false
	}
	u := t.b.Addr(transport)
	if u == "" {
		return "", false
	}
	if transport == "ws" && !strings.Contains(strings.TrimPrefix(u, "ws://"), "/") {
		u += "/mqtt"
	}
	return u, true
}

// Logs returns the broker's slog output and events so far.
func (t *InProcess) Logs(context.Context) ([]byte, error) { return t.logs.Bytes(), nil }
