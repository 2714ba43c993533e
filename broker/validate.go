package broker

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
)

// validate reports the first invalid field, by its YAML name. It checks
// every field a start would otherwise trip on (addresses, paths, files), so
// a bad configuration is an error at load and never a panic at start.
func (c Config) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"max_connections", c.MaxConnections}, {"max_packet_size", c.MaxPacketSize}, {"max_connect_size", c.MaxConnectSize},
		{"max_inflight", c.MaxInflight}, {"max_queued", c.MaxQueued}, {"outbound_buffer", c.OutboundBuffer},
		{"max_queued_bytes", c.MaxQueuedBytes}, {"max_subscriptions", c.MaxSubscriptions},
		{"max_topic_length", c.MaxTopicLength}, {"max_topic_levels", c.MaxTopicLevels},
		{"max_retained_messages", c.MaxRetainedMessages}, {"max_retained_bytes", c.MaxRetainedBytes},
		{"topic_alias_maximum", c.TopicAliasMaximum}, {"topic_alias_out", c.TopicAliasOut},
		{"server_keep_alive", c.ServerKeepAlive},
	} {
		if f.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %d", f.name, f.v)
		}
	}
	if c.TopicAliasMaximum > 65535 {
		return fmt.Errorf("topic_alias_maximum: a Topic Alias is at most 65535, got %d", c.TopicAliasMaximum)
	}
	if err := c.validateServer5(); err != nil {
		return err
	}
	if c.MaxInflight > 65535 {
		return fmt.Errorf("max_inflight: at most 65535 packet identifiers exist, got %d", c.MaxInflight)
	}
	// The smallest packets (PINGREQ, DISCONNECT) are 2 bytes; a CONNECT is at least 14.
	if c.MaxTopicLength > 65535 {
		return fmt.Errorf("max_topic_length: a topic has at most 65535 bytes, got %d", c.MaxTopicLength)
	}
	if c.MaxPacketSize > 0 && c.MaxPacketSize < 14 {
		return fmt.Errorf("max_packet_size: %d bytes would refuse every CONNECT (at least 14)", c.MaxPacketSize)
	}
	if c.MaxConnectSize > 0 && c.MaxConnectSize < 14 {
		return fmt.Errorf("max_connect_size: %d bytes would refuse every CONNECT (at least 14)", c.MaxConnectSize)
	}
	for i, p := range c.ClientIDPrefixes {
		if p == "" {
			return fmt.Errorf("client_id_prefixes[%d]: an empty prefix would admit every client ID; remove it, or the list", i)
		}
	}
	if err := bridgeconf.ValidateAll(append([]bridgeconf.Config(nil), c.Bridges...)); err != nil {
		return err
	}
	if c.SysInterval < 0 {
		return fmt.Errorf("sys_interval: must not be negative, got %v", c.SysInterval)
	}
	if c.ConnectTimeout < 0 {
		return fmt.Errorf("connect_timeout: must not be negative, got %v", c.ConnectTimeout)
	}
	if c.MetricsAddr != "" {
		if err := checkAddr(c.MetricsAddr); err != nil {
			return fmt.Errorf("metrics_addr: %w", err)
		}
	}
	for _, f := range []struct{ name, path string }{
		{"auth.password_file", c.Auth.PasswordFile}, {"auth.acl_file", c.Auth.ACLFile},
	} {
		if err := checkFile(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := c.Persistence.validate(); err != nil {
		return fmt.Errorf("persistence.%w", err)
	}
	names := map[string]bool{}
	for i, l := range c.Listeners {
		if err := l.validate(); err != nil {
			return fmt.Errorf("listeners[%d].%w", i, err)
		}
		if l.Name != "" {
			if names[l.Name] {
				return fmt.Errorf("listeners[%d].name: %q used twice", i, l.Name)
			}
			names[l.Name] = true
		}
	}
	return nil
}

// validate checks one listener; errors start with the field's YAML name.
func (l ListenerConfig) validate() error {
	secure := false
	switch l.Type {
	case "tcp", "ws":
	case "tls", "wss":
		secure = true
		if l.CertFile == "" || l.KeyFile == "" {
			return fmt.Errorf("cert_file, key_file: required for type %q", l.Type)
		}
	default:
		return fmt.Errorf("type: want tcp, ws, tls or wss, got %q", l.Type)
	}
	if l.Addr == "" {
		return fmt.Errorf("addr: required")
	}
	if err := checkAddr(l.Addr); err != nil {
		return fmt.Errorf("addr: %w", err)
	}
	if l.Type == "ws" || l.Type == "wss" {
		if err := checkWSPath(l.Path); err != nil {
			return fmt.Errorf("path: %w", err)
		}
	} else if l.Path != "" {
		return fmt.Errorf("path: only ws and wss listeners have a path, this one is %q", l.Type)
	}
	for _, f := range []struct{ name, path string }{
		{"cert_file", l.CertFile}, {"key_file", l.KeyFile}, {"client_ca_file", l.ClientCAFile},
	} {
		if f.path != "" && !secure {
			return fmt.Errorf("%s: only tls and wss listeners use it, this one is %q", f.name, l.Type)
		}
		if err := checkFile(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if l.RequireClientCert && l.ClientCAFile == "" {
		return fmt.Errorf("client_ca_file: required with require_client_cert")
	}
	return nil
}

// checkAddr accepts host:port with a numeric port (0 picks a free one) or
// a service name the resolver knows; the host may be empty (all addresses).
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q: %w", addr, err)
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return fmt.Errorf("host %q: not a host name or address", host)
	}
	if port == "" {
		return fmt.Errorf("port missing in %q (0 picks a free one)", addr)
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Errorf("port %d: want 0 to 65535", n)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q: %w", port, err)
	}
	return nil
}

// checkWSPath accepts "" (DefaultWSPath) or an absolute URL path that
// http.ServeMux takes as a plain path: no host part, wildcard or method.
func checkWSPath(p string) error {
	if p == "" {
		return nil
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with /, as in %q", p, "/"+p)
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("{}?#%\\", r) {
			return fmt.Errorf("%q: character %q is not allowed in a listener path", p, r)
		}
	}
	_, err := wsMux(p, http.NotFound)
	return err
}

// wsMux routes path to h. ServeMux panics on a pattern it does not take:
// that becomes an error, so no configuration can crash a start.
func wsMux(path string, h http.HandlerFunc) (mux *http.ServeMux, err error) {
	defer func() {
		if r := recover(); r != nil {
			mux, err = nil, fmt.Errorf("%q: not a valid path: %v", path, r)
		}
	}()
	mux = http.NewServeMux()
	mux.HandleFunc(path, h)
	return mux, nil
}

// checkFile accepts "" (unset) or a readable regular file.
func checkFile(path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// validate checks the persistence section; errors start with the field's
// YAML name. The other fields are checked even while it is off, so turning
// it on later is no surprise.
func (p PersistenceConfig) validate() error {
	switch p.Sync {
	case "", SyncEveryWrite, SyncInterval:
	default:
		return fmt.Errorf("sync: %q is neither %s nor %s", p.Sync, SyncEveryWrite, SyncInterval)
	}
	switch {
	case p.Interval < 0:
		return fmt.Errorf("interval: must not be negative, got %v", p.Interval)
	case p.Interval > 0 && p.Sync != SyncInterval:
		return fmt.Errorf("interval: %v is only used with sync: %s", p.Interval, SyncInterval)
	}
	switch p.OnCorrupt {
	case "", OnCorruptRefuse, OnCorruptStartEmpty:
	default:
		return fmt.Errorf("on_corrupt: %q is neither %s nor %s", p.OnCorrupt, OnCorruptRefuse, OnCorruptStartEmpty)
	}
	if !p.Enabled {
		return nil
	}
	if p.Path == "" {
		return fmt.Errorf("path: required when persistence is enabled")
	}
	if fi, err := os.Stat(p.Path); err == nil && fi.IsDir() {
		return fmt.Errorf("path: %s is a directory, not a store file", p.Path)
	}
	dir := filepath.Dir(p.Path)
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("path: directory %s: %w", dir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("path: %s is not a directory", dir)
	}
	return nil
}
