package scenarios

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/netem"
	"github.com/mqttfleet/mqttfleet/simulator"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// groupRun is one fleet group while the scenario runs: each up starts a
// simulator.Fleet over the group alone, each down stops it (publishing
// stops, a short drain, then every device sends DISCONNECT).
type groupRun struct {
	g         *Group
	base      int  // global index of the group's first device, for events
	perDevice bool // links are named "group#i" so single devices can be faulted

	mu     sync.Mutex
	fleet  *simulator.Fleet
	cancel context.CancelFunc
	done   chan struct{}
}

// linkGroup is the proxy group of device i's link.
func (gr *groupRun) linkGroup(i int) string {
	if gr.perDevice {
		return gr.g.Name + "#" + strconv.Itoa(i)
	}
	return gr.g.Name
}

// connected returns how many devices of the group are connected now.
func (gr *groupRun) connected() int64 {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.fleet == nil {
		return 0
	}
	return gr.fleet.Live.Connected.Load()
}

// up starts the group's fleet; an up group stays as it is.
func (r *runner) up(gr *groupRun) error {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.fleet != nil {
		return nil
	}
	g := gr.g.Group
	p := &profile.Profile{
		// One name for every group: devices of every group then share the
		// run ID in their payload headers and read each other's sequence numbers.
		Name: r.sc.Name, Seed: r.sc.Seed, Drain: groupDrain, Groups: []profile.Group{g},
	}
	cfg := simulator.Config{Profile: p, Broker: r.brokerAddr, Logger: r.log,
		Events: events.SinkFunc(func(e events.Event) {
			if e.Group == "" {
				e.Group = gr.g.Name
			}
			if e.Device > 0 {
				e.Device += gr.base
			}
			r.sink.Emit(e)
		})}
	switch {
	case gr.g.Driver == "paho" && gr.g.Proxy:
		addr, err := r.groupListener(gr.g.Name)
		if err != nil {
			return err
		}
		cfg.Broker, cfg.Driver = addr, simulator.Paho{}
	case gr.g.Driver == "paho":
		cfg.Driver = simulator.Paho{}
	case gr.g.Proxy:
		cfg.Driver = &proxyDriver{proxy: r.proxy, group: gr.linkGroup}
	}
	if gr.g.Broker != "" {
		cfg.Broker = hostPort(r.urlFor(gr.g.Broker))
	}
	f, err := simulator.New(cfg)
	if err != nil {
		return fmt.Errorf("group %s up: %w", gr.g.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gr.fleet, gr.cancel, gr.done = f, cancel, make(chan struct{})
	done := gr.done
	go func() {
		defer close(done)
		if _, err := f.Run(ctx); err != nil {
			r.log.Warn("fleet group ended with an error", "group", gr.g.Name, "err", err)
		}
	}()
	return nil
}

// down stops the group's fleet and waits until every device has left.
func (gr *groupRun) down() {
	gr.mu.Lock()
	cancel, done := gr.cancel, gr.done
	gr.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	gr.mu.Lock()
	gr.fleet, gr.cancel, gr.done = nil, nil, nil
	gr.mu.Unlock()
}

// proxyDriver connects devices through the fault proxy, each link in its
// device's proxy group: simulator.Native with its dial replaced by the
// proxy's, so the device speaks MQTT exactly as a directly dialled one.
type proxyDriver struct {
	proxy *netem.Proxy
	group func(device int) string
}

// Name is "native": the fleet reconnects the devices itself.
func (d *proxyDriver) Name() string { return "native" }

// Connect dials the proxy as the device's group and runs CONNECT -> CONNACK.
func (d *proxyDriver) Connect(ctx context.Context, p *simulator.ConnectParams) (simulator.Conn, error) {
	q := *p
	group := d.group(p.Device)
	q.Dial = func(ctx context.Context) (net.Conn, error) { return d.proxy.Dial(ctx, group) }
	return simulator.Native{}.Connect(ctx, &q)
}

// silence keeps slog quiet for the fleets unless the caller asked for logs.
var silence = slog.New(slog.DiscardHandler)
