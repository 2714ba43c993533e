// Package profile describes a simulated device fleet: who the devices are
// (count, client-ID template, credentials, session, keepalive, will), what
// they do (subscriptions, publishing schedule, payloads), how they live
// (ramp-up, online time, churn, reconnect policy) and how they reach the
// broker (transport, source addresses, netem proxy).
//
// A Profile is plain data: write it in YAML (Parse, Load) or build it in Go,
// then call Validate. Errors name the field and, for YAML, its line.
package profile

import "time"

// Profile is a whole fleet: one or more device groups sharing a run.
type Profile struct {
	// Name labels the run in results and metrics.
	Name string `yaml:"name"`
	// Broker is the default broker address (host:port, or a tcp://, ws://,
	// tls:// or wss:// URL); the command line may override it.
	Broker string `yaml:"broker"`
	// Seed is the run seed; every device derives its own from it and its index.
	Seed uint64 `yaml:"seed"`
	// Duration is how long devices publish; zero runs until cancelled.
	Duration time.Duration `yaml:"duration"`
	// Drain is how long receivers keep listening after publishing stops
	// before unreceived messages count as lost (default 2 s).
	Drain time.Duration `yaml:"drain"`
	// MaxConnecting bounds connect attempts in flight at once, over the
	// whole process (default 96). A burst past the broker's listen backlog
	// loses SYNs, and each lost SYN costs a device a 1 s (then 3 s, 7 s)
	// retransmission: fewer attempts at once connect a fleet faster. 96 stays
	// under Mosquitto's backlog of 100, so its accept queue cannot overflow.
	MaxConnecting int `yaml:"max_connecting"`
	// Groups are the device groups; device indexes run through them in order.
	Groups []Group `yaml:"groups"`
}

// Group is a set of identical devices, told apart by their index.
type Group struct {
	// Name labels the group's devices in events and results.
	Name string `yaml:"name"`
	// Count is how many devices the group has.
	Count int `yaml:"count"`
	// ClientID is a template over the device (see Vars); equal results are
	// allowed on purpose, e.g. "dev-{{mod .Index 500}}" to share IDs.
	ClientID string `yaml:"client_id"`
	// Username and Password are templates; empty sends none.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Protocol is the MQTT protocol level: 4 (3.1.1, default) or 5.
	Protocol int `yaml:"protocol"`
	// CleanSession asks for a fresh session on every connect (default true).
	CleanSession *bool `yaml:"clean_session"`
	// KeepAlive is sent in CONNECT (default 30 s; zero disables).
	KeepAlive *time.Duration `yaml:"keepalive"`
	// Will is the device's will message; nil sends none.
	Will *Will `yaml:"will"`
	// Subscriptions are made after every successful connect.
	Subscriptions []Subscription `yaml:"subscriptions"`
	// Publish is the publishing schedule; nil publishes nothing.
	Publish *Publish `yaml:"publish"`
	// Lifecycle is how devices come up, stay and churn.
	Lifecycle Lifecycle `yaml:"lifecycle"`
	// Reconnect is what a device does after losing its link.
	Reconnect Reconnect `yaml:"reconnect"`
	// Transport is how devices reach the broker.
	Transport Transport `yaml:"transport"`
	// SourceAddresses are local IPs to bind, used round-robin by device index
	// (each gives ~28k outgoing connections to one broker port).
	SourceAddresses []string `yaml:"source_addresses"`
	// Netem places the group behind a fault proxy.
	Netem *Netem `yaml:"netem"`

	// MQTT 5 knobs; each is refused on a group whose protocol is not 5.

	// SessionExpiry is the CONNECT Session Expiry Interval: a duration in
	// whole seconds, or "never" (0xFFFFFFFF). Empty sends none (0: the
	// session ends with the connection).
	SessionExpiry string `yaml:"session_expiry"`
	// ReceiveMaximum is the CONNECT Receive Maximum (1..65535); zero sends none.
	ReceiveMaximum int `yaml:"receive_maximum"`
	// UserProperties are sent in CONNECT and on every PUBLISH; their values
	// are templates over the device (see Vars).
	UserProperties []UserProperty `yaml:"user_properties"`
	// MessageExpiry is the Message Expiry Interval of every PUBLISH, in
	// whole seconds; zero sends none. Needs publish.
	MessageExpiry time.Duration `yaml:"message_expiry"`
	// ResponseTopic is a template over the device, sent as the Response
	// Topic of every PUBLISH (request/response devices). Needs publish.
	ResponseTopic string `yaml:"response_topic"`
	// ContentType is the Content Type of every PUBLISH. Needs publish.
	ContentType string `yaml:"content_type"`
	// TopicAlias has devices send Topic Aliases on their PUBLISHes, up to
	// the broker's Topic Alias Maximum (none when it gives 0): the first
	// PUBLISH on a topic sets an alias, later ones send only the alias.
	// Needs publish.
	TopicAlias bool `yaml:"topic_alias"`
}

