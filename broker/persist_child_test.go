package broker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// The restart tests run the broker as this test binary re-executed with
// persistChildEnv naming a YAML configuration: a process of its own, so it
// can be killed with SIGKILL mid-flight like a crashed broker.
const persistChildEnv = "MQTTFLEET_PERSIST_CHILD"

// runPersistChild runs a broker from the configuration file persistChildEnv
// names, on 127.0.0.1:0, logging to stderr. It prints
// "ready <host:port> <retained> <sessions> <queued> <inflight> <incoming qos2>"
// once it accepts, and closes (gracefully) when its standard input closes.
func runPersistChild() int {
	cfg, err := LoadConfig(os.Getenv(persistChildEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b, err := New(cfg)
	if err == nil {
		err = b.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r := b.Recovered()
	fmt.Printf("ready %s %d %d %d %d %d\n", strings.TrimPrefix(b.Addr("tcp"), "tcp://"), r.Retained, r.Sessions, r.Queued, r.Inflight, r.IncomingQoS2)
	_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
	if err := b.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childBroker is a broker process started by startChild.
type childBroker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	// recovered counts as printed: retained, sessions, queued, inflight, incoming QoS 2.
	recovered [5]int
	stderr    *lockedBuffer
	waited    bool
}

// lockedBuffer is a bytes.Buffer the child's stderr copier writes while the
// test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild starts a broker process on the configuration file and waits
// for its ready line; the process is killed when the test ends if it still
// runs.
func startChild(t testing.TB, cfgPath string) *childBroker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), persistChildEnv+"="+cfgPath)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &childBroker{cmd: cmd, stdin: stdin, stderr: &lockedBuffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !c.waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		c.waited = true
		t.Fatalf("broker child did not start: %v; stderr:\n%s", err, c.stderr)
	}
	r := &c.recovered
	if _, err := fmt.Sscanf(line, "ready %s %d %d %d %d %d", &c.addr, &r[0], &r[1], &r[2], &r[3], &r[4]); err != nil {
		t.Fatalf("broker child ready line %q: %v", line, err)
	}
	return c
}

// stop closes the broker gracefully (Close) and waits for it to exit.
func (c *childBroker) stop(t testing.TB) {
	t.Helper()
	_ = c.stdin.Close()
	err := c.cmd.Wait()
	c.waited = true
	if err != nil {
		t.Fatalf("broker child: %v; stderr:\n%s", err, c.stderr)
	}
}

// kill ends the broker with SIGKILL, as a crash would, and reaps it.
func (c *childBroker) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	c.waited = true
}

// connect opens a raw client on the child broker and checks CONNACK.
func (c *childBroker) connect(t *testing.T, cp *packet.Connect, wantPresent bool) *client.Raw {
	t.Helper()
	if cp.ProtocolName == "" {
		cp.ProtocolName, cp.ProtocolLevel = "MQTT", packet.V311
	}
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial broker child: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, ack, err := client.RawConnect(ctx, nc, cp)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	if ack.ReturnCode != 0 || ack.SessionPresent != wantPresent {
		t.Fatalf("connect %q: CONNACK code %d session present %v, want 0 and %v", cp.ClientID, ack.ReturnCode, ack.SessionPresent, wantPresent)
	}
	return r
}
