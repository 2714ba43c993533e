package broker

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/mqttfleet/mqttfleet/broker/auth"
	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/yamlpos"
)

// Config is the broker's configuration. The zero value of a limit means
// "use the default"; DefaultConfig returns the defaults filled in.
type Config struct {
	// Listeners are the sockets the broker accepts connections on.
	Listeners []ListenerConfig `yaml:"listeners"`
	// Auth selects anonymous access, the password file and the ACL file.
	Auth auth.Config `yaml:"auth"`
	// MaxConnections refuses (CONNACK 3) connections beyond this many; 0 = no limit.
	MaxConnections int `yaml:"max_connections"`
	// MaxPacketSize closes connections that send a larger packet; 0 = protocol maximum.
	MaxPacketSize int `yaml:"max_packet_size"`
	// MaxConnectSize closes connections whose first packet is larger, before
	// CONNECT is accepted (and before authentication); 0 = DefaultMaxConnectSize.
	MaxConnectSize int `yaml:"max_connect_size"`
	// MaxInflight is the per-client window of outgoing QoS 1/2 messages awaiting acknowledgement.
	MaxInflight int `yaml:"max_inflight"`
	// MaxQueued bounds the QoS 1/2 messages held per session behind the inflight window or while offline.
	MaxQueued int `yaml:"max_queued"`
	// MaxQueuedBytes bounds the topic and payload bytes of the messages in a session's queue; 0 = default.
	MaxQueuedBytes int `yaml:"max_queued_bytes"`
	// MaxSubscriptions bounds the subscriptions one session holds; 0 = default.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// MaxTopicLength bounds the bytes of a published topic or a subscribed filter; 0 = default (the protocol's 65535).
	MaxTopicLength int `yaml:"max_topic_length"`
	// MaxTopicLevels bounds the levels of a published topic or a subscribed filter; 0 = default.
	MaxTopicLevels int `yaml:"max_topic_levels"`
	// MaxRetainedMessages bounds the retained messages stored; 0 = default.
	MaxRetainedMessages int `yaml:"max_retained_messages"`
	// MaxRetainedBytes bounds the topic and payload bytes of the retained messages stored; 0 = default.
	MaxRetainedBytes int `yaml:"max_retained_bytes"`
	// TopicAliasMaximum is the highest Topic Alias an MQTT 5 client may use
	// in a PUBLISH to the broker (advertised in CONNACK); 0 = no aliases.
	// Unlike the limits, 0 is not replaced by the default: DefaultConfig and
	// configuration files start from DefaultTopicAliasMaximum.
	TopicAliasMaximum int `yaml:"topic_alias_maximum"`
	// MQTT 5.0 server-side knobs (see server5.go and docs/broker.md "MQTT 5.0").
	// TopicAliasOut is how many Topic Aliases the broker assigns on one
	// connection to an MQTT 5 client that allows them (its Topic Alias
	// Maximum caps it); 0 = the broker sends none. Like TopicAliasMaximum,
	// 0 is not replaced: DefaultConfig starts from DefaultTopicAliasOut.
	TopicAliasOut int `yaml:"topic_alias_out"`
	// ServerKeepAlive, in seconds, replaces the Keep Alive of an MQTT 5
	// client (sent as Server Keep Alive in CONNACK); 0 = the client's applies.
	ServerKeepAlive int `yaml:"server_keep_alive"`
	// ResponseInformation is sent as Response Information in the CONNACK
	// of an MQTT 5 client that asks for it; "" = none is sent.
	ResponseInformation string `yaml:"response_information"`
	// MaximumQoS is the highest QoS the broker accepts from MQTT 5 clients
	// and grants to anyone (0, 1 or 2); nil = 2. A pointer so a Config
	// written out by hand does not become a QoS 0 broker.
	MaximumQoS *int `yaml:"maximum_qos"`
	// RetainAvailable false: no message is retained, and MQTT 5 clients are
	// told so and refused retained publishes and wills; nil = true.
	RetainAvailable *bool `yaml:"retain_available"`
	// ClientIDPrefixes, when not empty, admits only Client Identifiers
	// starting with one of them, as Mosquitto's clientid_prefixes does: any
	// other is refused with CONNACK 0x02 (3.1.1) or 0x85 (5.0)
	// [MQTT-3.1.3-9] [MQTT-3.1.3-8]. An identifier the broker assigns to an
	// empty one is its own and is not checked.
	ClientIDPrefixes []string `yaml:"client_id_prefixes"`
	// Persistence keeps retained messages and persistent sessions in a
	// store file across restarts (persist.go, docs/broker.md "Persistence").
	Persistence PersistenceConfig `yaml:"persistence"`
	// Bridges connect this broker to remote ones (bridge.go; docs/broker.md
	// "Bridges"): Mosquitto's bridge options under the same names.
	Bridges []bridgeconf.Config `yaml:"bridges"`
	// BridgeConf names a mosquitto.conf whose `connection` blocks are added
	// to Bridges (LoadConfig reads it; relative to the config file).
	BridgeConf string `yaml:"bridge_conf"`
	// OutboundBuffer bounds the packets queued per connection for writing; QoS 0 messages beyond it are dropped.
	OutboundBuffer int `yaml:"outbound_buffer"`
	// ConnectTimeout closes connections that send no CONNECT within it.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// SysInterval is the period of the $SYS/ topics; 0 turns them off.
	SysInterval time.Duration `yaml:"sys_interval"`
	// MetricsAddr serves Prometheus /metrics on this address; "" turns it off.
	MetricsAddr string `yaml:"metrics_addr"`
	// Events receives an event for every decision the broker makes; nil discards them.
	Events events.Sink `yaml:"-"`
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger `yaml:"-"`
}

