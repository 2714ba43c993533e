package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/internal/mqttload"
	"github.com/mqttfleet/mqttfleet/packet"
)

// BenchmarkBrokers compares this broker with Mosquitto and mochi-mqtt, each
// in its own process, driven by one lean load generator (internal/mqttload, in this process):
//
//	go test ./broker -run '^$' -bench Brokers -benchtime 1x -timeout 30m -v
//
// The throughput scenarios run twice per broker, in MQTT 3.1.1 and (rows
// ending in _v5) MQTT 5.0, where the p2p window is at most the broker's
// Receive Maximum (logged as "window"). MQTTFLEET_BENCH_SECONDS sets the
// length of each throughput run (default 3); MQTTFLEET_BENCH_PROFILE_DIR
// writes a CPU profile of each mqttfleet run. The tables at the end give
// each figure with its ratio to Mosquitto's, and each broker's 5.0 rate over
// its 3.1.1 rate.
func BenchmarkBrokers(b *testing.B) {
	d := mqttload.RunLength(3 * time.Second)
	kinds := []string{"mosquitto", "mqttfleet", "mochi"}
	one := func(unit string, v float64) []figure { return []figure{{unit, v}} }
	type scen struct {
		name string
		run  func(b *testing.B, p *brokerProc) []figure
	}
	// Each throughput scenario at 3.1.1, then at 5.0 right after, so the
	// two rows of a pair see the same machine load.
	var scenarios []scen
	levels := []struct {
		suffix string
		level  byte
	}{{"", packet.V311}, {"_v5", packet.V5}}
	throughput := []struct {
		name, log string
		run       func(t mqttload.Target) (mqttload.Result, error)
	}{
		{"fanin_qos0", "fan-in", func(t mqttload.Target) (mqttload.Result, error) { return t.FanIn(10, d) }},
		{"fanout_qos0", "fan-out", func(t mqttload.Target) (mqttload.Result, error) { return t.FanOut(100, d) }},
		{"p2p_qos1", "p2p", func(t mqttload.Target) (mqttload.Result, error) { return t.PointToPoint(64, d) }},
	}
	for _, th := range throughput {
		for _, v := range levels {
			scenarios = append(scenarios, scen{th.name + v.suffix, func(b *testing.B, p *brokerProc) []figure {
				return one("msg/s", scenario(b, th.log, func() (mqttload.Result, error) {
					return th.run(mqttload.Target{Addr: p.addr, Level: v.level})
				}))
			}})
		}
	}
	scenarios = append(scenarios,
		scen{"connect_rate", func(b *testing.B, p *brokerProc) []figure { return connectRounds(b, p, 5) }},
		scen{"idle_conn_mem", func(b *testing.B, p *brokerProc) []figure { return one("B/conn", idleMemory(b, p, 10000)) }})
	type row struct{ scenario, unit string }
	var rows []row
	results := map[row]map[string]float64{}
	for _, sc := range scenarios {
		for _, k := range kinds {
			b.Run(sc.name+"/"+k, func(b *testing.B) {
				profile := ""
				if dir := os.Getenv("MQTTFLEET_BENCH_PROFILE_DIR"); dir != "" && k == "mqttfleet" {
					profile = filepath.Join(dir, sc.name+".cpu.pprof")
				}
				p := startProc(b, k, profile)
				var figs []figure
				for range b.N {
					figs = sc.run(b, p)
				}
				p.stop()
				for _, f := range figs {
					b.ReportMetric(f.v, f.unit)
					r := row{sc.name, f.unit}
					if results[r] == nil {
						results[r] = map[string]float64{}
						rows = append(rows, r)
					}
					results[r][k] = f.v
				}
			})
		}
	}
	var tab strings.Builder
	tab.WriteString("\n| scenario | unit | mosquitto | mqttfleet | mochi | mqttfleet / mosquitto | mochi / mosquitto |\n|---|---|---|---|---|---|---|\n")
	for _, rw := range rows {
		r := results[rw]
		ratio := func(k string) string {
			if r["mosquitto"] == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", r[k]/r["mosquitto"])
		}
		fmt.Fprintf(&tab, "| %s | %s | %.0f | %.0f | %.0f | %s | %s |\n", rw.scenario, rw.unit, r["mosquitto"], r["mqttfleet"], r["mochi"], ratio("mqttfleet"), ratio("mochi"))
	}
	header := false
	for _, rw := range rows {
		base, ok := strings.CutSuffix(rw.scenario, "_v5")
		r3 := results[row{base, rw.unit}]
		if !ok || r3 == nil {
			continue
		}
		if !header {
			tab.WriteString("\n| scenario | 5.0 / 3.1.1 mosquitto | mqttfleet | mochi |\n|---|---|---|---|\n")
			header = true
		}
		r5 := results[rw]
		ratio := func(k string) string {
			if r3[k] == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", r5[k]/r3[k])
		}
		fmt.Fprintf(&tab, "| %s | %s | %s | %s |\n", base, ratio("mosquitto"), ratio("mqttfleet"), ratio("mochi"))
	}
	b.Log(tab.String())
}

