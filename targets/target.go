// Package targets says where a broker under test comes from: the in-process
// reference broker, a container (Mosquitto, EMQX or any image), or an address
// the user already runs. Conformance specs and scenarios see one interface:
// addresses per transport, declared capabilities, lifecycle and logs.
package targets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mqttfleet/mqttfleet/reports"
)

// ErrUnavailable marks a target that cannot run on this machine (no Docker
// engine, image not present, ...) or cannot be reached. It is the results
// model's ErrTargetUnavailable, so a command that returns it exits 3.
var ErrUnavailable = reports.ErrTargetUnavailable

// ErrNotSupported is returned by lifecycle calls a target cannot honour, such
// as restarting a broker the user runs outside the harness.
var ErrNotSupported = errors.New("not supported by this target")

// Target is one broker under test.
type Target interface {
	// Name is a short stable name used in labels, reports and flags ("inprocess", "mosquitto").
	Name() string
	// Start brings the broker up; addresses are valid once it returns nil.
	Start(ctx context.Context) error
	// Stop shuts the broker down; Start may be called again afterwards.
	Stop(ctx context.Context) error
	// Restart stops and starts the broker, keeping its addresses where it can.
	Restart(ctx context.Context) error
	// Addr is the URL of the listener for a transport ("tcp", "ws"), such as
	// "tcp://127.0.0.1:1883"; ok is false when the target has no such listener.
	Addr(transport string) (url string, ok bool)
	// Capabilities declares what the broker supports, so specs needing more skip.
	Capabilities() Capabilities
	// Logs returns everything the broker has logged since it was first started.
	// Targets without access to the broker's logs return nil, nil.
	Logs(ctx context.Context) ([]byte, error)
}

// Capabilities are the optional features of a broker that decide which
// conformance specs apply to it.
type Capabilities struct {
	// MaxQoS is the highest QoS the broker grants (0, 1 or 2).
	MaxQoS byte
	// Retain: the broker keeps retained messages.
	Retain bool
	// Wildcards: the broker accepts '+' and '#' in topic filters.
	Wildcards bool
	// WebSocket: the broker has an MQTT-over-WebSocket listener (Addr("ws")).
	WebSocket bool
	// MQTT5: the broker speaks protocol level 5 as well as 3.1.1.
	MQTT5 bool
	// MaxPacketSize is the largest packet the broker accepts; 0 = protocol maximum.
	MaxPacketSize int
	// EmptyClientID: the broker assigns an identifier to a CONNECT with an
	// empty ClientId and CleanSession=1 (optional in 3.1.1).
	EmptyClientID bool
	// PersistentSessions: the broker keeps CleanSession=0 sessions between connections.
	PersistentSessions bool
	// ACL: the target runs the broker with ACLFile, so publishes by user
	// ACLUser outside mqf/ are unauthorised.
	ACL bool
	// Restartable: Restart works (the harness owns the broker process).
	Restartable bool
	// Kill: the target is a Killer, so a broker can be ended with SIGKILL
	// and started again (restart.go).
	Kill bool
	// Persistence: the target is Durable, running its broker with a store
	// that survives a restart when asked to.
	Persistence bool
	// Bridges: the target is a Bridger; its broker runs bridges to other
	// brokers (the reference broker's own, or Mosquitto's).
	Bridges bool
	// EnhancedAuth: the broker offers MQTT 5.0 enhanced authentication with
	// SCRAM-SHA-256 and knows user SCRAMUser with password SCRAMPassword.
	EnhancedAuth bool
	// Variants: the target implements Variants, starting a second broker
	// with a changed configuration (variant.go).
	Variants bool
	// SharedSubscriptions and SubscriptionIDs: the MQTT 5 optional features
	// ($share/{name}/{filter}, Subscription Identifiers) are served.
	SharedSubscriptions, SubscriptionIDs bool
}

// Has reports whether the capabilities include the named feature, so specs
// can declare needs as strings: "qos1", "qos2", "retain", "wildcards", "ws",
// "mqtt5", "empty-client-id", "persistent-sessions", "acl", "restart",
// "enhanced_auth", "variants", "shared-subs", "sub-ids", "kill", "persistence", "bridges".
func (c Capabilities) Has(feature string) bool {
	switch feature {
	case "qos1":
		return c.MaxQoS >= 1
	case "qos2":
		return c.MaxQoS >= 2
	case "retain":
		return c.Retain
	case "wildcards":
		return c.Wildcards
	case "ws":
		return c.WebSocket
	case "mqtt5":
		return c.MQTT5
	case "empty-client-id":
		return c.EmptyClientID
	case "persistent-sessions":
		return c.PersistentSessions
	case "acl":
		return c.ACL
	case "restart":
		return c.Restartable
	case "kill":
		return c.Kill
	case "persistence":
		return c.Persistence
	case "bridges":
		return c.Bridges
	case "enhanced_auth":
		return c.EnhancedAuth
	case "variants":
		return c.Variants
	case "shared-subs":
		return c.SharedSubscriptions
	case "sub-ids":
		return c.SubscriptionIDs
	}
	return false
}

// ACLFile is the Mosquitto-format acl_file the ACL-capable targets run with.
// Anonymous clients may use every topic, '$mqf/...' included (a '$' topic the
// suite's '$' matching spec uses, which '#' does not cover); a client with
// user name ACLUser may only use topics under mqf/, so its publishes
// elsewhere are unauthorised. Restricting one user, rather than a topic for
// everyone, keeps subscriptions to '#' valid on brokers that refuse filters
// reaching a denied topic.
const ACLFile = `# mqttfleet conformance ACL
topic readwrite #
topic readwrite $mqf/#
topic read $SYS/#
user ` + ACLUser + `
topic readwrite mqf/#
`

// ACLUser is the user name ACLFile restricts.
const ACLUser = "mqf-acl"

// The SCRAM-SHA-256 user of targets with the enhanced_auth capability: the
// in-process target provisions it in its SCRAM file; a broker of your own
// needs it provisioned to run the specs that need that capability.
const (
	SCRAMUser     = "mqf-scram"
	SCRAMPassword = "mqf-scram-password"
)

// ByName returns the target a flag or environment variable names:
// "inprocess", "process" (the reference broker as a child process),
// "mosquitto", "emqx", or a broker URL ("tcp://host:port",
// "ws://host:port/path") for a broker the user already runs.
func ByName(name string) (Target, error) {
	switch n := strings.TrimSpace(name); {
	case n == "inprocess":
		return NewInProcess(), nil
	case n == "process":
		return NewProcess(), nil
	case n == "mosquitto":
		return NewMosquitto(), nil
	case n == "emqx":
		return NewEMQX(), nil
	case n == "nats":
		return NewNATS(), nil
	case n == "rabbitmq":
		return NewRabbitMQ(), nil
	case strings.Contains(n, "://"):
		return NewExternal(n)
	default:
		return nil, fmt.Errorf("unknown target %q: want inprocess, process, mosquitto, emqx, nats, rabbitmq or a tcp:// or ws:// URL", name)
	}
}

// List parses a comma-separated list of target names (see ByName).
func List(names string) ([]Target, error) {
	var ts []Target
	for _, n := range strings.Split(names, ",") {
		if strings.TrimSpace(n) == "" {
			continue
		}
		t, err := ByName(n)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("no target in %q", names)
	}
	return ts, nil
}
