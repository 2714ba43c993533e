package client

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/internal/netpark"
	"github.com/mqttfleet/mqttfleet/packet"
)

// footprintProfile, when set, names a file the footprint test writes a heap
// profile of the connected idle fleet to (go tool pprof -sample_index=inuse_space).
var footprintProfile = os.Getenv("CLIENT_FOOTPRINT_HEAPPROFILE")

// TestFleetFootprint connects many idle, subscribed clients with keepalive
// and checks what each costs in heap and goroutine stacks, as a fleet of
// tens of thousands needs:
//
//	go test ./client/ -run TestFleetFootprint -v -count=1
func TestFleetFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("connects a thousand clients (CLIENT_FOOTPRINT_N to change)")
	}
	if footprintProfile != "" {
		runtime.MemProfileRate = 1
	}
	b := startMosquitto(t)
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("CLIENT_FOOTPRINT_N")); err == nil && v > 0 {
		n = v // a bigger fleet by hand; mind the open-file limit
	}
	ctx := ctxT(t, 60*time.Second)
	onMsg := func(*packet.Publish) {}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	clients := make([]*Client, n)
	for i := range clients {
		c, _, err := Dial(ctx, b.Addr, Options{ClientID: fmt.Sprintf("fleet-%d", i),
			CleanSession: true, KeepAlive: 30 * time.Second, OnMessage: onMsg})
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if _, err := c.Subscribe(ctx, packet.Subscription{Filter: fmt.Sprintf("fleet/%d", i), QoS: 1}); err != nil {
			t.Fatalf("client %d: subscribe: %v", i, err)
		}
		clients[i] = c
	}
	waitIdle(t, clients)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perGoroutines := float64(runtime.NumGoroutine()-g0) / float64(n)
	perHeap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	perStack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(n)
	t.Logf("per idle client: %.2f goroutines, %.0f B heap, %.0f B stack, %.0f B total", perGoroutines, perHeap, perStack, perHeap+perStack)
	if footprintProfile != "" {
		writeHeapProfile(t, footprintProfile)
	}
	if raceEnabled {
		t.Log("race detector on: bounds not checked")
	} else {
		if perGoroutines > maxIdleGoroutines {
			t.Errorf("%.2f goroutines per idle client, want at most %v", perGoroutines, maxIdleGoroutines)
		}
		if perHeap+perStack > maxIdleBytes {
			t.Errorf("%.0f B heap+stack per idle client, want at most %d", perHeap+perStack, maxIdleBytes)
		}
	}
	for _, c := range clients {
		if err := c.Close(); err != nil || !errors.Is(c.Err(), ErrClosed) {
			t.Fatalf("close: %v / %v", err, c.Err())
		}
	}
}

func writeHeapProfile(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatalf("heap profile: %v", err)
	}
}

// TestRefusesMalformedRequests: the well-behaved client refuses to send what
// a broker would drop the link for, and the link stays up.
func TestRefusesMalformedRequests(t *testing.T) {
	c, _ := connectFake(t, Options{ClientID: "strict"})
	ctx := ctxT(t, 5*time.Second)
	tests := []struct {
		name string
		do   func() error
	}{
		{"wildcard in topic name", func() error { return c.Publish(ctx, "a/+", 0, false, nil) }},
		{"empty topic name", func() error { return c.Publish(ctx, "", 1, false, nil) }},
		{"QoS 3", func() error { return c.Publish(ctx, "a", 3, false, nil) }},
		{"bad filter", func() error { _, err := c.Subscribe(ctx, packet.Subscription{Filter: "a/#/b"}); return err }},
		{"no subscriptions", func() error { _, err := c.Subscribe(ctx); return err }},
		{"no unsubscribe filters", func() error { return c.Unsubscribe(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err == nil {
				t.Fatalf("accepted")
			}
			if c.Err() != nil {
				t.Fatalf("link ended: %v", c.Err())
			}
		})
	}
}

// Bounds for an idle client: parked (no goroutine), no read or write
// buffer. Measured 2026-11: see docs/benchmarks.md "## client".
const (
	maxIdleGoroutines = 0.01
	maxIdleBytes      = 3 << 10
)

// waitIdle returns once every client is parked, which takes parkAfter of
// silence; it fails the test after 20 s.
func waitIdle(t *testing.T, clients []*Client) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for netpark.Default().Len() < len(clients) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d clients parked after 20 s", netpark.Default().Len(), len(clients))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}
