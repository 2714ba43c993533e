// Package bridgeconf is the configuration of the reference broker's bridges
// (broker/bridge.go): a connection to one or more remote brokers and the
// topics it carries each way. The fields are Mosquitto's bridge options
// under the same names, so a mosquitto.conf connection block carries over
// (ParseMosquitto), and the broker's YAML file takes them as `bridges:`.
//
// Exported API (stable for the scenario targets built on it):
//
//	type Config struct{ Name, Addresses, RoundRobin, Topics, CleanSession, ... }
//	type Topic struct{ Pattern, Direction, QoS, LocalPrefix, RemotePrefix }
//	func ParseTopic(line string) (Topic, error)      // "sensors/# out 1 edge/ cloud/"
//	func ParseMosquitto(name string, r io.Reader) ([]Config, error)
//	func (c *Config) Validate() error                // fills the defaults
//	func (t Topic) LocalFilter() / RemoteFilter() string
//	func (t Topic) ToRemote(local string) (string, bool) / ToLocal(remote string) (string, bool)
package bridgeconf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Directions of a bridge topic, as Mosquitto names them.
const (
	Out  = "out"  // local -> remote
	In   = "in"   // remote -> local
	Both = "both" // each way
)

// Protocol versions of the bridge's remote connection (bridge_protocol_version).
const (
	MQTTv311 = "mqttv311"
	MQTTv50  = "mqttv50"
)

// Defaults (Mosquitto's where it has one).
const (
	DefaultKeepAlive      = 60 * time.Second
	DefaultRestartTimeout = 5 * time.Second  // first wait after a failure
	DefaultRestartMax     = 30 * time.Second // cap of the doubling waits
	DefaultMaxQueued      = 1000             // messages held while the remote is down
)

// Config is one bridge: Mosquitto's `connection <name>` block.
type Config struct {
	// Name names the bridge in events, logs and the state topic.
	Name string `yaml:"name"`
	// Addresses are the remote brokers, host:port (port 1883 when
	// omitted). The first is the primary: without RoundRobin every
	// reconnect tries them in order from the first; with it, from the one
	// after the last used.
	Addresses  []string `yaml:"addresses"`
	RoundRobin bool     `yaml:"round_robin"`
	// Topics are the topic rules in Mosquitto's syntax, one string each:
	// "<pattern> [in|out|both [<qos> [<local-prefix> <remote-prefix>]]]".
	Topics []Topic `yaml:"topics"`
	// CleanSession: the remote session starts clean on every connection;
	// false (Mosquitto's default) keeps it, so messages published remotely
	// while the link was down reach the bridge when it returns.
	CleanSession *bool `yaml:"cleansession"`
	// RemoteClientID is the client ID on the remote broker (default
	// "bridge.<name>"); LocalClientID the one on this broker (default
	// "local.<remote client ID>").
	RemoteClientID string `yaml:"remote_clientid"`
	LocalClientID  string `yaml:"local_clientid"`
	RemoteUsername string `yaml:"remote_username"`
	RemotePassword string `yaml:"remote_password"`
	// Protocol is mqttv311 (default) or mqttv50.
	Protocol string `yaml:"bridge_protocol_version"`
	// TryPrivate (default true) marks the 3.1.1 connection as a bridge
	// (protocol level with its top bit set) so a remote that knows the mark
	// does not send the bridge's own messages back; with 5.0 the bridge
	// subscribes with No Local and Retain As Published instead.
	TryPrivate *bool `yaml:"try_private"`
	// KeepAlive of the remote connection (keepalive_interval).
	KeepAlive Duration `yaml:"keepalive_interval"`
	// RestartTimeout is the first wait after the link fails; each failure
	// doubles it, with jitter, up to RestartMax (Mosquitto's
	// `restart_timeout <base> <cap>`).
	RestartTimeout Duration `yaml:"restart_timeout"`
	RestartMax     Duration `yaml:"restart_timeout_max"`
	// MaxQueued bounds the messages held for the remote while it is down;
	// past it the oldest are dropped, counted and reported.
	MaxQueued int `yaml:"max_queued"`
	// Notifications (default true) keeps the retained state topic: "1"
	// while the link is up, "0" while it is down.
	Notifications     *bool  `yaml:"notifications"`
	NotificationTopic string `yaml:"notification_topic"`
	// CAFile turns on TLS to the remote, verifying it against these CAs;
	// Insecure skips the host name check (bridge_insecure).
	CAFile   string `yaml:"bridge_cafile"`
	Insecure bool   `yaml:"bridge_insecure"`
}