// UserProperty is one MQTT 5 user property; Value is a template.
type UserProperty struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// HasV5Knobs says whether the group sets any MQTT 5 knob.
func (g *Group) HasV5Knobs() bool {
	return g.SessionExpiry != "" || g.ReceiveMaximum != 0 || len(g.UserProperties) > 0 ||
		g.MessageExpiry != 0 || g.ResponseTopic != "" || g.ContentType != "" || g.TopicAlias
}

// SessionExpiryNever is the Session Expiry Interval "never" stands for.
const SessionExpiryNever = 0xFFFFFFFF

// SessionExpirySeconds returns the Session Expiry Interval the group sends,
// and whether it sends one. Call it on a validated profile.
func (g *Group) SessionExpirySeconds() (uint32, bool) {
	s, ok, _ := parseSessionExpiry(g.SessionExpiry)
	return s, ok
}

// Will is a will message; Topic and Payload are templates.
type Will struct {
	Topic   string `yaml:"topic"`
	Payload string `yaml:"payload"`
	QoS     int    `yaml:"qos"`
	Retain  bool   `yaml:"retain"`
}

// Subscription is one topic filter (a template) with its QoS.
type Subscription struct {
	Filter string `yaml:"filter"`
	QoS    int    `yaml:"qos"`
}

// Publish is a device's publishing schedule.
type Publish struct {
	// Interval between messages; each wait is Interval +/- a uniform Jitter.
	Interval time.Duration `yaml:"interval"`
	Jitter   time.Duration `yaml:"jitter"`
	// QoS and Retain of every message.
	QoS    int  `yaml:"qos"`
	Retain bool `yaml:"retain"`
	// Topic is a template over the device (not the sequence number, so that
	// receivers know in advance who publishes where).
	Topic string `yaml:"topic"`
	// Count caps the messages per device; zero is unlimited.
	Count int `yaml:"count"`
	// Payload says what follows the measurement header.
	Payload Payload `yaml:"payload"`
	// NoHeader leaves out the measurement header (loss and latency are then
	// not measured for this group's messages).
	NoHeader bool `yaml:"no_header"`
}

// Payload kinds.
const (
	PayloadFixed      = "fixed"       // Size bytes in total, header included
	PayloadTemplate   = "template"    // Template rendered per message
	PayloadRandomWalk = "random_walk" // JSON sensor reading following a random walk
	PayloadSine       = "sine"        // JSON sensor reading following a sine wave
)

// Payload is what a message carries after its header.
type Payload struct {
	// Kind is fixed (default), template, random_walk or sine.
	Kind string `yaml:"kind"`
	// Size is the total payload size for fixed (at least the header size).
	Size int `yaml:"size"`
	// Template is rendered per message for kind template; it sees Vars plus
	// .Seq and .Time.
	Template string `yaml:"template"`
	// Start, Step, Min and Max shape a random walk.
	Start float64 `yaml:"start"`
	Step  float64 `yaml:"step"`
	Min   float64 `yaml:"min"`
	Max   float64 `yaml:"max"`
	// Amplitude, Offset and Period shape a sine; devices get a random phase.
	Amplitude float64       `yaml:"amplitude"`
	Offset    float64       `yaml:"offset"`
	Period    time.Duration `yaml:"period"`
}

// Lifecycle is how devices come online, how long they stay and how they churn.
type Lifecycle struct {
	// Rate brings devices up at this many per second, in index order across
	// the whole fleet (shards included). Zero with zero Spread starts all at once.
	Rate float64 `yaml:"rate"`
	// Spread starts each device at a seeded uniform time in [0, Spread).
	Spread time.Duration `yaml:"spread"`
	// Online is how long a device stays connected before leaving for good;
	// zero stays until the run ends.
	Online time.Duration `yaml:"online"`
	// Churn disconnects online devices at random.
	Churn *Churn `yaml:"churn"`
}

// Churn modes.
const (
	ChurnClean = "clean" // send DISCONNECT, then close
	ChurnDrop  = "drop"  // close the link without DISCONNECT (the will fires)
)

