package simulator

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker"
)

// target is a broker under test: its address.
type target struct {
	name  string
	start func(t *testing.T) string
}

var targets = []target{
	{"reference", func(t *testing.T) string { return startReference(t) }},
	{"mosquitto", startMosquitto},
}

// startReference runs the in-process reference broker on a free port.
func startReference(t testing.TB) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listeners[0].Addr = "127.0.0.1:0"
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.Addr("tcp")
}

const mosquittoBin = "/usr/sbin/mosquitto"

// startMosquitto runs a Mosquitto process on a free loopback port.
func startMosquitto(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(mosquittoBin); err != nil {
		t.Skipf("mosquitto not installed at %s: %v", mosquittoBin, err)
	}
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_keepalive 65535\nmax_queued_messages 100000\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mosquittoBin, "-c", conf)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("mosquitto exited before listening on %s", addr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s after 5s: %v", addr, err)
		}
	}
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
