package targets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"

	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
)

// Bridger is a target whose broker can run bridges to other brokers (a
// scenario's `bridges:`): the reference broker's own (broker/bridge) or
// Mosquitto's (a connection block in its config). AddBridge is called
// before Start.
type Bridger interface {
	AddBridge(cfg bridgeconf.Config) error
}

// AddBridge adds a bridge to the reference broker's configuration.
func (t *InProcess) AddBridge(cfg bridgeconf.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	t.Config.Bridges = append(t.Config.Bridges, cfg)
	return nil
}

// AddBridge adds a bridge to the broker's config file (BridgeConf names
// it) in the broker's own syntax (Mosquitto's connection block). The
// container then runs on the host's network, listening on a free port of
// 127.0.0.1: a bridge dials the remote broker (or the fault proxy in
// front of it) on 127.0.0.1, which a container on Docker's bridge network
// cannot reach, and tests may send traffic nowhere else.
func (t *Container) AddBridge(cfg bridgeconf.Config) error {
	if t.BridgeConf == "" {
		return fmt.Errorf("%s: this target cannot run bridges: %w", t.TargetName, ErrNotSupported)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c != nil {
		return errors.New("add bridge: the container is running; add bridges before Start")
	}
	if t.hostAddr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("add bridge: pick a port: %w", err)
		}
		t.hostAddr = l.Addr().String()
		_ = l.Close()
	}
	t.hostNet = true
	t.bridges = append(t.bridges, cfg)
	return nil
}

var listenerLine = regexp.MustCompile(`(?m)^listener [0-9]+.*$`)

// withBridges rewrites the broker's config for host networking with its
// bridges: the listener moves to hostAddr and a connection block per bridge
// is appended.
func (t *Container) withBridges(files []File) []File {
	if len(t.bridges) == 0 {
		return files
	}
	_, port, _ := net.SplitHostPort(t.hostAddr)
	out := make([]File, len(files))
	for i, f := range files {
		out[i] = f
		if f.Path != t.BridgeConf {
			continue
		}
		c := listenerLine.ReplaceAll(f.Content, []byte("listener "+port+" 127.0.0.1"))
		var b bytes.Buffer
		b.Write(c)
		for _, br := range t.bridges {
			b.WriteString("\n" + br.MosquittoConf())
		}
		out[i].Content = b.Bytes()
	}
	return out
}

// WithBridge starts a second broker of t's kind, configured as t, that
// also runs the bridge cfg (for conformance specs of a server that
// connects out to another). The caller stops it. Only Bridger targets
// (the in-process broker and Mosquitto) can.
func WithBridge(ctx context.Context, t Target, cfg bridgeconf.Config) (Target, error) {
	switch tt := t.(type) {
	case *InProcess:
		v := &InProcess{Config: tt.Config}
		v.Config.Listeners = nil
		v.Config.Bridges = nil
		if err := v.AddBridge(cfg); err != nil {
			return nil, err
		}
		if err := v.Start(ctx); err != nil {
			return nil, fmt.Errorf("start %s with bridge %s: %w", t.Name(), cfg.Name, err)
		}
		return v, nil
	case *Container:
		c := &Container{TargetName: tt.TargetName, Image: tt.Image, ImageEnv: tt.ImageEnv, Ports: tt.Ports, Files: tt.Files,
			PersistFiles: tt.PersistFiles, BridgeConf: tt.BridgeConf, Entrypoint: tt.Entrypoint, Cmd: tt.Cmd, Env: tt.Env,
			WaitLog: tt.WaitLog, Caps: tt.Caps, StartupTimeout: tt.StartupTimeout}
		if err := c.AddBridge(cfg); err != nil {
			return nil, err
		}
		if err := c.Start(ctx); err != nil {
			return nil, fmt.Errorf("start %s with bridge %s: %w", t.Name(), cfg.Name, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("%s: cannot run a bridge: %w", t.Name(), ErrNotSupported)
}
