package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttfleet/mqttfleet/internal/mosquittotest"
)

// The brokers compared by the benchmarks each run in a process of their
// own, so memory is measured per broker and the load generator (this test
// process) is the same for all three. The Go brokers run as this test binary
// re-executed with the variables below set.
const (
	benchBrokerEnv  = "MQTTFLEET_BENCH_BROKER"  // "mqttfleet" or "mochi": run that broker instead of tests
	benchAddrEnv    = "MQTTFLEET_BENCH_ADDR"    // host:port it listens on
	benchProfileEnv = "MQTTFLEET_BENCH_PROFILE" // write a CPU profile of the broker process here
)

// runBenchBroker runs the broker named by benchBrokerEnv until its standard
// input closes, printing "ready" once it accepts.
func runBenchBroker() int {
	raiseNoFile()
	kind, addr := os.Getenv(benchBrokerEnv), os.Getenv(benchAddrEnv)
	if p := os.Getenv(benchProfileEnv); p != "" {
		f, err := os.Create(p)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	var stop func()
	switch kind {
	case "mqttfleet":
		cfg := DefaultConfig()
		cfg.Listeners = []ListenerConfig{{Type: "tcp", Addr: addr}}
		b, err := New(cfg)
		if err == nil {
			err = b.Start()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		stop = func() { _ = b.Close() }
	case "mochi":
		s := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
		if err := s.AddHook(new(allowAll), nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := s.Serve(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		stop = func() { _ = s.Close() }
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", benchBrokerEnv, kind)
		return 2
	}
	// SIGUSR1 prints the Go memory breakdown, for the memory profile notes.
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1)
	defer signal.Stop(usr)
	go func() {
		for range usr {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(os.Stderr, "%s memstats: goroutines %d heap_inuse %d kB stack_inuse %d kB heap_idle_unreleased %d kB other_sys %d kB gc_sys %d kB mspan %d kB sys %d kB\n",
				kind, runtime.NumGoroutine(), m.HeapInuse>>10, m.StackInuse>>10, (m.HeapIdle-m.HeapReleased)>>10, m.OtherSys>>10, m.GCSys>>10, m.MSpanInuse>>10, m.Sys>>10)
		}
	}()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
	stop()
	return 0
}

// allowAll lets every mochi client connect, publish and subscribe (mochi's
// own allow hook pulls in a YAML module this repository does not carry).
type allowAll struct{ mochi.HookBase }

func (*allowAll) ID() string { return "allow-all" }
func (*allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (*allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

// raiseNoFile lifts the soft open-file limit to the hard limit.
func raiseNoFile() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

// brokerProc is a broker under test running in its own process: a Go
// broker in this test binary (cmd, stdin, exited) or Mosquitto (mosq).
type brokerProc struct {
	kind   string
	addr   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{} // closed once the process has been waited for
	mosq   *mosquittotest.Mosquitto
}

// freePort returns a loopback address with a port free a moment ago.
func freePort(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProc starts broker kind ("mqttfleet", "mochi", "mosquitto") and waits
// until it accepts connections. profile, when set, is a CPU profile path for
// the Go brokers. The free port can be taken by another process between the
// probe and the broker's bind (the loopback port range is shared with other
// tests), so a broker that exits at once is retried on a new port.
func startProc(tb testing.TB, kind, profile string) *brokerProc {
	tb.Helper()
	if kind == "mosquitto" {
		// log_type error: Mosquitto says nothing unless something went wrong
		// (such as running out of file descriptors in idle_conn_mem), and
		// then the benchmark's log shows it.
		m := mosquittotest.Start(tb, mosquittotest.Config("persistence false", "log_type error"))
		tb.Cleanup(func() {
			if out := m.Output(); out != "" && !tb.Failed() { // failed: mosquittotest logs it
				tb.Logf("mosquitto errors:\n%s", out)
			}
		})
		return &brokerProc{kind: kind, addr: m.Addr, mosq: m}
	}
	for attempt := 1; ; attempt++ {
		p, err := tryStartProc(tb, kind, profile)
		if err == nil {
			tb.Cleanup(p.stop)
			return p
		}
		if attempt == 3 {
			tb.Fatalf("start %s: %v", kind, err)
		}
		tb.Logf("start %s: %v; retrying on another port", kind, err)
	}
}

func tryStartProc(tb testing.TB, kind, profile string) (*brokerProc, error) {
	addr := freePort(tb)
	p := &brokerProc{kind: kind, addr: addr, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), benchBrokerEnv+"="+kind, benchAddrEnv+"="+addr)
	if profile != "" {
		p.cmd.Env = append(p.cmd.Env, benchProfileEnv+"="+profile)
	}
	if n := os.Getenv("MQTTFLEET_BENCH_BROKER_GOMAXPROCS"); n != "" {
		p.cmd.Env = append(p.cmd.Env, "GOMAXPROCS="+n) // the Go brokers only; the generator keeps its own
	}
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", kind, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("exited before accepting on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("did not accept on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a port with a deadline
	}
}

// stop ends the broker process: stdin closed (Go brokers close gracefully),
// SIGKILL after 10 s; Mosquitto is killed at once, having nothing to save.
func (p *brokerProc) stop() {
	if p.mosq != nil {
		p.mosq.Stop()
		return
	}
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// pid is the broker process's ID.
func (p *brokerProc) pid() int {
	if p.mosq != nil {
		return p.mosq.PID()
	}
	return p.cmd.Process.Pid
}

// cpu is the CPU time the broker process has used so far, user and system,
// from /proc/PID/stat (in clock ticks of 10 ms).
func (p *brokerProc) cpu(tb testing.TB) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		tb.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count fields after its ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of the whole line
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// openFiles counts the broker process's open file descriptors.
func (p *brokerProc) openFiles(tb testing.TB) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid()))
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

// waitOpenFiles polls until the broker holds at most n open files, or
// gives up (with a log line) after limit.
func (p *brokerProc) waitOpenFiles(tb testing.TB, n int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for p.openFiles(tb) > n {
		if time.Now().After(deadline) {
			tb.Logf("%s still holds %d open files after %v (had %d)", p.kind, p.openFiles(tb), limit, n)
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// rssKB reads the resident set size of the broker process.
func (p *brokerProc) rssKB(tb testing.TB) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// settledRSS polls the RSS every second until three samples in a row
// change by less than 0.5% (bounded by 20 s), so work a broker defers after
// a burst (a Go broker's GC, scavenger, parking of idle connections) is
// counted, the same way for every broker.
func (p *brokerProc) settledRSS(tb testing.TB) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prev, stable := p.rssKB(tb), 0
	for {
		select {
		case <-ctx.Done():
			return prev
		case <-time.After(time.Second):
		}
		cur := p.rssKB(tb)
		if d := cur - prev; d*200 < prev && -d*200 < prev {
			stable++
		} else {
			stable = 0
		}
		prev = cur
		if stable == 3 {
			return cur
		}
	}
}
