package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestParkedKeepaliveUnderChurn reproduces what the fleet simulator found:
// with thousands of idle connections parked in the poller while others
// close and reconnect (so socket descriptors are reused) and the rest
// publish now and then, no connection may be closed for keepalive before
// 1.5x its keepalive [MQTT-3.1.2-24]. Every keepalive here is 30 s and the
// test lasts about 12 s, so any keepalive disconnect is a bug.
func TestParkedKeepaliveUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("12 s stress test")
	}
	const (
		stable   = 2000 // publish every 1.2-3.2 s, parked in between
		churners = 400  // connect, stay 0.3-2.5 s (parked or not), leave, again
		runFor   = 10 * time.Second
	)
	var keepaliveEnds atomic.Int64
	var firstEnd sync.Once
	var firstDetail string
	sink := events.SinkFunc(func(e events.Event) {
		if e.Kind == events.Disconnect && e.Cause == events.CauseKeepalive {
			keepaliveEnds.Add(1)
			firstEnd.Do(func() { firstDetail = e.ClientID + ": " + e.Detail })
		}
	})
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Events = sink
	cfg.ConnectTimeout = 20 * time.Second
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := strings.TrimPrefix(b.Addr("tcp"), "tcp://")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var clientErrs atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		if clientErrs.Add(1) == 1 {
			firstErr.Store(err.Error())
		}
	}
	// Connect the stable clients first, so they are parked when churn starts.
	ready := make(chan struct{}, stable)
	for i := range stable {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stableClient(ctx, addr, i, ready); err != nil && ctx.Err() == nil {
				fail(err)
			}
		}()
	}
	connectBy := time.After(30 * time.Second)
	for range stable {
		select {
		case <-ready:
		case <-connectBy:
			cancel()
			wg.Wait()
			t.Fatalf("stable clients not connected in 30 s (%d errors, first: %v)", clientErrs.Load(), firstErr.Load())
		}
	}
	start := time.Now()
	for j := range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := churnClient(ctx, addr, j); err != nil && ctx.Err() == nil {
				fail(err)
			}
		}()
	}
	select {
	case <-time.After(runFor):
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	t.Logf("%v of churn and sporadic traffic; %d parked at the end; %d client errors",
		time.Since(start).Round(time.Millisecond), b.Stats().Parked, clientErrs.Load())
	if n := keepaliveEnds.Load(); n != 0 {
		t.Errorf("%d connections closed for keepalive 30 s within %v (first: %s)", n, time.Since(start), firstDetail)
	}
	if n := clientErrs.Load(); n != 0 {
		t.Errorf("%d client errors, first: %v", n, firstErr.Load())
	}
}

// dialRaw connects a raw MQTT client with keepalive 30 s.
func dialRaw(ctx context.Context, addr, id string) (*client.Raw, error) {
	nc, err := (&net.Dialer{Timeout: 20 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", id, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r, ack, err := client.RawConnect(cctx, nc, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311,
		ClientID: id, CleanSession: true, KeepAlive: 30})
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("connect %s: %w", id, err)
	}
	if ack.ReturnCode != packet.Accepted {
		_ = nc.Close()
		return nil, fmt.Errorf("connect %s: CONNACK %d", id, ack.ReturnCode)
	}
	return r, nil
}

// pause waits d (the client's own schedule) or until ctx ends.
func pause(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// stableClient subscribes to its own topic and publishes a QoS 1 message to
// it every 1.2-3.2 s, acknowledging the echo, until ctx ends.
func stableClient(ctx context.Context, addr string, i int, ready chan<- struct{}) error {
	id := fmt.Sprintf("stable-%d", i)
	r, err := dialRaw(ctx, addr, id)
	if err != nil {
		return err
	}
	defer r.Close()
	topic := "stress/" + id
	if err := r.WritePacket(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: topic, QoS: 1}}}); err != nil {
		return fmt.Errorf("%s subscribe: %w", id, err)
	}
	if _, err := r.ReadPacket(20 * time.Second); err != nil {
		return fmt.Errorf("%s suback: %w", id, err)
	}
	ready <- struct{}{}
	rng := rand.New(rand.NewPCG(uint64(i), 1))
	for n := 0; n < 100; n++ {
		if !pause(ctx, 1200*time.Millisecond+time.Duration(rng.IntN(2000))*time.Millisecond) {
			break
		}
		id16 := uint16(n%60000 + 2)
		if err := r.WritePacket(&packet.Publish{Topic: topic, QoS: 1, PacketID: id16, Payload: []byte("x")}); err != nil {
			return fmt.Errorf("%s publish %d: %w", id, n, err)
		}
		for gotAck, gotPub := false, false; !gotAck || !gotPub; {
			p, err := r.ReadPacket(20 * time.Second)
			if err != nil {
				return fmt.Errorf("%s after publish %d: %w", id, n, err)
			}
			switch p := p.(type) {
			case *packet.Puback:
				gotAck = true
			case *packet.Publish:
				gotPub = true
				if err := r.WritePacket(&packet.Puback{PacketID: p.PacketID}); err != nil {
					return fmt.Errorf("%s puback: %w", id, err)
				}
			}
		}
	}
	_ = r.WritePacket(&packet.Disconnect{})
	return nil
}

// churnClient connects, stays 0.3-2.5 s (long enough to be parked about
// half the time), leaves with DISCONNECT or by closing the socket, and
// comes back, until ctx ends: descriptors of parked connections are freed
// and reused all the time.
func churnClient(ctx context.Context, addr string, j int) error {
	rng := rand.New(rand.NewPCG(uint64(j), 2))
	for n := 0; n < 100 && ctx.Err() == nil; n++ {
		r, err := dialRaw(ctx, addr, fmt.Sprintf("churn-%d-%d", j, n))
		if err != nil {
			return err
		}
		stay := pause(ctx, 300*time.Millisecond+time.Duration(rng.IntN(2200))*time.Millisecond)
		if stay && rng.IntN(2) == 0 {
			_ = r.WritePacket(&packet.Disconnect{})
		}
		_ = r.Close()
	}
	return nil
}