// PersistenceConfig is the persistence: section (docs/broker.md "Persistence").
type PersistenceConfig struct {
	// Enabled turns the store on; off, the broker keeps everything in memory only.
	Enabled bool `yaml:"enabled"`
	// Path is the store file (created when missing; its directory must exist).
	Path string `yaml:"path"`
	// Sync is when writes become durable: "every_write" (the default: an
	// acknowledgement that promises state is sent after it is on disk) or
	// "interval" (once per Interval; a crash loses up to one interval).
	Sync string `yaml:"sync"`
	// Interval is the commit period of sync: interval; default 1s.
	Interval time.Duration `yaml:"interval"`
	// OnCorrupt is what a store file that cannot be read does at start:
	// "refuse" (the default: the broker does not start) or "start_empty"
	// (the file is moved aside, kept, and the broker starts with nothing).
	OnCorrupt string `yaml:"on_corrupt"`
}

// Persistence sync policies and corrupt-store answers (PersistenceConfig).
const (
	SyncEveryWrite      = "every_write"
	SyncInterval        = "interval"
	OnCorruptRefuse     = "refuse"
	OnCorruptStartEmpty = "start_empty"
	DefaultSyncInterval = time.Second
)

// ListenerConfig is one socket the broker listens on.
type ListenerConfig struct {
	// Name identifies the listener in Addrs and logs; default "<type><index>".
	Name string `yaml:"name"`
	// Type is "tcp", "ws", "tls" or "wss".
	Type string `yaml:"type"`
	// Addr is host:port; "127.0.0.1:0" picks a free port.
	Addr string `yaml:"addr"`
	// Path is the WebSocket path (ws and wss); default "/mqtt".
	Path string `yaml:"path"`
	// CertFile and KeyFile are the PEM server certificate and key (tls and wss).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile verifies client certificates when set (tls and wss).
	ClientCAFile string `yaml:"client_ca_file"`
	// RequireClientCert refuses TLS handshakes without a valid client certificate.
	RequireClientCert bool `yaml:"require_client_cert"`
}

// ListenerAddr is where a started listener accepts connections.
type ListenerAddr struct {
	Name string
	Type string
	Addr string // URL: tcp://127.0.0.1:54321, ws://127.0.0.1:5/mqtt
}

// Defaults used when a Config field is zero.
const (
	DefaultMaxInflight    = 20
	DefaultMaxQueued      = 1000
	DefaultOutboundBuffer = 1024
	DefaultConnectTimeout = 10 * time.Second
	DefaultWSPath         = "/mqtt"
	// DefaultTopicAliasMaximum is the Topic Alias Maximum of DefaultConfig.
	DefaultTopicAliasMaximum = 10
	// DefaultTopicAliasOut is the TopicAliasOut of DefaultConfig.
	DefaultTopicAliasOut = 10

	DefaultMaxQueuedBytes      = 64 << 20
	DefaultMaxSubscriptions    = 10_000
	DefaultMaxTopicLength      = 65535 // the protocol's own bound
	DefaultMaxTopicLevels      = 128
	DefaultMaxRetainedMessages = 1_000_000
	DefaultMaxRetainedBytes    = 1 << 30
	// DefaultMaxConnectSize is the largest legal MQTT 3.1/3.1.1 CONNECT: the
	// variable header of 3.1 ("MQIsdp", 12 bytes) and five length-prefixed
	// fields of at most 65535 bytes (client ID, will topic, will message,
	// user name, password), plus its 4-byte fixed header: 327,701 bytes.
	DefaultMaxConnectSize = 4 + 12 + 5*(2+65535)
)

