//go:build linux

package broker

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openFDs counts the process's open descriptors and, among them, epoll
// instances.
func openFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil {
			out[e.Name()] = link
		}
	}
	return out
}

// opened lists the descriptors in now that were not open (as the same
// file) in before. Descriptors closed meanwhile by other goroutines of the
// process do not matter; only what is new and still open does.
func opened(before, now map[string]string) []string {
	var out []string
	for fd, link := range now {
		if before[fd] != link {
			out = append(out, fd+" -> "+link)
		}
	}
	return out
}

// epolls counts the epoll descriptors among opened's entries.
func epolls(entries []string) int {
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e, " -> anon_inode:[eventpoll]") {
			n++
		}
	}
	return n
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
			// Files that exist (New checks that) but hold no PEM: only Start finds out.
			dir := t.TempDir()
			cert, key := filepath.Join(dir, "bad.pem"), filepath.Join(dir, "bad.key")
			for _, f := range []string{cert, key} {
				if err := os.WriteFile(f, []byte("not PEM\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"},
				{Type: "tls", Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key}}
		}},
		{"metrics address taken", func(c *Config) {
			c.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
			c.MetricsAddr = busy
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := openFDs(t)
			cfg := DefaultConfig()
			tc.edit(&cfg)
			b, err := New(cfg)
			if err != nil {
				t.Fatalf("new: %v", err)
			}
			if ep := epolls(opened(before, openFDs(t))); ep != 1 {
				t.Fatalf("%d new epoll descriptors after New, want 1", ep)
			}
			if err := b.Start(); err == nil {
				_ = b.Close()
				t.Fatal("Start succeeded")
			}
			if left := opened(before, openFDs(t)); len(left) != 0 {
				t.Errorf("after the failed Start, still open: %v", left)
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
