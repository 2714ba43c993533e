//go:build linux

package broker

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// openFDs counts the process's open descriptors and, among them, epoll
// instances.
func openFDs(t *testing.T) (all, epoll int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, e := range ents {
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
			all++
			if link == "anon_inode:[eventpoll]" {
				epoll++
			}
		}
	}
	return all, epoll
}

// TestFailedStartReleases checks that a Start that fails leaves nothing
// open, without Close: the poller's epoll descriptor New made, the
// listeners bound before the failure, and the metrics endpoint.
func TestFailedStartReleases(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"first listener taken", func(c *Config) {
			c.Listeners = []ListenerConfig{{Type: "tcp", Addr: busy}}
		}},
		{"second listener taken", func(c *Config) {
			c.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}, {Type: "ws", Addr: "127.0.0.1:0"}, {Type: "tcp", Addr: busy}}
		}},
		{"bad certificate", func(c *Config) {
			c.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"},
				{Type: "tls", Addr: "127.0.0.1:0", CertFile: filepath.Join(t.TempDir(), "none.pem"), KeyFile: filepath.Join(t.TempDir(), "none.key")}}
		}},
		{"metrics address taken", func(c *Config) {
			c.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
			c.MetricsAddr = busy
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all0, ep0 := openFDs(t)
			cfg := DefaultConfig()
			tc.edit(&cfg)
			b, err := New(cfg)
			if err != nil {
				t.Fatalf("new: %v", err)
			}
			if _, ep := openFDs(t); ep != ep0+1 {
				t.Fatalf("%d epoll descriptors after New, want %d", ep, ep0+1)
			}
			if err := b.Start(); err == nil {
				_ = b.Close()
				t.Fatal("Start succeeded")
			}
			if all, ep := openFDs(t); all != all0 || ep != ep0 {
				t.Errorf("after the failed Start: %d descriptors (%d epoll), before New %d (%d epoll)", all, ep, all0, ep0)
			}
			if err := b.Close(); err != nil {
				t.Errorf("Close after a failed Start: %v", err)
			}
			if err := b.Start(); err == nil {
				t.Error("a second Start succeeded")
			}
		})
	}
}
