package scenarios

import (
	"context"
	"fmt"
	"github.com/mqttfleet/mqttfleet/adversary"
	"net/url"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/netem"
	"github.com/mqttfleet/mqttfleet/targets"
)

// Bridge topologies (docs/scenarios.md "Bridges between brokers"). The
// scenario's target is the edge broker; `brokers:` starts more brokers
// (the remotes) and `bridges:` runs bridges on the target to them: the
// reference broker's own bridge when the target is the reference broker,
// Mosquitto's when it is Mosquitto (a connection block in its config), so
// one file judges both implementations. A bridge with `proxy: true` dials
// its remote through a netem proxy of its own, and fault steps with
// `bridge: <name>` cut, stall or half-open the link between the brokers.

// Broker is an extra broker of a topology.
type Broker struct {
	Name string `yaml:"name"`
	// Kind is inprocess (default), process, mosquitto, or adversary: the
	// adversarial broker (package adversary) running Script, to show what
	// the fleet's client library does when a broker misbehaves.
	Kind string `yaml:"kind"`
	// Script is the adversary's misbehaviours (kind adversary only).
	Script *adversary.Script `yaml:"script"`
	// Persistence keeps the broker's state across restart steps (kinds
	// process and mosquitto).
	Persistence bool `yaml:"persistence"`
}

// Bridge is a bridge the target broker runs to one or more of Brokers.
type Bridge struct {
	Name string `yaml:"name"`
	// To are the remote brokers in priority order (failover), by name.
	To List `yaml:"to"`
	// Proxy routes the link through netem (faults with bridge: <name>).
	Proxy bool `yaml:"proxy"`
	// Topics are rules in Mosquitto's syntax: "<pattern> in|out|both <qos> [<local-prefix> <remote-prefix>]".
	Topics         []string `yaml:"topics"`
	CleanSession   *bool    `yaml:"cleansession"`
	TryPrivate     *bool    `yaml:"try_private"`
	KeepAlive      Duration `yaml:"keepalive"`
	RestartTimeout Duration `yaml:"restart_timeout"`
	RestartMax     Duration `yaml:"restart_timeout_max"`
	RoundRobin     bool     `yaml:"round_robin"`
	MaxQueued      int      `yaml:"max_queued"`
	// Protocol is mqttv311 (default) or mqttv50.
	Protocol string `yaml:"protocol"`

	rules []bridgeconf.Topic // parsed by validation
}

var brokerKinds = []string{"inprocess", "process", "mosquitto", "adversary"}