// Topic is one topic rule of a bridge.
type Topic struct {
	// Pattern is the topic filter, without prefixes; "" means the prefix
	// alone is the topic.
	Pattern      string
	Direction    string // In, Out or Both
	QoS          byte
	LocalPrefix  string
	RemotePrefix string
}

// Duration is a time.Duration read from "5s" or from a number of seconds
// (Mosquitto's unit).
type Duration time.Duration

// UnmarshalYAML reads "5s", "1m" or a bare number of seconds.
func (d *Duration) UnmarshalYAML(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("duration %q is negative", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: want seconds (60) or a Go duration (1m30s)", s)
	}
	return d, nil
}

// UnmarshalYAML reads a topic rule from its one-line form.
func (t *Topic) UnmarshalYAML(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a topic rule is one string such as \"sensors/# out 1 edge/ cloud/\": %w", err)
	}
	v, err := ParseTopic(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalYAML writes the one-line form back.
func (t Topic) MarshalYAML() (any, error) { return t.String(), nil }

// String is the rule in Mosquitto's syntax.
func (t Topic) String() string {
	p := t.Pattern
	if p == "" {
		p = `""`
	}
	s := fmt.Sprintf("%s %s %d", p, t.Direction, t.QoS)
	if t.LocalPrefix != "" || t.RemotePrefix != "" {
		s += " " + quoteEmpty(t.LocalPrefix) + " " + quoteEmpty(t.RemotePrefix)
	}
	return s
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// ParseTopic reads "<pattern> [in|out|both [<qos> [<local-prefix> <remote-prefix>]]]"
// (Mosquitto's `topic` line without the keyword; "" for an empty field).
// Direction defaults to out and QoS to 0, as in Mosquitto.
func ParseTopic(line string) (Topic, error) {
	f, err := fields(line)
	if err != nil {
		return Topic{}, err
	}
	if len(f) == 0 {
		return Topic{}, errors.New("topic: no pattern")
	}
	if len(f) > 5 || len(f) == 4 {
		return Topic{}, fmt.Errorf("topic %q: want <pattern> [in|out|both [<qos> [<local-prefix> <remote-prefix>]]]", line)
	}
	t := Topic{Pattern: f[0], Direction: Out}
	if len(f) > 1 {
		switch f[1] {
		case In, Out, Both:
			t.Direction = f[1]
		default:
			return Topic{}, fmt.Errorf("topic %q: direction %q: want in, out or both", line, f[1])
		}
	}
	if len(f) > 2 {
		q, err := strconv.Atoi(f[2])
		if err != nil || q < 0 || q > 2 {
			return Topic{}, fmt.Errorf("topic %q: QoS %q: want 0, 1 or 2", line, f[2])
		}
		t.QoS = byte(q)
	}
	if len(f) == 5 {
		t.LocalPrefix, t.RemotePrefix = f[3], f[4]
	}
	if t.Pattern == "" && t.LocalPrefix == "" && t.RemotePrefix == "" {
		return Topic{}, fmt.Errorf("topic %q: an empty pattern needs a prefix", line)
	}
	for _, flt := range []string{t.LocalFilter(), t.RemoteFilter()} {
		if err := packet.CheckTopicFilter(flt, packet.V311); err != nil {
			return Topic{}, fmt.Errorf("topic %q: %q is not a valid filter: %v", line, flt, err)
		}
	}
	for _, p := range []string{t.LocalPrefix, t.RemotePrefix} {
		if strings.ContainsAny(p, "+#") {
			return Topic{}, fmt.Errorf("topic %q: prefix %q has a wildcard", line, p)
		}
	}
	return t, nil
}

// fields splits on blanks; "" is an empty field.
func fields(line string) ([]string, error) {
	var out []string
	for _, w := range strings.Fields(line) {
		if w == `""` {
			w = ""
		} else if strings.Contains(w, `"`) {
			return nil, fmt.Errorf("%q: quotes only as \"\" for an empty field", w)
		}
		out = append(out, w)
	}
	return out, nil
}

// LocalFilter is the filter the bridge subscribes to on this broker (out).
func (t Topic) LocalFilter() string { return t.LocalPrefix + t.Pattern }

// RemoteFilter is the filter the bridge subscribes to on the remote (in).
func (t Topic) RemoteFilter() string { return t.RemotePrefix + t.Pattern }

// Carries reports whether the rule carries messages in direction dir (In or Out).
func (t Topic) Carries(dir string) bool { return t.Direction == Both || t.Direction == dir }

// ToRemote maps a local topic to its remote name: the local prefix is
// replaced by the remote one. ok is false when topic lacks the local prefix.
func (t Topic) ToRemote(local string) (string, bool) {
	rest, ok := strings.CutPrefix(local, t.LocalPrefix)
	return t.RemotePrefix + rest, ok
}

// ToLocal maps a remote topic to its local name.
func (t Topic) ToLocal(remote string) (string, bool) {
	rest, ok := strings.CutPrefix(remote, t.RemotePrefix)
	return t.LocalPrefix + rest, ok
}

// Clean reports the effective cleansession (default false).
func (c *Config) Clean() bool { return c.CleanSession != nil && *c.CleanSession }

// Private reports the effective try_private (default true).
func (c *Config) Private() bool { return c.TryPrivate == nil || *c.TryPrivate }

// Notify reports the effective notifications (default true).
func (c *Config) Notify() bool { return c.Notifications == nil || *c.Notifications }

// Validate checks the configuration and fills every default in. Errors
// name the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("bridge %q: "+format, append([]any{c.Name}, a...)...))
	}
	if c.Name == "" {
		bad("name: missing")
	} else if strings.ContainsAny(c.Name, "/+# ") {
		bad("name: %q may not hold '/', '+', '#' or blanks (it is a topic level of the state topic)", c.Name)
	}
	if len(c.Addresses) == 0 {
		bad("addresses: none; want host:port of the remote broker")
	}
	c.Addresses = append([]string(nil), c.Addresses...) // filled in below; the caller's slice stays as written
	for i, a := range c.Addresses {
		if !strings.Contains(a, ":") {
			a += ":1883"
			c.Addresses[i] = a
		}
		if _, p, err := net.SplitHostPort(a); err != nil {
			bad("addresses[%d]: %q: %v", i, a, err)
		} else if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			bad("addresses[%d]: %q: port %q", i, a, p)
		}
	}
	if len(c.Topics) == 0 {
		bad("topics: none; a bridge carries nothing without one")
	}
	switch c.Protocol {
	case "":
		c.Protocol = MQTTv311
	case MQTTv311, MQTTv50:
	default:
		bad("bridge_protocol_version: %q: want %s or %s", c.Protocol, MQTTv311, MQTTv50)
	}
	if c.RemoteClientID == "" {
		c.RemoteClientID = "bridge." + c.Name
	}
	if c.LocalClientID == "" {
		c.LocalClientID = "local." + c.RemoteClientID
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = Duration(DefaultKeepAlive)
	}
	if c.RestartTimeout == 0 {
		c.RestartTimeout = Duration(DefaultRestartTimeout)
	}
	if c.RestartMax == 0 {
		c.RestartMax = Duration(max(DefaultRestartMax, c.RestartTimeout.D()))
	}
	if c.RestartMax < c.RestartTimeout {
		bad("restart_timeout_max %s is below restart_timeout %s", c.RestartMax.D(), c.RestartTimeout.D())
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
	} else if c.MaxQueued < 0 {
		bad("max_queued: %d is negative", c.MaxQueued)
	}
	if c.NotificationTopic == "" {
		c.NotificationTopic = "$SYS/broker/connection/" + c.Name + "/state"
	}
	return errors.Join(errs...)
}

// ValidateAll validates each bridge and checks that names are unique.
func ValidateAll(cs []Config) error {
	var errs []error
	seen := map[string]bool{}
	for i := range cs {
		if err := cs[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("bridges[%d]: %w", i, err))
		}
		if seen[cs[i].Name] {
			errs = append(errs, fmt.Errorf("bridges[%d]: name %q used twice", i, cs[i].Name))
		}
		seen[cs[i].Name] = true
	}
	return errors.Join(errs...)
}