// DefaultConfig returns a configuration with one TCP listener on
// 127.0.0.1:1883, anonymous access and the default limits.
func DefaultConfig() Config {
	return Config{
		Listeners:      []ListenerConfig{{Name: "tcp", Type: "tcp", Addr: "127.0.0.1:1883"}},
		Auth:           auth.Config{AllowAnonymous: true},
		MaxInflight:    DefaultMaxInflight,
		MaxQueued:      DefaultMaxQueued,
		OutboundBuffer: DefaultOutboundBuffer,
		ConnectTimeout: DefaultConnectTimeout,

		TopicAliasMaximum: DefaultTopicAliasMaximum,
		TopicAliasOut:     DefaultTopicAliasOut,
	}
}

// LoadConfig reads a YAML configuration file over DefaultConfig. Unknown
// fields are errors; errors name the file, the line and the field.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read broker config: %w", err)
	}
	// Listeners in the file replace the default one rather than merging by index.
	cfg.Listeners = nil
	if err := yamlpos.Unmarshal(data, &cfg, yaml.DisallowUnknownField()); err != nil {
		if p, ok := yamlpos.Explain(err); ok {
			return cfg, &ConfigError{File: path, Line: p.Line, Msg: p.Msg, Err: err}
		}
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Listeners == nil {
		cfg.Listeners = DefaultConfig().Listeners
	}
	if cfg.BridgeConf != "" {
		bp := cfg.BridgeConf
		if !filepath.IsAbs(bp) {
			bp = filepath.Join(filepath.Dir(path), bp)
		}
		f, err := os.Open(bp)
		if err != nil {
			return cfg, fmt.Errorf("%s: bridge_conf: %w", path, err)
		}
		bs, err := bridgeconf.ParseMosquitto(bp, f)
		_ = f.Close()
		if err != nil {
			return cfg, fmt.Errorf("%s: bridge_conf: %w", path, err)
		}
		cfg.Bridges = append(cfg.Bridges, bs...)
	}
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ConfigError is a configuration file error at a line; it reads
// "file:line: message" and unwraps to the YAML decoder's error.
type ConfigError struct {
	File string
	Line int
	Msg  string
	Err  error
}

// Error names the file, the line and what is wrong there.
func (e *ConfigError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Unwrap returns the decoder's error (with the source excerpt).
func (e *ConfigError) Unwrap() error { return e.Err }

// withDefaults fills zero limits with their defaults.
func (c Config) withDefaults() Config {
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.OutboundBuffer == 0 {
		c.OutboundBuffer = DefaultOutboundBuffer
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxConnectSize == 0 {
		c.MaxConnectSize = DefaultMaxConnectSize
	}
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&c.MaxQueuedBytes, DefaultMaxQueuedBytes}, {&c.MaxSubscriptions, DefaultMaxSubscriptions},
		{&c.MaxTopicLength, DefaultMaxTopicLength}, {&c.MaxTopicLevels, DefaultMaxTopicLevels},
		{&c.MaxRetainedMessages, DefaultMaxRetainedMessages}, {&c.MaxRetainedBytes, DefaultMaxRetainedBytes},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	c.Bridges = append([]bridgeconf.Config(nil), c.Bridges...)
	_ = bridgeconf.ValidateAll(c.Bridges) // validate reported any error; this fills the defaults in
	c.Listeners = append([]ListenerConfig(nil), c.Listeners...)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			l.Name = fmt.Sprintf("%s%d", l.Type, i)
		}
		if (l.Type == "ws" || l.Type == "wss") && l.Path == "" {
			l.Path = DefaultWSPath
		}
	}
	return c
}

// connectLimit is the largest first packet accepted: max_connect_size, or
// max_packet_size where that is smaller.
func (c Config) connectLimit() int {
	if c.MaxPacketSize > 0 && c.MaxPacketSize < c.MaxConnectSize {
		return c.MaxPacketSize
	}
	return c.MaxConnectSize
}