// Churn is random disconnection.
type Churn struct {
	// Every is how often each online device rolls the dice.
	Every time.Duration `yaml:"every"`
	// Probability of leaving at each roll, in [0, 1].
	Probability float64 `yaml:"probability"`
	// Mode is clean (default) or drop.
	Mode string `yaml:"mode"`
	// Offline is how long a churned device waits before connecting again
	// (zero: reconnect at once). The reconnect policy does not apply: this
	// is a deliberate leave, not a failure.
	Offline time.Duration `yaml:"offline"`
}

// Reconnect policies.
const (
	ReconnectNone        = "none"
	ReconnectFixed       = "fixed"
	ReconnectExponential = "exponential"
)

// Reconnect is what a device does after its link fails or is refused.
type Reconnect struct {
	// Policy is none (default), fixed or exponential.
	Policy string `yaml:"policy"`
	// Delay is the fixed delay, or the first delay of an exponential backoff.
	Delay time.Duration `yaml:"delay"`
	// Max caps exponential delays (default 30 s).
	Max time.Duration `yaml:"max"`
	// Multiplier grows exponential delays (default 2).
	Multiplier float64 `yaml:"multiplier"`
	// Jitter spreads each delay by a seeded uniform factor in [-Jitter, +Jitter], in [0, 1).
	Jitter float64 `yaml:"jitter"`
	// MaxAttempts stops after this many failed attempts in a row; zero is unlimited.
	MaxAttempts int `yaml:"max_attempts"`
	// ResetAfter is how long a connection must last before the backoff
	// starts again from Delay; zero resets it at every CONNACK. With it, a
	// link taken over right after CONNACK (a twin with the same client ID)
	// or cut at once keeps the wait growing, so twins damp their kick loop.
	ResetAfter time.Duration `yaml:"reset_after"`
}

// Transport kinds.
const (
	TransportTCP = "tcp"
	TransportWS  = "ws"
	TransportTLS = "tls"
	TransportWSS = "wss"
)

// Transport is how devices reach the broker.
type Transport struct {
	// Kind is tcp (default), ws, tls or wss.
	Kind string `yaml:"kind"`
	// Path is the WebSocket path (default /mqtt).
	Path string `yaml:"path"`
	// InsecureSkipVerify skips TLS certificate checks (test brokers).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// ServerName overrides the TLS server name.
	ServerName string `yaml:"server_name"`
}

// Netem places a group behind a fault proxy. With neither Proxy nor
// Namespace, the group's devices go through the in-process proxy the
// fleet was given (simulator.Config.Netem), as netem group Group.
type Netem struct {
	// Proxy is the address of a running netem proxy (mqttfleet netem) to
	// dial instead of the broker.
	Proxy string `yaml:"proxy"`
	// Group names the devices' links in the in-process proxy (default: the
	// device group's name), so faults can address them with ByGroup.
	Group string `yaml:"group"`
	// Namespace is a network namespace for the kernel backend. The
	// simulator does not enter namespaces itself: run it inside one
	// (ip netns exec NAME mqttfleet simulate ...); a profile naming one is refused.
	Namespace string `yaml:"namespace"`
}

// Defaults applied by Validate to zero fields.
const (
	DefaultKeepAlive     = 30 * time.Second
	DefaultDrain         = 2 * time.Second
	DefaultMaxDelay      = 30 * time.Second
	DefaultWSPath        = "/mqtt"
	DefaultMaxConnecting = 96
)

// IsClean reports whether the group asks for clean sessions (default true).
func (g *Group) IsClean() bool { return g.CleanSession == nil || *g.CleanSession }

// KeepAliveOrDefault returns the group's keepalive.
func (g *Group) KeepAliveOrDefault() time.Duration {
	if g.KeepAlive == nil {
		return DefaultKeepAlive
	}
	return *g.KeepAlive
}

// Devices returns the total device count over every group.
func (p *Profile) Devices() int {
	n := 0
	for i := range p.Groups {
		n += p.Groups[i].Count
	}
	return n
}

// GroupOf returns the group holding global device index i and the index of
// the first device of that group, or nil when i is out of range.
func (p *Profile) GroupOf(i int) (*Group, int) {
	base := 0
	for g := range p.Groups {
		if i < base+p.Groups[g].Count {
			return &p.Groups[g], base
		}
		base += p.Groups[g].Count
	}
	return nil, 0
}
