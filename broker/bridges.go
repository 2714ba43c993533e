package broker

import (
	"errors"
	"log/slog"

	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Bridges are run by package broker/bridge, which registers itself here
// when imported (as database/sql drivers do): a bridge is a client of this
// broker and of a remote one, and the client package's own tests run
// against this broker, so broker cannot import client.

// BridgeStats is a bridge's state and counters.
type BridgeStats struct {
	Name     string
	Up       bool
	Address  string // the remote in use, or the last one tried
	Connects int    // successful remote connections
	Failures int    // failed attempts and broken links
	// ForwardedOut counts messages the remote acknowledged (QoS 0: written);
	// ForwardedIn messages from the remote published here.
	ForwardedOut, ForwardedIn uint64
	Dropped                   uint64 // oldest messages dropped from a full queue while the remote was down
	Queued                    int    // waiting for the remote now
}

// BridgeRunner is a running bridge.
type BridgeRunner interface {
	Stop()
	Stats() BridgeStats
}

// bridgeStarter starts one bridge of a started broker; set by
// RegisterBridges.
var bridgeStarter func(*Broker, bridgeconf.Config) BridgeRunner

// RegisterBridges installs the bridge implementation (package broker/bridge
// calls it from init).
func RegisterBridges(start func(*Broker, bridgeconf.Config) BridgeRunner) { bridgeStarter = start }

var errNoBridges = errors.New("bridges are configured but no bridge implementation is linked in: import github.com/mqttfleet/mqttfleet/broker/bridge")

// startBridges starts every configured bridge; called by Start.
func (b *Broker) startBridges() {
	for _, cfg := range b.cfg.Bridges {
		b.bridges = append(b.bridges, bridgeStarter(b, cfg))
	}
}

// stopBridges stops every bridge; called first by Close.
func (b *Broker) stopBridges() {
	for _, br := range b.bridges {
		br.Stop()
	}
}

// Bridges returns the state of every bridge, in configuration order.
func (b *Broker) Bridges() []BridgeStats {
	out := make([]BridgeStats, 0, len(b.bridges))
	for _, br := range b.bridges {
		out = append(out, br.Stats())
	}
	return out
}

// Emit reports an event as the broker's own (for its bridges).
func (b *Broker) Emit(e events.Event) { b.emit(e) }

// Logger is the broker's logger.
func (b *Broker) Logger() *slog.Logger { return b.log }

// PublishInternal routes and, when retain is set, retains a message as the
// broker itself would publish it ($SYS topics, bridge state): no client, no
// ACL. It returns how many subscribers it was delivered to.
func (b *Broker) PublishInternal(topic string, qos byte, retain bool, payload []byte) int {
	return b.publish(&packet.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: payload}, "")
}

// Closing reports whether Close has begun.
func (b *Broker) Closing() bool { return b.ctx.Err() != nil }
