package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
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

	"github.com/mqttfleet/mqttfleet/packet"
)

// BenchmarkBrokers compares this broker with Mosquitto and mochi-mqtt, each
// in its own process, driven by one lean load generator (this process):
//
//	go test ./broker -run '^$' -bench Brokers -benchtime 1x -timeout 30m -v
//
// MQTTFLEET_BENCH_SECONDS sets the length of each throughput run (default 3);
// MQTTFLEET_BENCH_PROFILE_DIR writes a CPU profile of each mqttfleet run.
// The table at the end gives each figure and its ratio to Mosquitto's.
func BenchmarkBrokers(b *testing.B) {
	secs := 3.0
	if v, err := strconv.ParseFloat(os.Getenv("MQTTFLEET_BENCH_SECONDS"), 64); err == nil && v > 0 {
		secs = v
	}
	d := time.Duration(secs * float64(time.Second))
	kinds := []string{"mosquitto", "mqttfleet", "mochi"}
	one := func(unit string, v float64) []figure { return []figure{{unit, v}} }
	scenarios := []struct {
		name string
		run  func(b *testing.B, p *brokerProc) []figure
	}{
		{"fanin_qos0", func(b *testing.B, p *brokerProc) []figure { return one("msg/s", fanIn(b, p.addr, 10, d)) }},
		{"fanout_qos0", func(b *testing.B, p *brokerProc) []figure { return one("msg/s", fanOut(b, p.addr, 100, d)) }},
		{"p2p_qos1", func(b *testing.B, p *brokerProc) []figure { return one("msg/s", pointToPoint(b, p.addr, 64, d)) }},
		{"connect_rate", func(b *testing.B, p *brokerProc) []figure { return connectRounds(b, p, 5) }},
		{"idle_conn_mem", func(b *testing.B, p *brokerProc) []figure { return one("B/conn", idleMemory(b, p, 10000)) }},
	}
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
	b.Log(tab.String())
}

// figure is one measured value and its unit.
type figure struct {
	unit string
	v    float64
}

// lean is the load generator's client: CONNECT/SUBSCRIBE through the codec,
// then raw frames, so the generator costs the same for every broker.
type lean struct {
	nc net.Conn
}

var genSeq atomic.Uint32

// genDialer spreads the generator's connections over source addresses
// 127.0.0.2-127.0.0.65 (all of 127/8 is loopback). From one source address,
// connect(2) has to search one ephemeral port range that the open connections
// are filling, and with thousands open that search, not either broker, was
// most of the machine's CPU. IP_BIND_ADDRESS_NO_PORT leaves the port choice to
// connect, which then only has to avoid this source address's 4-tuples.
func genDialer() *net.Dialer {
	n := genSeq.Add(1)
	return &net.Dialer{
		Timeout:   10 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n%64))},
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h.
const ipBindAddressNoPort = 24

// leanDial connects with a clean session and the given keepalive.
func leanDial(addr, id string, keepalive uint16) (*lean, error) {
	nc, err := genDialer().Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	// Close with RST: the generator opens tens of thousands of connections,
	// and TIME_WAIT sockets would crowd the loopback port range other tests share.
	_ = nc.(*net.TCPConn).SetLinger(0)
	l := &lean{nc: nc}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := packet.Encode(nc, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: id, CleanSession: true, KeepAlive: keepalive}, packet.V311); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect %s: %w", id, err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(nc, ack[:]); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		nc.Close()
		return nil, fmt.Errorf("connack %s: % x %v", id, ack, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return l, nil
}

// subscribe subscribes to one filter and waits for its SUBACK.
func (l *lean) subscribe(filter string, qos byte) error {
	_ = l.nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer l.nc.SetDeadline(time.Time{})
	if err := packet.Encode(l.nc, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}, packet.V311); err != nil {
		return err
	}
	var ack [5]byte
	if _, err := io.ReadFull(l.nc, ack[:]); err != nil || ack[0] != 0x90 || ack[4] > 2 {
		return fmt.Errorf("suback % x %v", ack, err)
	}
	return nil
}

// frames reads until the read deadline or an error and calls fn for every
// complete packet (first byte, body); after each read, flush runs (for acks).
func (l *lean) frames(until time.Time, fn func(first byte, body []byte), flush func() error) error {
	_ = l.nc.SetReadDeadline(until)
	buf := make([]byte, 256<<10)
	start, end := 0, 0
	for {
		for end-start >= 2 {
			n, mul, i, ok := 0, 1, start+1, false
			for i < end && i < start+5 {
				c := buf[i]
				n += int(c&127) * mul
				mul *= 128
				i++
				if c&128 == 0 {
					ok = true
					break
				}
			}
			if !ok || i+n > end {
				break
			}
			fn(buf[start], buf[i:i+n])
			start = i + n
		}
		if flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		copy(buf, buf[start:end])
		end -= start
		start = 0
		if end == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		n, err := l.nc.Read(buf[end:])
		end += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return err
		}
	}
}

// flood writes a QoS 0 PUBLISH to topic in batches until the deadline.
func (l *lean) flood(topic string, payload []byte, until time.Time) int {
	one, _ := packet.Append(nil, &packet.Publish{Topic: topic, Payload: payload}, packet.V311)
	var batch []byte
	const per = 64
	for range per {
		batch = append(batch, one...)
	}
	_ = l.nc.SetWriteDeadline(until)
	sent := 0
	for time.Now().Before(until) {
		if _, err := l.nc.Write(batch); err != nil {
			break
		}
		sent += per
	}
	return sent
}

var payload64 = []byte(strings.Repeat("p", 64))

