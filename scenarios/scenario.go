// Package scenarios reads scenario files and runs them: a target broker, a
// fleet of simulated devices (some behind the netem fault proxy), a few
// scenario clients (watchers, publishers, will holders), a timeline of steps
// and assertions over everything observed. A scenario turns a field bug
// ("devices drop off every night") into a regression test that runs against
// any broker and says pass or fail.
//
//	file ──Load──► Scenario ──Run──► target ◄── netem proxy ◄── fleet groups
//	                                   ▲                          │
//	                                   └──── clients (watchers) ──┤
//	   every part emits events ──► Recorder + reports.Collector ◄─┘
//	                                   │
//	   timeline steps wait on it ◄─────┤
//	   assertions evaluated over it ───┴──► reports.Results (verdicts + evidence)
//
// The file format is documented in docs/scenarios.md.
package scenarios

import (
	"time"

	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// Scenario is one scenario file, decoded.
type Scenario struct {
	// Name labels results; defaults to the file name without extension.
	Name string `yaml:"name"`
	// Description says what field bug the scenario reproduces.
	Description string `yaml:"description"`
	// Vars are values substituted for ${name} anywhere else in the file;
	// Options.Vars (mqttfleet run -set name=value) override them.
	Vars map[string]any `yaml:"vars"`
	// Seed makes device timings and fault shares reproducible.
	Seed uint64 `yaml:"seed"`
	// Timeout bounds the whole timeline (default 5m).
	Timeout time.Duration `yaml:"timeout"`
	// Drain is how long the run waits after the last step before taking the
	// fleet down (default 1s), so late events are still recorded.
	Drain time.Duration `yaml:"drain"`
	// Requires lists target capabilities (targets.Capabilities.Has names);
	// a target without one skips the scenario with that reason.
	Requires []string `yaml:"requires"`
	// Target is the broker under test (default: the in-process reference broker).
	Target Target `yaml:"target"`
	// Groups are fleet device groups (simulator profiles).
	Groups []Group `yaml:"groups"`
	// Clients are single scenario clients: watchers, publishers, will holders.
	Clients []Client `yaml:"clients"`
	// Steps are the timeline, run in order.
	Steps []Step `yaml:"steps"`
	// Assertions are checked over the recorded events after the run.
	Assertions []Assertion `yaml:"assertions"`
	// Brokers are more brokers this scenario starts, and Bridges the
	// bridges the target runs to them (bridges.go).
	Brokers []Broker `yaml:"brokers"`
	Bridges []Bridge `yaml:"bridges"`
	// Kafka is the Kafka leg: cluster, topics, bridges and watchers (kafka.go).
	Kafka *Kafka `yaml:"kafka"`

	// File is the path the scenario was loaded from, for error messages.
	File string `yaml:"-"`
	pos  *positions
}

// Target says which broker a scenario runs against.
type Target struct {
	// Kind is inprocess (default), process (the reference broker as a
	// child process, which a restart can kill -9), mosquitto, emqx or address.
	Kind string `yaml:"kind"`
	// Address is the broker URL for kind address (tcp://host:port).
	Address string `yaml:"address"`
	// Persistence runs the broker with its own store on, so state survives
	// restart_broker (targets.Durable; restart.go).
	Persistence bool `yaml:"persistence"`
}

// Group is a fleet device group: every field of a simulator profile group
// (count, client_id, keepalive, will, publish, lifecycle, reconnect, ...),
// plus where it sits in the network.
type Group struct {
	profile.Group `yaml:",inline"`
	// Proxy places every device of the group behind the netem fault proxy,
	// so steps can blackhole, stall, reset or delay its links.
	Proxy bool `yaml:"proxy"`
	// Driver is native (default; this module's client) or paho
	// (paho.mqtt.golang, with its own auto-reconnect).
	Driver string `yaml:"driver"`
	// Broker is the broker of brokers: the group's devices connect to
	// (default: the target), such as an adversary showing what the
	// group's client library does when a broker misbehaves.
	Broker string `yaml:"broker"`
}

// Client is one scenario client: it connects at the start of the timeline
// (or at a connect step), subscribes, and records everything it receives.
type Client struct {
	Name string `yaml:"name"`
	// Broker is the broker of brokers: this client connects to (default: the target).
	Broker string `yaml:"broker"`
	// ClientID defaults to the name.
	ClientID string `yaml:"client_id"`
	// Clean asks for a clean session (default true).
	Clean *bool `yaml:"clean_session"`
	// KeepAlive is sent in CONNECT (default 30s; 0 disables).
	KeepAlive *time.Duration `yaml:"keepalive"`
	// Protocol is 4 (MQTT 3.1.1, default) or 5.
	Protocol int `yaml:"protocol"`
	// Will is the client's will message.
	Will *ClientWill `yaml:"will"`
	// SessionExpiry is the MQTT 5 Session Expiry Interval sent in CONNECT
	// (whole seconds; absent: 0, the session ends with the connection).
	SessionExpiry *Duration `yaml:"session_expiry"`
	// Subscriptions are made after every connect.
	Subscriptions []profile.Subscription `yaml:"subscriptions"`
	// Proxy places the client behind the fault proxy.
	Proxy bool `yaml:"proxy"`
	// Reconnect reconnects this client after a lost link, after this delay (0: never).
	Reconnect time.Duration `yaml:"reconnect"`
}

// ClientWill is a scenario client's will: a simulator will plus, for MQTT
// 5, its Will Delay Interval.
type ClientWill struct {
	profile.Will `yaml:",inline"`
	// Delay is the Will Delay Interval (whole seconds; MQTT 5 only): the
	// broker waits this long after the link ends before publishing the will,
	// and drops it if the session is resumed meanwhile.
	Delay Duration `yaml:"delay"`
}

// Step is one entry of the timeline. When it starts: at a time from the
// start (At), a delay after a named step ended (After + Delay), when an event
// matches (When + Delay), or else Delay after the previous step ended.
type Step struct {
	Name  string    `yaml:"name"`
	At    *Duration `yaml:"at"`
	After string    `yaml:"after"`
	When  *Matcher  `yaml:"when"`
	Delay Duration  `yaml:"delay"`
	// Do is the action; see the actions table in docs/scenarios.md.
	Do string `yaml:"do"`

	Group   string `yaml:"group"`
	Devices []int  `yaml:"devices"`
	Client  string `yaml:"client"`

	// Fault parameters.
	Direction  string   `yaml:"direction"`
	For        Duration `yaml:"for"`
	Every      Duration `yaml:"every"`
	Latency    Duration `yaml:"latency"`
	Jitter     Duration `yaml:"jitter"`
	Rate       int64    `yaml:"rate"`
	ChunkSize  int      `yaml:"chunk_size"`
	ChunkDelay Duration `yaml:"chunk_delay"`
	Share      float64  `yaml:"share"`
	// Link fault parameters (loss, duplicate, reorder, nat_idle; bandwidth burst).
	Probability float64  `yaml:"probability"`
	P           float64  `yaml:"p"`
	R           float64  `yaml:"r"`
	LossBad     float64  `yaml:"loss_bad"`
	LossGood    float64  `yaml:"loss_good"`
	Packets     []string `yaml:"packets"`
	Window      int      `yaml:"window"`
	Hold        Duration `yaml:"hold"`
	Idle        Duration `yaml:"idle"`
	Burst       int64    `yaml:"burst"`

	// Publish parameters.
	Topic    string   `yaml:"topic"`
	Payload  *string  `yaml:"payload"`
	QoS      int      `yaml:"qos"`
	Retain   bool     `yaml:"retain"`
	Count    int      `yaml:"count"`
	Interval Duration `yaml:"interval"`

	// Wait parameters.
	Until     *Matcher `yaml:"until"`
	Connected string   `yaml:"connected"`
	Timeout   Duration `yaml:"timeout"`

	// Bytes are written raw by do: violate (hex, default a malformed PINGREQ).
	Bytes string `yaml:"bytes"`
	// Violation names a deliberate MQTT 5 misbehaviour do: violate commits
	// instead of writing bytes (violationKinds).
	Violation string `yaml:"violation"`

	// Mode is how restart_broker and stop_broker take the broker down:
	// graceful (default) or kill (SIGKILL, as a crash).
	Mode string `yaml:"mode"`
	// Broker names the broker of brokers: a restart_broker, stop_broker
	// or start_broker acts on (default: the target).
	Broker string `yaml:"broker"`
	// Bridge names the proxied bridge whose link a fault or restore acts on.
	Bridge string `yaml:"bridge"`

	// Kafka step parameters (kafka.go): the Kafka error produce requests
	// fail with, the partition whose leader moves, the watcher acted on.
	Error     string `yaml:"error"`
	Partition *int   `yaml:"partition"`
	Watcher   string `yaml:"watcher"`

	line int
}

// Matcher selects events. Every field set must match; a topic with + or #
// is matched as an MQTT filter, a client with * as a glob.
type Matcher struct {
	Kind    List    `yaml:"kind"`
	Source  string  `yaml:"source"`
	Client  string  `yaml:"client"`
	Group   string  `yaml:"group"`
	Topic   string  `yaml:"topic"`
	Cause   List    `yaml:"cause"`
	QoS     *int    `yaml:"qos"`
	Retain  *bool   `yaml:"retain"`
	Dup     *bool   `yaml:"dup"`
	Payload *string `yaml:"payload"`
	Code    *int    `yaml:"code"`
	// SessionPresent matches CONNACKs by their session present flag.
	SessionPresent *bool  `yaml:"session_present"`
	Statement      string `yaml:"statement"`
	Fault          string `yaml:"fault"`
}

// Window is a span of the run: From..To after the moment a step started
// (After; "start" or empty is the start of the timeline), or up to the moment
// a step started (Until).
type Window struct {
	After string    `yaml:"after"`
	From  Duration  `yaml:"from"`
	To    *Duration `yaml:"to"`
	Until string    `yaml:"until"`
}

// Assertion is one check over the recorded events.
type Assertion struct {
	Name string `yaml:"name"`
	// Expect is the kind of check: count, rate, latency, delivery, counter or record.
	Expect string `yaml:"expect"`
	// Events selects the events checked (count, rate, latency, record).
	Events *Matcher `yaml:"events"`
	// Per splits the events by client, topic, group, device or link; bounds
	// then hold for every key.
	Per string `yaml:"per"`
	// Keys is how many distinct keys Per must find (count).
	Keys *int `yaml:"keys"`
	// During keeps only events inside the window.
	During *Window `yaml:"during"`
	// Within requires every selected event to fall inside the window.
	Within *Window `yaml:"within"`

	// Bounds: numbers for count and rate, durations for latency.
	Equals *Value `yaml:"equals"`
	Min    *Value `yaml:"min"`
	Max    *Value `yaml:"max"`
	// For is how long a rate must hold (rate with min).
	For Duration `yaml:"for"`
	// Percentile is the latency percentile checked (default 99).
	Percentile float64 `yaml:"percentile"`

	// Delivery: messages from publishers (From) to receivers (To).
	From      *Matcher `yaml:"from"`
	To        *Matcher `yaml:"to"`
	MaxLost   *int     `yaml:"max_lost"`
	MaxDup    *int     `yaml:"max_duplicates"`
	Basis     string   `yaml:"basis"`
	MinChecks int      `yaml:"min_messages"`
	// ShareGroup accounts the receivers (To) as the members of one MQTT 5
	// shared subscription: each message is owed once to them together.
	ShareGroup bool `yaml:"share_group"`
	// Order per-key fails the check when a receiver got a publisher's
	// messages out of order more than MaxOutOfOrder times (default 0);
	// MinOutOfOrder, MinLost and MinDup state what a reproduced bug must
	// show (order.go).
	Order         string `yaml:"order"`
	MaxOutOfOrder *int   `yaml:"max_out_of_order"`
	MinOutOfOrder *int   `yaml:"min_out_of_order"`
	MinLost       *int   `yaml:"min_lost"`
	MinDup        *int   `yaml:"min_duplicates"`

	// Counter names a counter of the results (counter checks).
	Counter string `yaml:"counter"`

	// Statements are the normative statements the check is about.
	Statements []string `yaml:"statements"`
	// PerTarget overrides bounds for brokers where the standard leaves a
	// choice: target name -> override.
	PerTarget map[string]Override `yaml:"per_target"`
	// Note explains the check in the results.
	Note string `yaml:"note"`

	line int
}

// Override is what a target changes in an assertion.
type Override struct {
	Equals *Value `yaml:"equals"`
	Min    *Value `yaml:"min"`
	Max    *Value `yaml:"max"`
	// Within replaces the assertion's within window on this target (a
	// broker whose timers are coarser, say).
	Within *Window `yaml:"within"`
	// Record turns the check into a recording: the verdict is pass and the
	// message says what the broker did.
	Record bool `yaml:"record"`
	// Skip skips the check on this target.
	Skip bool   `yaml:"skip"`
	Note string `yaml:"note"`
}
