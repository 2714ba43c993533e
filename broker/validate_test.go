package broker

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFieldsChecked: every field a start would trip on is refused at
// load, by its YAML name, and nothing panics (a ws path without its leading
// / used to panic Start inside http.ServeMux).
func TestConfigFieldsChecked(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "exists.pem")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{`listeners: [{type: ws, addr: "127.0.0.1:0", path: mqtt}]`, `listeners[0].path: "mqtt" must start with /`},
		{`listeners: [{type: wss, addr: "127.0.0.1:0", path: "a b", cert_file: ` + file + `, key_file: ` + file + `}]`, `listeners[0].path:`},
		{`listeners: [{type: ws, addr: "127.0.0.1:0", path: "/{x}"}]`, `listeners[0].path:`},
		{`listeners: [{type: tcp, addr: "127.0.0.1:0", path: /mqtt}]`, `listeners[0].path: only ws and wss`},
		{`listeners: [{type: tcp, addr: "127.0.0.1"}]`, `listeners[0].addr: want host:port`},
		{`listeners: [{type: tcp, addr: "127.0.0.1:70000"}]`, `listeners[0].addr: port 70000`},
		{`listeners: [{type: tcp, addr: "127.0.0.1:"}]`, `listeners[0].addr: port missing`},
		{`listeners: [{type: tls, addr: "127.0.0.1:0", cert_file: /nonexistent.pem, key_file: ` + file + `}]`, `listeners[0].cert_file:`},
		{`listeners: [{type: tls, addr: "127.0.0.1:0", cert_file: ` + file + `, key_file: ` + dir + `}]`, `listeners[0].key_file:`},
		{`listeners: [{type: tcp, addr: "127.0.0.1:0", client_ca_file: ` + file + `}]`, `listeners[0].client_ca_file: only tls and wss`},
		{`auth: {acl_file: /nonexistent.acl}`, `auth.acl_file:`},
		{`auth: {password_file: ` + dir + `}`, `auth.password_file:`},
		{`metrics_addr: "localhost"`, `metrics_addr: want host:port`},
		{`max_connect_size: -1`, `max_connect_size: must not be negative`},
		{`max_connect_size: 5`, `max_connect_size: 5 bytes`},
		{`max_packet_size: 3`, `max_packet_size: 3 bytes`},
		{`connect_timeout: -1s`, `connect_timeout: must not be negative`},
		{`sys_interval: -1s`, `sys_interval: must not be negative`},
		{`maximum_qos: 3`, `maximum_qos: 0, 1 or 2, got 3`},
		{`maximum_qos: -1`, `maximum_qos: 0, 1 or 2, got -1`},
		{`topic_alias_out: 70000`, `topic_alias_out: a Topic Alias is at most 65535`},
		{`topic_alias_out: -1`, `topic_alias_out: must not be negative`},
		{`server_keep_alive: 65536`, `server_keep_alive: at most 65535 seconds`},
		{`server_keep_alive: -5`, `server_keep_alive: must not be negative`},
		{`client_id_prefixes: [dev-, ""]`, `client_id_prefixes[1]: an empty prefix would admit every client ID`},
	} {
		path := filepath.Join(dir, "broker.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s\n  got error %v\n  want one naming %s and containing %q", tc.yaml, err, path, tc.want)
		}
	}
}

// TestWSPathWithoutSlashNoPanic: the configuration that panicked at start
// is an error from New, and from Start for a config that bypassed New's check.
func TestWSPathWithoutSlashNoPanic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Type: "ws", Addr: "127.0.0.1:0", Path: "mqtt"}}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "path") {
		t.Fatalf("New: %v, want a path error", err)
	}
	if _, err := wsMux("mqtt", http.NotFound); err == nil {
		t.Fatal("wsMux accepted a path without /")
	}
}

// FuzzLoadConfig: no YAML text makes the loader, validation or New panic;
// a configuration that loads also builds its WebSocket routes.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"listeners:\n  - {name: main, type: tcp, addr: \"127.0.0.1:0\"}\n  - {type: ws, addr: \"127.0.0.1:0\", path: /mqtt}\n",
		"listeners: [{type: ws, addr: \"127.0.0.1:0\", path: mqtt}]",
		"auth: {allow_anonymous: true}\nmax_connections: 100\nmax_inflight: 5\nsys_interval: 10s\n",
		"max_packet_size: 1000\nmax_connect_size: 500\nconnect_timeout: 1s\nmetrics_addr: \"127.0.0.1:0\"\n",
		"listeners: [{type: tls, addr: \":8883\", cert_file: a, key_file: b, require_client_cert: true}]",
		"max_inflight: 99999999999999999999",
		"listeners: {type: tcp}",
		"&a [*a]",
		"listeners: !x {a: 1}", // go-yaml v1.19.2 panicked on this (found by make fuzz in CI)
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "broker.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		b, err := New(cfg)
		if err != nil {
			return // auth files named by the fuzzer may fail to parse
		}
		_ = b.Close()
		for i, l := range b.cfg.Listeners {
			if l.Type == "ws" || l.Type == "wss" {
				if _, err := wsMux(l.Path, http.NotFound); err != nil {
					t.Fatalf("listeners[%d] passed validation but its path does not route: %v", i, err)
				}
			}
		}
	})
}
