package netem

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/mosquittotest"
	"github.com/mqttfleet/mqttfleet/internal/mqttload"
)

// ackEvery is how many bytes the throughput sink reads before it answers one
// byte, so the sender can time delivery rather than its own buffering.
const ackEvery = 16 << 20

// withSink starts a server that reads everything and acks every ackEvery bytes.
func withSink(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				got := 0
				for {
					n, err := c.Read(buf)
					got += n
					for got >= ackEvery {
						got -= ackEvery
						if _, err := c.Write([]byte{1}); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// send writes ackEvery bytes on c and waits for the sink's ack.
func send(b *testing.B, c net.Conn, block []byte) {
	for sent := 0; sent < ackEvery; sent += len(block) {
		if _, err := c.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
}

// withBareProxy starts the simplest possible proxy, two io.CopyBuffer loops
// per connection with 32 KiB buffers: the peer that shows what the machine
// allows a user-space proxy, measured in the same run.
func withBareProxy(b *testing.B, upstream string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			// The struct wrappers hide ReadFrom/WriteTo so this stays a plain copy.
			go func() {
				io.CopyBuffer(struct{ io.Writer }{u}, struct{ io.Reader }{c}, make([]byte, 32<<10))
				u.Close()
			}()
			go func() {
				io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{u}, make([]byte, 32<<10))
				c.Close()
			}()
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// BenchmarkProxyThroughput moves 16 MiB per iteration over a direct
// connection, through the netem proxy (no faults) and through a bare copy
// proxy, interleaved in the same run in a rotating order, and reports each
// rate and the ratios.
func BenchmarkProxyThroughput(b *testing.B) {
	sink := withSink(b)
	px := withProxy(b, sink, events.NewRecorder())
	var conns []net.Conn
	for _, addr := range []string{sink, px.Addr(), withBareProxy(b, sink)} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	block := make([]byte, 32<<10)
	for _, c := range conns { // warm up every path
		send(b, c, block)
	}
	took := make([]time.Duration, len(conns))
	cpu := make([]time.Duration, len(conns)) // sender, proxy and receiver all run in this process
	b.SetBytes(int64(len(conns)) * ackEvery)
	b.ResetTimer()
	for n := range b.N {
		// Rotate which path goes first: the path sent right after another
		// one measured consistently slower (by 5-30%, whichever it was), so
		// a fixed order would bias the ratios.
		for k := range conns {
			i := (n + k) % len(conns)
			t0, c0 := time.Now(), cpuTime()
			send(b, conns[i], block)
			took[i] += time.Since(t0)
			cpu[i] += cpuTime() - c0
		}
	}
	b.StopTimer()
	// CPU per byte does not depend on how busy the machine is, unlike the rates.
	perMiB := func(d time.Duration) float64 {
		return float64(d.Microseconds()) / (float64(b.N) * ackEvery / (1 << 20))
	}
	b.ReportMetric(perMiB(cpu[0]), "direct-cpu-µs/MiB")
	b.ReportMetric(perMiB(cpu[1]), "netem-cpu-µs/MiB")
	b.ReportMetric(perMiB(cpu[2]), "bare-cpu-µs/MiB")
	mb := float64(b.N) * ackEvery / (1 << 20)
	b.ReportMetric(mb/took[0].Seconds(), "direct-MiB/s")
	b.ReportMetric(mb/took[1].Seconds(), "netem-MiB/s")
	b.ReportMetric(mb/took[2].Seconds(), "bare-MiB/s")
	b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "netem/direct")
	b.ReportMetric(took[0].Seconds()/took[2].Seconds(), "bare/direct")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// withEcho starts a server that echoes every connection.
func withEcho(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// BenchmarkProxyLatency ping-pongs 64-byte messages over a direct connection
// and through the proxy, interleaved, and reports the p50 of each and the p50
// the proxy adds (two hops through it per round trip).
func BenchmarkProxyLatency(b *testing.B) {
	echo := withEcho(b)
	px := withProxy(b, echo, events.NewRecorder())
	conns := make([]net.Conn, 2)
	for i, addr := range []string{echo, px.Addr()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	msg, got := make([]byte, 64), make([]byte, 64)
	rtt := func(c net.Conn) time.Duration {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for range 100 { // warm up
		rtt(conns[0])
		rtt(conns[1])
	}
	direct := make([]time.Duration, 0, b.N)
	proxied := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		direct = append(direct, rtt(conns[0]))
		proxied = append(proxied, rtt(conns[1]))
	}
	b.StopTimer()
	d, p := p50(direct), p50(proxied)
	b.ReportMetric(float64(d.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(p.Microseconds()), "proxied-p50-µs")
	b.ReportMetric(float64((p - d).Microseconds()), "added-p50-µs")
}

// BenchmarkProxyMQTT measures what a device fleet sees: MQTT message
// throughput to Mosquitto with every client connecting directly and with
// every client connecting through the proxy (no faults), in alternating
// rounds of the same run, for QoS 1 point to point (window 64), QoS 0
// fan-in (10 publishers, one subscriber) and QoS 0 fan-out (one publisher,
// 10 subscribers). MQTTFLEET_BENCH_SECONDS sets the
// length of each round (default 2).
func BenchmarkProxyMQTT(b *testing.B) {
	d := mqttload.RunLength(2 * time.Second)
	broker := mosquittotest.Start(b, mosquittotest.Config("log_type error")).Addr
	px := withProxy(b, broker, events.NewRecorder())
	// framed: every link's stream cut into MQTT packets by a loss fault that
	// matches no packet of these 3.1.1 flows (AUTH is 5.0 only), so it
	// measures what the framing of the packet faults costs.
	framedPx := withProxy(b, broker, events.NewRecorder())
	if _, err := framedPx.Apply(AllLinks(), Fault{Kind: Loss, Probability: 1, Packets: []string{"auth"}}); err != nil {
		b.Fatal(err)
	}
	scenarios := []struct {
		name string
		run  func(addr string) (mqttload.Result, error)
	}{
		{"p2p_qos1", func(addr string) (mqttload.Result, error) { return mqttload.PointToPoint(addr, 64, d) }},
		{"fanin_qos0", func(addr string) (mqttload.Result, error) { return mqttload.FanIn(addr, 10, d) }},
		{"fanout_qos0", func(addr string) (mqttload.Result, error) { return mqttload.FanOut(addr, 10, d) }},
	}
	for _, sc := range scenarios {
		var direct, proxied, framed float64
		for range b.N {
			for round := range 3 { // alternate, so drift in the machine's load hits both paths
				for _, path := range []struct {
					addr string
					sum  *float64
				}{{broker, &direct}, {px.Addr(), &proxied}, {framedPx.Addr(), &framed}} {
					r, err := sc.run(path.addr)
					if err != nil {
						b.Fatalf("%s round %d via %s: %v", sc.name, round, path.addr, err)
					}
					*path.sum += r.Rate
				}
			}
		}
		n := float64(3 * b.N)
		b.ReportMetric(direct/n, sc.name+"-direct-msg/s")
		b.ReportMetric(proxied/n, sc.name+"-proxied-msg/s")
		b.ReportMetric(proxied/direct, sc.name+"-proxied/direct")
		b.ReportMetric(framed/direct, sc.name+"-framed/direct")
	}
}
