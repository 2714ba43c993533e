// Package mosquittotest runs Debian's Mosquitto as a broker for one test or
// benchmark: free loopback ports, a config file in a temp dir, a wait until
// the broker really serves them, and a kill at cleanup.
//
//	b := mosquittotest.Start(t, mosquittotest.Config("persistence false"))
//	conn, err := net.Dial("tcp", b.Addr)
//
// The process writes its output straight into a file (no copying
// goroutines), so nothing this package starts outlives Stop: tests that use
// go.uber.org/goleak stay green.
package mosquittotest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Path is where Debian's mosquitto package installs the broker.
const Path = "/usr/sbin/mosquitto"

const (
	// attempts bounds the retries when another process took a free port
	// before Mosquitto bound it (the loopback range is shared by every test
	// running on the machine).
	attempts = 3
	// startTimeout bounds one attempt; generous for a loaded 2-core machine.
	startTimeout = 10 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// Option changes how Start configures Mosquitto.
type Option func(*options)

type options struct {
	websocket bool
	lines     []string
}

// WebSocket adds a second listener speaking MQTT over WebSocket; its address
// is WSAddr.
func WebSocket() Option { return func(o *options) { o.websocket = true } }

// Config appends lines to mosquitto.conf after the listeners, in order.
func Config(lines ...string) Option {
	return func(o *options) { o.lines = append(o.lines, lines...) }
}

// Mosquitto is one running Mosquitto process.
type Mosquitto struct {
	Addr   string // host:port of the MQTT listener on 127.0.0.1
	WSAddr string // host:port of the WebSocket listener, "" without WebSocket()

	cmd    *exec.Cmd
	log    string        // file holding the process's stdout and stderr
	exited chan struct{} // closed once the process has been waited for
	stop   sync.Once
}

// Start runs Mosquitto and waits until it accepts on its MQTT port. It skips
// the test when the binary is missing, fails it when Mosquitto will not
// start, and stops the process in tb.Cleanup, logging its output if the test
// failed.
func Start(tb testing.TB, opts ...Option) *Mosquitto {
	tb.Helper()
	if _, err := os.Stat(Path); err != nil {
		tb.Skipf("mosquitto not installed (%v); apt-get install mosquitto", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	for attempt := 1; ; attempt++ {
		m, err := start(tb.TempDir(), o)
		if err == nil {
			tb.Cleanup(func() {
				m.Stop()
				if tb.Failed() {
					tb.Logf("mosquitto output:\n%s", m.Output())
				}
			})
			return m
		}
		if attempt == attempts {
			tb.Fatalf("start mosquitto: %v", err)
		}
		tb.Logf("start mosquitto (attempt %d, retrying on other ports): %v", attempt, err)
	}
}

// PID is the process id, e.g. to read the broker's memory from /proc.
func (m *Mosquitto) PID() int { return m.cmd.Process.Pid }

// Output is what the process has written to stdout and stderr so far.
func (m *Mosquitto) Output() string {
	b, err := os.ReadFile(m.log)
	if err != nil {
		return fmt.Sprintf("(read mosquitto output: %v)", err)
	}
	return string(b)
}

// Stop kills the process and waits for it. It is safe to call more than
// once; Start's cleanup calls it too.
func (m *Mosquitto) Stop() {
	m.stop.Do(func() {
		_ = m.cmd.Process.Kill()
		<-m.exited
	})
}

// start makes one attempt in dir: ports, config, process, wait.
func start(dir string, o options) (*Mosquitto, error) {
	n := 1
	if o.websocket {
		n = 2
	}
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", ports[0])
	if o.websocket {
		conf += fmt.Sprintf("listener %d 127.0.0.1\nprotocol websockets\n", ports[1])
	}
	for _, line := range o.lines {
		conf += line + "\n"
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("write mosquitto.conf: %w", err)
	}
	m := &Mosquitto{
		Addr:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		log:    filepath.Join(dir, "mosquitto.log"),
		exited: make(chan struct{}),
	}
	if o.websocket {
		m.WSAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	}
	out, err := os.Create(m.log)
	if err != nil {
		return nil, fmt.Errorf("create mosquitto log: %w", err)
	}
	defer out.Close() // the child holds its own copy
	m.cmd = exec.Command(Path, "-c", confPath)
	m.cmd.Stdout, m.cmd.Stderr = out, out
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", Path, err)
	}
	go func() { _ = m.cmd.Wait(); close(m.exited) }()
	if err := m.waitServing(ports); err != nil {
		m.Stop()
		return nil, fmt.Errorf("%w; output:\n%s", err, m.Output())
	}
	return m, nil
}

// waitServing polls until the MQTT port accepts and every configured port
// is held by this process. Accepting alone is not enough: when another
// process took a port first, the dial reaches that process while Mosquitto
// fails to bind and exits.
func (m *Mosquitto) waitServing(ports []int) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-m.exited:
			return errors.New("mosquitto exited before serving (port taken or bad config?)")
		default:
		}
		if c, err := net.DialTimeout("tcp", m.Addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			if listensOn(m.PID(), ports) {
				return nil
			}
		}
		select {
		case <-m.exited:
			return errors.New("mosquitto exited before serving (port taken or bad config?)")
		case <-deadline.C:
			return fmt.Errorf("mosquitto not serving %s within %v", strings.Trim(fmt.Sprint(ports), "[]"), startTimeout)
		case <-tick.C:
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago;
// all are held open together so they cannot repeat.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
