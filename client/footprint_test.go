package client

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// TestFleetFootprint connects many idle clients with keepalive and checks
// that each costs one goroutine and a few KiB of heap, as a fleet needs.
func TestFleetFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip("connects hundreds of clients")
	}
	b := startMosquitto(t)
	const n = 400
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	clients := make([]*Client, 0, n)
	for i := range n {
		c, _, err := Dial(ctxT(t, 5*time.Second), b.addr, Options{ClientID: fmt.Sprintf("fleet-%d", i),
			CleanSession: true, KeepAlive: 30 * time.Second, OnMessage: func(*packet.Publish) {}})
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		clients = append(clients, c)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perGoroutines := float64(runtime.NumGoroutine()-g0) / n
	perHeap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	perStack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
	t.Logf("per idle client: %.2f goroutines, %.0f B heap, %.0f B stack", perGoroutines, perHeap, perStack)
	if perGoroutines > 1.01 {
		t.Errorf("%.2f goroutines per client, want 1", perGoroutines)
	}
	if perHeap > 16<<10 {
		t.Errorf("%.0f B heap per idle client, want under 16 KiB", perHeap)
	}
	for _, c := range clients {
		if err := c.Close(); err != nil || !errors.Is(c.Err(), ErrClosed) {
			t.Fatalf("close: %v / %v", err, c.Err())
		}
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
