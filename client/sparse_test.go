//go:build unix

package client

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// TestSparseFleetCPU is a measurement, not a check: 4,000 clients each
// publish a QoS 1 message to their own topic every 4 s and receive it back
// (1,000 messages/s in all), so nearly every message wakes a parked client.
// It logs this process's CPU time per message (user+sys, Mosquitto not
// included):
//
//	CLIENT_SPARSE_CPU=1 go test ./client/ -run TestSparseFleetCPU -v -count=1
func TestSparseFleetCPU(t *testing.T) {
	if os.Getenv("CLIENT_SPARSE_CPU") == "" {
		t.Skip("a 25 s measurement; set CLIENT_SPARSE_CPU=1 to run it")
	}
	b := startMosquitto(t)
	const n, perTick, tick, duration = 4000, 10, 10 * time.Millisecond, 20 * time.Second
	ctx := ctxT(t, 2*time.Minute)
	var got atomic.Int64
	clients := make([]*Client, n)
	topics := make([]string, n)
	for i := range clients {
		topics[i] = fmt.Sprintf("sparse/%d", i)
		c, _, err := Dial(ctx, b.Addr, Options{ClientID: fmt.Sprintf("sparse-%d", i), CleanSession: true,
			KeepAlive: 30 * time.Second, OnMessage: func(*packet.Publish) { got.Add(1) }})
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer c.Close()
		if _, err := c.Subscribe(ctx, packet.Subscription{Filter: topics[i], QoS: 1}); err != nil {
			t.Fatalf("client %d: subscribe: %v", i, err)
		}
		clients[i] = c
	}
	cpu0, start := cpuTime(), time.Now()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	sent := 0
	payload := make([]byte, 32)
	for time.Since(start) < duration {
		<-ticker.C
		for range perTick {
			clients[sent%n].PublishAsync(ctx, topics[sent%n], 1, false, payload)
			sent++
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < int64(sent) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	cpu := cpuTime() - cpu0
	if got.Load() != int64(sent) {
		t.Errorf("received %d of %d", got.Load(), sent)
	}
	t.Logf("%d messages, CPU %v: %.1f µs per message", sent, cpu.Round(time.Millisecond), float64(cpu)/float64(sent)/1e3)
}

// cpuTime is this process's user+sys CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