// figure is one measured value and its unit.
type figure struct {
	unit string
	v    float64
}

// scenario runs one mqttload scenario, failing the benchmark on error and
// logging what was sent and received.
func scenario(b *testing.B, name string, run func() (mqttload.Result, error)) float64 {
	r, err := run()
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	if r.Window > 0 {
		b.Logf("%s: sent %d, received %d, window %d", name, r.Sent, r.Received, r.Window)
	} else {
		b.Logf("%s: sent %d, received %d", name, r.Sent, r.Received)
	}
	return r.Rate
}

// connectRounds runs connectRate rounds times (connects are short and the
// machine is shared) and reports the median rate and the median CPU the
// broker process spent per connection. The rate is what the machine allows
// broker and generator together; the CPU per connection is the broker's own
// cost, the figure that does not depend on the generator.
func connectRounds(b *testing.B, p *brokerProc, rounds int) []figure {
	rates := make([]float64, rounds)
	cpus := make([]float64, rounds)
	for i := range rounds {
		rates[i], cpus[i] = connectRate(b, p, 50, 10000, 10*time.Second)
	}
	slices.Sort(rates)
	slices.Sort(cpus)
	return []figure{{"conn/s", rates[rounds/2]}, {"broker-cpu-µs/conn", cpus[rounds/2]}}
}

// connectRate: workers open connections (CONNECT -> CONNACK) in parallel,
// keeping them open, until maxConns or d. It returns connections per second
// and the broker process's CPU time per connection while they were opened
// (closing them is not counted).
func connectRate(b *testing.B, p *brokerProc, workers, maxConns int, d time.Duration) (rate, cpuPerConn float64) {
	var mu sync.Mutex
	var conns []*mqttload.Conn
	var count atomic.Int64
	fds0 := p.openFiles(b)
	cpu0 := p.cpu(b)
	start := time.Now()
	until := start.Add(d)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(until) && count.Load() < int64(maxConns); i++ {
				l, err := mqttload.Dial(p.addr, fmt.Sprintf("cr-%d-%d", w, i), 0)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				count.Add(1)
				mu.Lock()
				conns = append(conns, l)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := p.cpu(b) - cpu0
	mqttload.CloseAll(conns...)
	// The broker handles the resets after closeAll returns: wait until it
	// has closed its ends, so that work is not billed to the next round.
	p.waitOpenFiles(b, fds0, 10*time.Second)
	if err, _ := firstErr.Load().(error); err != nil {
		b.Logf("connect rate: stopped early: %v", err)
	}
	n := count.Load()
	b.Logf("connect rate: %d connections in %v, broker CPU %v", n, el, cpu)
	if n == 0 {
		return 0, 0
	}
	return float64(n) / el.Seconds(), float64(cpu.Microseconds()) / float64(n)
}

// idleMemory: RSS growth of the broker process per idle connection (keepalive
// 0, no subscriptions) with n connections open.
func idleMemory(b *testing.B, p *brokerProc, n int) float64 {
	warm, err := mqttload.Dial(p.addr, "mem-warm", 0)
	if err != nil {
		b.Fatal(err)
	}
	before := p.settledRSS(b)
	conns := make([]*mqttload.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	const workers = 20
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				l, err := mqttload.Dial(p.addr, "mem-"+strconv.Itoa(i), 0)
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				conns[i] = l
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		mqttload.CloseAll(conns...)
		b.Fatalf("idle connections: %v", err)
	}
	after := p.settledRSS(b)
	if p.kind != "mosquitto" {
		_ = p.cmd.Process.Signal(syscall.SIGUSR1) // the Go brokers print their memory breakdown
	}
	mqttload.CloseAll(conns...)
	mqttload.CloseAll(warm)
	b.Logf("idle memory: RSS %d kB -> %d kB for %d connections", before, after, n)
	return float64(after-before) * 1024 / float64(n)
}
