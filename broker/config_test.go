package broker

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestLoadConfig checks YAML loading: fields, defaults, and errors that name
// the file, the line and the field.
func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml string
		wantErr    []string // substrings of the error; nil: success
		check      func(t *testing.T, c Config)
	}{
		{name: "full", yaml: `
listeners:
  - {name: main, type: tcp, addr: "127.0.0.1:0"}
  - {type: ws, addr: "127.0.0.1:0"}
auth: {allow_anonymous: true}
max_connections: 100
max_inflight: 5
sys_interval: 10s
metrics_addr: "127.0.0.1:0"
`, check: func(t *testing.T, c Config) {
			if len(c.Listeners) != 2 || c.Listeners[0].Name != "main" || c.MaxInflight != 5 || c.SysInterval != 10*time.Second || c.MaxQueued != DefaultMaxQueued {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "mqtt5 knobs", yaml: `
maximum_qos: 1
retain_available: false
server_keep_alive: 30
response_information: "resp/"
topic_alias_out: 0
`, check: func(t *testing.T, c Config) {
			if c.MaximumQoS == nil || *c.MaximumQoS != 1 || c.RetainAvailable == nil || *c.RetainAvailable ||
				c.ServerKeepAlive != 30 || c.ResponseInformation != "resp/" || c.TopicAliasOut != 0 {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "mqtt5 defaults", yaml: "{}\n", check: func(t *testing.T, c Config) {
			if c.MaximumQoS != nil || c.RetainAvailable != nil || c.ServerKeepAlive != 0 || c.TopicAliasOut != DefaultTopicAliasOut {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "unknown field", yaml: "max_inflight: 5\nmax_inflite: 3\n", wantErr: []string{"unknown.yaml:2", "max_inflite"}},
		{name: "bad type", yaml: "listeners:\n  - {type: udp, addr: \"127.0.0.1:0\"}\n", wantErr: []string{"bad type.yaml", "listeners[0].type"}},
		{name: "bad value", yaml: "max_inflight: lots\n", wantErr: []string{"bad value.yaml:1"}},
		{name: "defaults", yaml: "{}\n", check: func(t *testing.T, c Config) {
			if len(c.Listeners) != 1 || c.Listeners[0].Addr != "127.0.0.1:1883" {
				t.Errorf("default listener %+v", c.Listeners)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.name
			if name == "unknown field" {
				name = "unknown"
			}
			path := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// TestObservability checks the /metrics endpoint, the $SYS topics and Stats.
func TestObservability(t *testing.T) {
	tb := startBroker(t, func(c *Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.SysInterval = 100 * time.Millisecond
	})
	r := tb.connect(t, "sys-watcher")
	subscribe(t, r, sub("$SYS/broker/clients/connected", 0), sub("$SYS/broker/uptime", 0), sub("$SYS/broker/messages/received", 0))
	seen := map[string]bool{}
	for range 6 {
		p := expect[*packet.Publish](t, r)
		seen[p.Topic] = true
	}
	if len(seen) != 3 {
		t.Errorf("$SYS topics seen: %v", seen)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + tb.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"mqttfleet_broker_clients_connected 1", "mqttfleet_broker_messages_sent_total", "go_goroutines"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	if st := tb.Stats(); st.ClientsConnected != 1 || st.Subscriptions != 3 || st.MessagesSent == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestServeConn checks serving an in-memory pipe.
func TestServeConn(t *testing.T) {
	tb := startBroker(t, nil)
	a, b := net.Pipe()
	tb.ServeConn(a)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, ack, err := client.RawConnect(ctx, b, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "piped", CleanSession: true})
	if err != nil || ack.ReturnCode != 0 {
		t.Fatalf("connect over pipe: %v %+v", err, ack)
	}
	if err := r.WritePacket(&packet.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Pingresp](t, r)
}
