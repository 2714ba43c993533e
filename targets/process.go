package targets

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/syncbuf"
)

// ChildEnv names the broker configuration file of a Process child; its
// presence is what makes a program serve as the child (RunChild).
const ChildEnv = "MQTTFLEET_BROKER_CHILD"

// childAddrEnv is the host:port the child listens on.
const childAddrEnv = "MQTTFLEET_BROKER_CHILD_ADDR"

// Process is the reference broker run as a child process of the harness:
// unlike InProcess it can be killed with SIGKILL (Kill), as a crash would,
// and with persistence on (SetPersistence) its store file outlives the
// process, so a scenario can check what a crash keeps.
//
//	harness ──exec──► same executable, ChildEnv set ──RunChild──► broker
//	   ▲  stdout: "ready <addr> <counts>", then its events as JSON lines
//	   └─ SIGTERM (Stop, graceful) / SIGKILL (Kill) / stdin closed (harness gone)
//
// The child is this program itself: its main (or TestMain) must call
// RunChild first. cmd/mqttfleet and the scenarios tests do.
type Process struct {
	// Events, when set, receives every event the child broker emits.
	Events events.Sink
	// Sync is the store's sync policy with persistence on: "every_write"
	// (default) or "interval", committing every SyncInterval (0: the
	// broker's default, 1 s).
	Sync         string
	SyncInterval time.Duration
	// StoreDir holds the store file; empty: a temporary directory made at
	// the first Start and removed by Close.
	StoreDir string
	// StartTimeout bounds the wait for the child's ready line; 0 means 30 s.
	StartTimeout time.Duration

	mu        sync.Mutex
	persist   bool
	dir       string // the store's directory (StoreDir or a temporary one)
	ownDir    bool   // dir is ours to remove
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	exited    chan struct{} // closed when the child has been reaped
	readers   sync.WaitGroup
	addr      string // host:port, kept across restarts
	recovered Recovery
	started   bool
	logs      syncbuf.Buffer
}

// NewProcess returns the child-process reference broker target, persistence off.
func NewProcess() *Process { return &Process{} }

// Name returns "process".
func (t *Process) Name() string { return "process" }

// SetPersistence turns the child broker's store on or off (from the next Start).
func (t *Process) SetPersistence(on bool) {
	t.mu.Lock()
	t.persist = on
	t.mu.Unlock()
}

// Capabilities of the reference broker over one TCP listener, restartable,
// killable and durable.
func (t *Process) Capabilities() Capabilities {
	return Capabilities{MaxQoS: 2, Retain: true, Wildcards: true, MQTT5: true, EmptyClientID: true,
		PersistentSessions: true, Restartable: true, Kill: true, Persistence: true,
		SharedSubscriptions: true, SubscriptionIDs: true}
}

// Addr returns tcp://host:port while the child runs.
func (t *Process) Addr(transport string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if transport != "tcp" || t.cmd == nil {
		return "", false
	}
	return "tcp://" + t.addr, true
}

// Recovered returns what the child restored from its store at its last start.
func (t *Process) Recovered() (Recovery, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.recovered, t.started && t.persist
}

// Logs returns the children's stderr and events so far.
func (t *Process) Logs(context.Context) ([]byte, error) { return t.logs.Bytes(), nil }

// Start runs the child and waits for its ready line. A restart listens on
// the address of the first start.
func (t *Process) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd != nil {
		return nil
	}
	if os.Getenv(ChildEnv) != "" {
		// This program was started as a child and did not call RunChild:
		// starting another would recurse.
		return fmt.Errorf("start process broker: %s is set but this program does not serve as the child (call targets.RunChild in main): %w", ChildEnv, ErrUnavailable)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start process broker: find this executable: %w", err)
	}
	cfgPath, err := t.writeConfig()
	if err != nil {
		return err
	}
	addr := t.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cmd := exec.Command(exe, "-test.run=^$") // a test binary runs no test; RunChild exits before flags are read
	cmd.Env = append(os.Environ(), ChildEnv+"="+cfgPath, childAddrEnv+"="+addr)
	cmd.Stderr = &t.logs
	stdin, err := cmd.StdinPipe()
	if err == nil {
		var stdout io.ReadCloser
		stdout, err = cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err == nil {
			return t.awaitReady(ctx, cmd, stdin, stdout)
		}
	}
	return fmt.Errorf("start process broker: %w", err)
}