// validateTopology checks brokers:, bridges: and what refers to them.
func (sc *Scenario) validateTopology(c *checker) {
	names := map[string]bool{}
	for i := range sc.Brokers {
		b, f := &sc.Brokers[i], fmt.Sprintf("brokers[%d]", i)
		if b.Kind == "" {
			b.Kind = "inprocess"
		}
		switch {
		case b.Name == "" || b.Name == "target":
			c.fail(f+".name", "a broker needs a name other than \"target\" (the scenario's own broker)")
		case names[b.Name]:
			c.fail(f+".name", "broker name %q used twice", b.Name)
		}
		names[b.Name] = true
		if !oneOf(b.Kind, brokerKinds) {
			c.fail(f+".kind", "unknown broker kind %q%s; want one of %s", b.Kind, suggest(b.Kind, brokerKinds), strings.Join(brokerKinds, ", "))
		}
		if b.Persistence && (b.Kind == "inprocess" || b.Kind == "adversary") {
			c.fail(f+".persistence", "persistence needs kind process or mosquitto (brokers the harness runs out of process)")
		}
		switch {
		case b.Script != nil && b.Kind != "adversary":
			c.fail(f+".script", "a script is for kind adversary (the broker that misbehaves on purpose)")
		case b.Kind == "adversary" && b.Script == nil:
			c.fail(f+".script", "kind adversary needs a script: {actions: [{on: pingreq, do: withhold}]} (docs/clients.md)")
		case b.Script != nil:
			if err := b.Script.Check(); err != nil {
				c.fail(f+".script", "%v", err)
			}
		}
	}
	bridges := map[string]bool{}
	for i := range sc.Bridges {
		br, f := &sc.Bridges[i], fmt.Sprintf("bridges[%d]", i)
		if br.Name == "" || strings.ContainsAny(br.Name, "/+# ") {
			c.fail(f+".name", "a bridge needs a name without '/', '+', '#' or blanks (it names the state topic)")
		} else if bridges[br.Name] {
			c.fail(f+".name", "bridge name %q used twice", br.Name)
		}
		bridges[br.Name] = true
		if len(br.To) == 0 {
			c.fail(f+".to", "a bridge needs a remote: one of brokers: by name (several for failover)")
		}
		for j, to := range br.To {
			if !names[to] {
				c.fail(fmt.Sprintf("%s.to[%d]", f, j), "no broker named %q (brokers: %s)", to, strings.Join(sc.brokerNames(), ", "))
			}
		}
		if len(br.Topics) == 0 {
			c.fail(f+".topics", "a bridge carries nothing without a topic rule such as \"sensors/# out 1\"")
		}
		br.rules = nil
		for j, line := range br.Topics {
			t, err := bridgeconf.ParseTopic(line)
			if err != nil {
				c.fail(fmt.Sprintf("%s.topics[%d]", f, j), "%v", err)
				continue
			}
			br.rules = append(br.rules, t)
		}
		if br.Protocol != "" && br.Protocol != bridgeconf.MQTTv311 && br.Protocol != bridgeconf.MQTTv50 {
			c.fail(f+".protocol", "unknown protocol %q; want mqttv311 or mqttv50", br.Protocol)
		}
		if br.MaxQueued < 0 {
			c.fail(f+".max_queued", "must not be negative")
		}
	}
	// A client or group on a broker of brokers: names it, and is not
	// behind the fault proxy (which fronts the target).
	onBroker := func(f string, broker *string, proxy bool) {
		if *broker == "" || *broker == "target" {
			*broker = ""
			return
		}
		if !names[*broker] {
			c.fail(f, "no broker named %q (brokers: %s)", *broker, strings.Join(sc.brokerNames(), ", "))
		}
		if proxy {
			c.fail(f, "on another broker it cannot sit behind the fault proxy (it fronts the target); fault the bridge link instead")
		}
	}
	for i := range sc.Clients {
		onBroker(fmt.Sprintf("clients[%d].broker", i), &sc.Clients[i].Broker, sc.Clients[i].Proxy)
	}
	for i := range sc.Groups {
		onBroker(fmt.Sprintf("groups[%d].broker", i), &sc.Groups[i].Broker, sc.Groups[i].Proxy)
	}
	for i := range sc.Steps {
		s, f := &sc.Steps[i], fmt.Sprintf("steps[%d]", i)
		if s.Bridge != "" && (isFault(s.Do) || s.Do == DoRestore) {
			br := sc.bridge(s.Bridge)
			switch {
			case br == nil:
				c.fail(f+".bridge", "no bridge named %q", s.Bridge)
			case !br.Proxy:
				c.fail(f+".bridge", "bridge %q has no proxy: set proxy: true on it to fault its link", s.Bridge)
			}
			if s.Group != "" || s.Client != "" {
				c.fail(f+".bridge", "a fault acts on a bridge link or on a group/client, not both")
			}
		}
		if s.Broker != "" && s.Broker != "target" && !names[s.Broker] {
			c.fail(f+".broker", "no broker named %q (brokers: %s)", s.Broker, strings.Join(sc.brokerNames(), ", "))
		}
	}
}

func (sc *Scenario) brokerNames() []string {
	out := []string{"target"}
	for _, b := range sc.Brokers {
		out = append(out, b.Name)
	}
	return out
}