// fanIn: n publishers flood QoS 0 to one subscriber of bench/in/+; the
// figure is messages the subscriber received per second.
func fanIn(b *testing.B, addr string, n int, d time.Duration) float64 {
	s := mustDial(b, addr, "fanin-sub")
	if err := s.subscribe("bench/in/+", 0); err != nil {
		b.Fatal(err)
	}
	pubs := make([]*lean, n)
	for i := range pubs {
		pubs[i] = mustDial(b, addr, fmt.Sprintf("fanin-pub-%d", i))
	}
	start := time.Now()
	until := start.Add(d)
	var total atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.frames(until, func(first byte, _ []byte) {
			if first>>4 == 3 {
				total.Add(1)
			}
		}, nil)
	}()
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent.Add(int64(p.flood(fmt.Sprintf("bench/in/%d", i), payload64, until)))
		}()
	}
	wg.Wait()
	<-done
	closeAll(s)
	closeAll(pubs...)
	b.Logf("fan-in: sent %d, received %d", sent.Load(), total.Load())
	return float64(total.Load()) / d.Seconds()
}

// fanOut: one publisher floods QoS 0 to n subscribers; the figure is
// deliveries per second summed over subscribers.
func fanOut(b *testing.B, addr string, n int, d time.Duration) float64 {
	subs := make([]*lean, n)
	for i := range subs {
		subs[i] = mustDial(b, addr, fmt.Sprintf("fanout-sub-%d", i))
		if err := subs[i].subscribe("bench/out", 0); err != nil {
			b.Fatal(err)
		}
	}
	p := mustDial(b, addr, "fanout-pub")
	until := time.Now().Add(d)
	var wg sync.WaitGroup
	var total atomic.Int64
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			_ = s.frames(until, func(first byte, _ []byte) {
				if first>>4 == 3 {
					n++
				}
			}, nil)
			total.Add(n)
		}()
	}
	sent := p.flood("bench/out", payload64, until)
	wg.Wait()
	closeAll(subs...)
	closeAll(p)
	b.Logf("fan-out: sent %d, delivered %d (%.1f%% of sent x %d)", sent, total.Load(), 100*float64(total.Load())/float64(max(1, sent*n)), n)
	return float64(total.Load()) / d.Seconds()
}

// pointToPoint: one QoS 1 publisher (window of w unacknowledged) to one QoS 1
// subscriber that acknowledges everything; the figure is messages the
// subscriber received per second.
func pointToPoint(b *testing.B, addr string, w int, d time.Duration) float64 {
	s := mustDial(b, addr, "p2p-sub")
	if err := s.subscribe("bench/p2p", 1); err != nil {
		b.Fatal(err)
	}
	p := mustDial(b, addr, "p2p-pub")
	until := time.Now().Add(d)
	var received atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // subscriber: count and acknowledge
		defer wg.Done()
		var acks []byte
		_ = s.frames(until, func(first byte, body []byte) {
			if first>>4 != 3 {
				return
			}
			received.Add(1)
			tl := int(body[0])<<8 | int(body[1])
			acks = append(acks, 0x40, 2, body[2+tl], body[3+tl])
		}, func() error {
			if len(acks) == 0 {
				return nil
			}
			_, err := s.nc.Write(acks)
			acks = acks[:0]
			return err
		})
	}()
	window := make(chan struct{}, w)
	go func() { // publisher's PUBACK reader frees the window
		defer wg.Done()
		_ = p.frames(until.Add(time.Second), func(first byte, _ []byte) {
			if first>>4 == 4 {
				select {
				case <-window:
				default:
				}
			}
		}, nil)
	}()
	id := uint16(0)
	var buf []byte
	_ = p.nc.SetWriteDeadline(until)
	for time.Now().Before(until) {
		select {
		case window <- struct{}{}:
		case <-time.After(time.Until(until)):
		}
		buf = buf[:0]
		for k := 0; ; k++ {
			id++
			if id == 0 {
				id = 1
			}
			buf, _ = packet.Append(buf, &packet.Publish{Topic: "bench/p2p", QoS: 1, PacketID: id, Payload: payload64}, packet.V311)
			if k == w-1 {
				break
			}
			select {
			case window <- struct{}{}:
				continue
			default:
			}
			break
		}
		if _, err := p.nc.Write(buf); err != nil {
			break
		}
	}
	_ = p.nc.SetReadDeadline(time.Now()) // end the PUBACK reader now
	wg.Wait()
	closeAll(s, p)
	return float64(received.Load()) / d.Seconds()
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
	var conns []*lean
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
				l, err := leanDial(p.addr, fmt.Sprintf("cr-%d-%d", w, i), 0)
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
	closeAll(conns...)
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
	warm := mustDial(b, p.addr, "mem-warm")
	before := p.settledRSS(b)
	conns := make([]*lean, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	const workers = 20
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				l, err := leanDial(p.addr, "mem-"+strconv.Itoa(i), 0)
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
		closeAll(conns...)
		b.Fatalf("idle connections: %v", err)
	}
	after := p.settledRSS(b)
	if p.kind != "mosquitto" {
		_ = p.cmd.Process.Signal(syscall.SIGUSR1) // the Go brokers print their memory breakdown
	}
	closeAll(conns...)
	closeAll(warm)
	b.Logf("idle memory: RSS %d kB -> %d kB for %d connections", before, after, n)
	return float64(after-before) * 1024 / float64(n)
}

func mustDial(b *testing.B, addr, id string) *lean {
	b.Helper()
	l, err := leanDial(addr, id, 0)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func closeAll(ls ...*lean) {
	for _, l := range ls {
		if l != nil {
			_ = l.nc.Close()
		}
	}
}