// awaitReady reads the child's ready line, then hands its stdout to a
// reader forwarding its events.
func (t *Process) awaitReady(ctx context.Context, cmd *exec.Cmd, stdin io.WriteCloser, stdout io.Reader) error {
	exited := make(chan struct{})
	ready := make(chan string, 1)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	t.readers.Add(1)
	go func() {
		defer t.readers.Done()
		defer close(exited)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first {
				first = false
				ready <- line
				continue
			}
			t.forward(line)
		}
		close(ready)
		_ = cmd.Wait() // stdout is read to its end first, as Wait requires
	}()
	timeout := t.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var line string
	var ok bool
	select {
	case line, ok = <-ready:
	case <-timer.C:
	case <-ctx.Done():
	}
	var rec Recovery
	var addr string
	if ok {
		_, err := fmt.Sscanf(line, "ready %s %d %d %d %d %d", &addr, &rec.Retained, &rec.Sessions, &rec.Queued, &rec.Inflight, &rec.IncomingQoS2)
		ok = err == nil
	}
	if !ok {
		_ = cmd.Process.Kill()
		_ = stdin.Close()
		<-exited
		t.readers.Wait()
		return fmt.Errorf("start process broker: no ready line (got %q); its stderr:\n%s", line, tail(t.logs.Bytes(), 2000))
	}
	t.cmd, t.stdin, t.exited, t.addr, t.recovered, t.started = cmd, stdin, exited, addr, rec, true
	return nil
}

// forward turns one JSON line of the child into an event for Events.
func (t *Process) forward(line string) {
	_, _ = t.logs.Write([]byte("event " + line + "\n"))
	if t.Events == nil {
		return
	}
	var e events.Event
	if json.Unmarshal([]byte(line), &e) == nil {
		t.Events.Emit(e)
	}
}

// writeConfig writes the child's YAML configuration into the store directory.
func (t *Process) writeConfig() (string, error) {
	if t.dir == "" {
		if t.StoreDir != "" {
			t.dir = t.StoreDir
		} else {
			d, err := os.MkdirTemp("", "mqttfleet-process-")
			if err != nil {
				return "", fmt.Errorf("start process broker: store directory: %w", err)
			}
			t.dir, t.ownDir = d, true
		}
	}
	// Never an empty document: the YAML decoder would zero the defaults.
	b := "persistence:\n  enabled: false\n"
	if t.persist {
		sync := t.Sync
		if sync == "" {
			sync = "every_write"
		}
		b = fmt.Sprintf("persistence:\n  enabled: true\n  path: %q\n  sync: %s\n", filepath.Join(t.dir, "broker.db"), sync)
		if t.SyncInterval > 0 {
			b += fmt.Sprintf("  interval: %s\n", t.SyncInterval)
		}
	}
	p := filepath.Join(t.dir, "broker.yaml")
	if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
		return "", fmt.Errorf("start process broker: write config: %w", err)
	}
	return p, nil
}

// Stop ends the child gracefully: SIGTERM, then wait for it to exit (its
// store stays for the next Start).
func (t *Process) Stop(ctx context.Context) error {
	return t.end(ctx, syscall.SIGTERM)
}

// Kill ends the child with SIGKILL and reaps it; Start brings it up again.
func (t *Process) Kill(ctx context.Context) error {
	return t.end(ctx, syscall.SIGKILL)
}

func (t *Process) end(ctx context.Context, sig syscall.Signal) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cmd == nil {
		return nil
	}
	cmd, exited := t.cmd, t.exited
	t.cmd = nil
	_ = cmd.Process.Signal(sig)
	var err error
	select {
	case <-exited:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		err = fmt.Errorf("stop process broker: %w", ctx.Err())
	}
	_ = t.stdin.Close()
	t.readers.Wait()
	if err == nil && sig == syscall.SIGTERM && !cmd.ProcessState.Success() {
		err = fmt.Errorf("stop process broker: it exited with %v; its stderr:\n%s", cmd.ProcessState, tail(t.logs.Bytes(), 2000))
	}
	return err
}

// Restart stops the child gracefully and starts it again on the same address.
func (t *Process) Restart(ctx context.Context) error {
	if err := t.Stop(ctx); err != nil {
		return err
	}
	return t.Start(ctx)
}

// Close stops the child and removes the temporary store directory.
func (t *Process) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := t.Stop(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ownDir {
		err = errors.Join(err, os.RemoveAll(t.dir))
		t.dir, t.ownDir = "", false
	}
	return err
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