func (sc *Scenario) bridge(name string) *Bridge {
	for i := range sc.Bridges {
		if sc.Bridges[i].Name == name {
			return &sc.Bridges[i]
		}
	}
	return nil
}

func (sc *Scenario) broker(name string) *Broker {
	for i := range sc.Brokers {
		if sc.Brokers[i].Name == name {
			return &sc.Brokers[i]
		}
	}
	return nil
}

// extraBroker is a running broker of brokers:.
type extraBroker struct {
	cfg *Broker
	t   targets.Target
	url string // tcp://host:port
}

// startTopology starts the extra brokers, the proxies of proxied bridges,
// and adds the bridges to the target (before the target starts).
func (r *runner) startTopology(ctx context.Context) error {
	if len(r.sc.Brokers) == 0 {
		return nil
	}
	r.extra = map[string]*extraBroker{}
	r.bridgeProxies = map[string]*netem.Proxy{}
	for i := range r.sc.Brokers {
		b := &r.sc.Brokers[i]
		var t targets.Target
		var err error
		if b.Kind == "adversary" {
			t = targets.NewAdversary(*b.Script, events.SinkFunc(func(e events.Event) { r.sink.Emit(e) }))
		} else if t, err = targets.ByName(b.Kind); err != nil {
			return err
		}
		if d, ok := t.(targets.Durable); ok {
			d.SetPersistence(b.Persistence)
		}
		if p, ok := t.(*targets.Process); ok {
			p.Events = events.SinkFunc(func(e events.Event) { r.sink.Emit(e) })
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = t.Start(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("start broker %s (%s): %w", b.Name, b.Kind, err)
		}
		u, ok := t.Addr("tcp")
		if !ok {
			return fmt.Errorf("broker %s has no tcp listener", b.Name)
		}
		r.extra[b.Name] = &extraBroker{cfg: b, t: t, url: u}
	}
	bt, ok := r.target.(targets.Bridger)
	if !ok {
		if len(r.sc.Bridges) > 0 {
			return fmt.Errorf("target %s cannot run bridges: %w", r.target.Name(), targets.ErrNotSupported)
		}
		return nil
	}
	for i := range r.sc.Bridges {
		br := &r.sc.Bridges[i]
		cfg := bridgeconf.Config{Name: br.Name, Topics: br.rules, CleanSession: br.CleanSession, TryPrivate: br.TryPrivate,
			KeepAlive: bridgeconf.Duration(br.KeepAlive), RestartTimeout: bridgeconf.Duration(br.RestartTimeout),
			RestartMax: bridgeconf.Duration(br.RestartMax), RoundRobin: br.RoundRobin, MaxQueued: br.MaxQueued, Protocol: br.Protocol,
			RemoteClientID: "bridge-" + br.Name}
		for _, to := range br.To {
			addr := hostPort(r.extra[to].url)
			if br.Proxy {
				p := netem.NewProxy(netem.ProxyConfig{Listen: "127.0.0.1:0", Upstream: addr, Seed: int64(r.sc.Seed), Logger: r.log,
					Events: events.SinkFunc(func(e events.Event) { r.sink.Emit(e) })})
				if err := p.Start(); err != nil {
					return fmt.Errorf("bridge %s: start its fault proxy: %w", br.Name, err)
				}
				r.bridgeProxies[br.Name+"/"+to] = p
				a, err := p.ListenGroup(br.Name)
				if err != nil {
					return fmt.Errorf("bridge %s: %w", br.Name, err)
				}
				addr = a
			}
			cfg.Addresses = append(cfg.Addresses, addr)
		}
		if err := bt.AddBridge(cfg); err != nil {
			return fmt.Errorf("bridge %s: %w", br.Name, err)
		}
	}
	return nil
}

func hostPort(u string) string {
	if pu, err := url.Parse(u); err == nil && pu.Host != "" {
		return pu.Host
	}
	return u
}

// stopTopology stops the proxies and the extra brokers.
func (r *runner) stopTopology() {
	for _, p := range r.bridgeProxies {
		_ = p.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, b := range r.extra {
		if err := b.t.Stop(ctx); err != nil {
			r.log.Warn("stop broker", "broker", b.cfg.Name, "err", err)
		}
		if c, ok := b.t.(interface{ Close() error }); ok {
			_ = c.Close() // a process target's store directory
		}
	}
}

// urlFor is the broker URL a client of broker name ("" = the target) dials.
func (r *runner) urlFor(name string) string {
	if b, ok := r.extra[name]; ok && name != "" {
		return b.url
	}
	return r.brokerURL
}

// bridgeProxiesOf returns the fault proxies of a bridge, one per remote.
func (r *runner) bridgeProxiesOf(name string) []*netem.Proxy {
	var out []*netem.Proxy
	for k, p := range r.bridgeProxies {
		if strings.HasPrefix(k, name+"/") {
			out = append(out, p)
		}
	}
	return out
}

// extraLifecycle runs restart_broker, stop_broker and start_broker on a
// broker of brokers: (graceful: the target's own Stop/Start or Restart;
// kill: SIGKILL where the broker can be killed).
func (r *runner) extraLifecycle(ctx context.Context, s *Step) error {
	b := r.extra[s.Broker]
	emit := func(kind events.Kind, detail string) {
		r.sink.Emit(events.Event{Time: time.Now(), Kind: kind, Source: events.SourceScenario, Fault: faultRestart,
			Detail: fmt.Sprintf("broker %s %s (step %s, mode %s)", s.Broker, detail, s.Name, s.Mode)})
	}
	stop := func() error {
		if s.Mode == ModeKill {
			k, ok := b.t.(targets.Killer)
			if !ok {
				return fmt.Errorf("broker %s (%s) cannot be killed: %w", s.Broker, b.cfg.Kind, targets.ErrNotSupported)
			}
			if err := k.Kill(ctx); err != nil {
				return err
			}
			emit(events.FaultInjected, "killed (SIGKILL)")
			return nil
		}
		if err := b.t.Stop(ctx); err != nil {
			return err
		}
		emit(events.FaultInjected, "stopped gracefully")
		return nil
	}
	start := func() error {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := b.t.Start(sctx); err != nil {
			return err
		}
		emit(events.FaultRemoved, "started")
		return nil
	}
	switch s.Do {
	case DoStopB:
		return stop()
	case DoStartB:
		return start()
	}
	if _, isContainer := b.t.(*targets.Container); isContainer && s.Mode != ModeKill {
		// A container's Stop removes it, store and all: restart it in place.
		emit(events.FaultInjected, "restarting gracefully")
		if err := b.t.Restart(ctx); err != nil {
			return err
		}
		emit(events.FaultRemoved, "started")
		return nil
	}
	if err := stop(); err != nil {
		return err
	}
	return start()
}

// bridgeKey is the runner.faults key of a bridge's link faults.
func bridgeKey(name string) string { return "bridge:" + name }

// restoreBridge removes every fault on a bridge's link.
func (r *runner) restoreBridge(name string) {
	key := bridgeKey(name)
	r.mu.Lock()
	ids := r.faults[key]
	r.mu.Unlock()
	r.removeFaults(key, ids)
}

// onTarget reports whether a lifecycle step acts on the target (not on a
// broker of brokers:).
func (s *Step) onTarget() bool { return s.Broker == "" || s.Broker == "target" }

// UsesTarget reports whether anything in the scenario connects to the
// target broker: a group or client without broker:, or a bridge (the
// target runs it). A file that grades client libraries against brokers:
// of its own does not, and a second target would add nothing.
func (sc *Scenario) UsesTarget() bool {
	if len(sc.Bridges) > 0 {
		return true
	}
	for _, g := range sc.Groups {
		if g.Broker == "" {
			return true
		}
	}
	for _, c := range sc.Clients {
		if c.Broker == "" {
			return true
		}
	}
	return false
}
