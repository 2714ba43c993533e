package netpark

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkParkUntil parks connections with a keepalive deadline while
// others with deadlines are already parked, as a broker does when a fleet
// goes idle, and takes each back. cpu-ns/op is the whole process's CPU per
// park and unpark, the Poller's goroutine included.
func BenchmarkParkUntil(b *testing.B) {
	p, err := New()
	if err != nil {
		b.Skipf("no poller here: %v", err)
	}
	defer p.Close()
	const n = 256
	conns := make([]net.Conn, n)
	for i := range conns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		_ = ln.Close()
		defer c.Close()
		defer s.Close()
		conns[i] = c
	}
	far := time.Now().Add(time.Hour)
	if !p.ParkUntil(conns[0], far, func() {}) { // keeps the goroutine scanning deadlines
		b.Fatal("ParkUntil refused")
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := range b.N {
		c := conns[1+i%(n-1)]
		if !p.ParkUntil(c, far, func() {}) {
			b.Fatal("ParkUntil refused")
		}
		if !p.Unpark(c) {
			b.Fatal("Unpark reported false")
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}
