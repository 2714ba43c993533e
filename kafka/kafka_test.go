package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/simulator/payload"
)

const testRun = 0xfeed

// tally counts what a watcher read, per device, like the run's accounting.
type tally struct {
	mu       sync.Mutex
	seen     map[uint32]map[uint64]int
	max      map[uint32]uint64
	total    int
	dup, ooo int
}

func newTally() *tally {
	return &tally{seen: map[uint32]map[uint64]int{}, max: map[uint32]uint64{}}
}

func (t *tally) Deliver(d Delivery) {
	if !d.HasHeader || d.Header.Run != testRun {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	dev, seq := d.Header.Device, d.Header.Seq
	if t.seen[dev] == nil {
		t.seen[dev] = map[uint64]int{}
	}
	t.seen[dev][seq]++
	t.total++
	switch {
	case t.seen[dev][seq] > 1:
		t.dup++
	case seq < t.max[dev]:
		t.ooo++
	default:
		t.max[dev] = seq
	}
}

// distinct is how many different (device, seq) were read.
func (t *tally) distinct() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, m := range t.seen {
		n += len(m)
	}
	return n
}

func (t *tally) counts() (total, dup, ooo int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total, t.dup, t.ooo
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startCluster(t *testing.T, topics ...Topic) *Cluster {
	t.Helper()
	c, err := StartCluster(ClusterConfig{Brokers: 3, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// fleet is a few MQTT publishers with sequence headers, QoS 1, on
// fleet/dev-<i>/t.
type fleet struct {
	conns []*client.Client
	next  []uint64
}

func newFleet(t *testing.T, ctx context.Context, addr string, devices int) *fleet {
	t.Helper()
	f := &fleet{conns: make([]*client.Client, devices), next: make([]uint64, devices)}
	for i := range f.conns {
		c, _, err := client.Dial(ctx, addr, client.Options{ClientID: fmt.Sprintf("dev-%d", i), CleanSession: true})
		if err != nil {
			t.Fatal(err)
		}
		f.conns[i] = c
		t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	}
	return f
}

// publish sends n more messages from every device, the devices side by
// side, each waiting for its PUBACK.
func (f *fleet) publish(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i, c := range f.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < n; k++ {
				f.next[i]++
				msg := payload.AppendHeader(nil, payload.Header{Run: testRun, Device: uint32(i), Seq: f.next[i], Sent: time.Now()})
				if err := c.Publish(ctx, fmt.Sprintf("fleet/dev-%d/t", i), 1, false, msg); err != nil {
					t.Errorf("device %d publish %d: %v", i, f.next[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func startBridge(t *testing.T, cfg BridgeConfig) *Bridge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := StartBridge(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func startWatcher(t *testing.T, cfg WatcherConfig) *Watcher {
	t.Helper()
	w, err := StartWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("watcher was never given partitions")
	}
	return w
}

// TestBridgeOrder runs devices -> broker -> bridge -> kfake -> watcher in
// each mode: with the hash partitioner every record arrives once and in
// order per device; with the random one the per-device order breaks.
func TestBridgeOrder(t *testing.T) {
	for _, tc := range []struct {
		mode, partitioner string
		wantOrdered       bool
	}{
		{ModeSync, PartitionHash, true},
		{ModeAsync, PartitionHash, true},
		{ModeAsync, PartitionRandom, false},
	} {
		t.Run(tc.mode+"-"+tc.partitioner, func(t *testing.T) {
			const devices, n = 20, 25
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			br := brokertest.Start(t, nil)
			cl := startCluster(t, Topic{Name: "telemetry", Partitions: 4})
			b := startBridge(t, BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+/t"}, QoS: 1,
				Brokers: cl.Addrs(), Topic: "telemetry", Mode: tc.mode, Acks: "all", Partitioner: tc.partitioner, KeyLevel: 1,
				Linger: 5 * time.Millisecond})
			newFleet(t, ctx, brokertest.TCP(br), devices).publish(t, ctx, n)
			eventually(t, 30*time.Second, "every record produced", func() bool { return b.Stats().Produced == devices*n })
			// The watcher starts after everything is in Kafka, so it reads
			// whole partitions one after another: what the partitioner
			// spread over several partitions comes back interleaved.
			tl := newTally()
			w := startWatcher(t, WatcherConfig{Name: "watcher", Brokers: cl.Addrs(), Topic: "telemetry", Sink: tl})
			eventually(t, 30*time.Second, "every record read", func() bool { return tl.distinct() == devices*n })
			if ok, err := CaughtUp(ctx, w); err != nil || !ok {
				t.Fatalf("caught up = %v, %v after reading every record", ok, err)
			}
			total, dup, ooo := tl.counts()
			st := b.Stats()
			if st.Failed != 0 || st.InFlight != 0 || st.Received != devices*n {
				t.Errorf("bridge stats %+v, want %d received, none failed or in flight", st, devices*n)
			}
			if dup != 0 || total != devices*n {
				t.Errorf("read %d records with %d duplicates, want %d and none", total, dup, devices*n)
			}
			if tc.wantOrdered && ooo != 0 {
				t.Errorf("%d records out of order per device with the hash partitioner, want 0", ooo)
			}
			if !tc.wantOrdered && ooo == 0 {
				t.Errorf("no record out of order per device with the random partitioner over 4 partitions")
			}
		})
	}
}

// TestAcksUnderProduceFailures: while produce requests fail with
// NOT_LEADER_FOR_PARTITION, acks=0 loses what it sent (it never hears the
// error) while acks=all with idempotence retries past the window and loses
// nothing, duplicates nothing.
func TestAcksUnderProduceFailures(t *testing.T) {
	for _, tc := range []struct {
		acks       string
		idempotent bool
		wantLoss   bool
	}{
		{"0", false, true},
		{"all", true, false},
	} {
		t.Run("acks="+tc.acks, func(t *testing.T) {
			const devices, n = 5, 5
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			br := brokertest.Start(t, nil)
			cl := startCluster(t, Topic{Name: "telemetry", Partitions: 2})
			b := startBridge(t, BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+/t"}, QoS: 1,
				Brokers: cl.Addrs(), Topic: "telemetry", Mode: ModeSync, Acks: tc.acks, Idempotent: tc.idempotent,
				KeyLevel: 1, Retries: 100, Backoff: 10 * time.Millisecond})
			tl := newTally()
			w := startWatcher(t, WatcherConfig{Name: "watcher", Brokers: cl.Addrs(), Topic: "telemetry", Sink: tl, Commit: CommitAfter})
			f := newFleet(t, ctx, brokertest.TCP(br), devices)
			f.publish(t, ctx, n)
			eventually(t, 30*time.Second, "the first records read", func() bool { return tl.distinct() == devices*n })

			fault, err := cl.FailProduce("", kerr.NotLeaderForPartition, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.publish(t, ctx, n)
			// The window stays open until requests carrying the second
			// round have been refused (retries with acks all).
			if err := fault.Wait(ctx, 3); err != nil {
				t.Fatalf("produce requests failed during the window: %d, want 3", fault.Hits())
			}
			if tc.acks == "0" {
				eventually(t, 30*time.Second, "the second round handed to the network", func() bool {
					s := b.Stats()
					return s.Received == 2*devices*n && s.InFlight == 0
				})
			}
			fault.End()
			f.publish(t, ctx, n)
			eventually(t, 30*time.Second, "the bridge idle", func() bool {
				s := b.Stats()
				return s.Received == 3*devices*n && s.InFlight == 0
			})
			eventually(t, 30*time.Second, "the watcher caught up", func() bool {
				ok, err := CaughtUp(ctx, w)
				return err == nil && ok
			})
			total, dup, ooo := tl.counts()
			lost := 3*devices*n - tl.distinct()
			st := b.Stats()
			t.Logf("acks=%s: read %d, lost %d, dup %d, ooo %d; bridge %+v; %d requests failed", tc.acks, total, lost, dup, ooo, st, fault.Hits())
			if dup != 0 {
				t.Errorf("%d duplicates, want 0", dup)
			}
			if tc.wantLoss && lost == 0 {
				t.Errorf("acks=0 lost nothing through %d failed produce requests", fault.Hits())
			}
			if !tc.wantLoss && (lost != 0 || ooo != 0) {
				t.Errorf("acks=all idempotent lost %d and reordered %d, want 0 and 0", lost, ooo)
			}
			if !tc.wantLoss && st.Retried == 0 {
				t.Errorf("acks=all went through %d failed requests without a retry", fault.Hits())
			}
		})
	}
}

// TestUndrainedAsyncStalls: an async producer whose Successes and Errors
// nobody reads stops delivering after a few records, while its buffers keep
// taking the bridge's records (in flight grows, Kafka's end offsets do not);
// Close still returns.
func TestUndrainedAsyncStalls(t *testing.T) {
	const devices, n = 20, 100
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	br := brokertest.Start(t, nil)
	cl := startCluster(t, Topic{Name: "telemetry", Partitions: 4})
	b, err := StartBridge(ctx, BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+/t"}, QoS: 1,
		Brokers: cl.Addrs(), Topic: "telemetry", Mode: ModeAsync, Acks: "all", KeyLevel: 1, Undrained: true})
	if err != nil {
		t.Fatal(err)
	}
	tl := newTally()
	w := startWatcher(t, WatcherConfig{Name: "watcher", Brokers: cl.Addrs(), Topic: "telemetry", Sink: tl})
	newFleet(t, ctx, brokertest.TCP(br), devices).publish(t, ctx, n)
	// The stall: the bridge keeps taking records into the producer's
	// buffers while almost none reach Kafka.
	eventually(t, 30*time.Second, "the bridge to take 500 records", func() bool { return b.Stats().Received >= 500 })
	eventually(t, 30*time.Second, "the watcher to read what reached Kafka", func() bool {
		ok, err := CaughtUp(ctx, w)
		return err == nil && ok
	})
	inKafka := tl.distinct()
	st := b.Stats()
	t.Logf("undrained: %d of %d records in Kafka; bridge %+v", inKafka, devices*n, st)
	if inKafka >= 250 || st.Produced != 0 || st.InFlight < 500 {
		t.Errorf("%d records in Kafka, bridge %+v: want an undrained async producer stalled (under 250 in Kafka, none reported produced, 500 or more in flight)", inKafka, st)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close of a stalled bridge did not return within 30s")
	}
}

// TestHoldProduce: while the cluster holds produce requests the bridge's
// records stay in flight, none produced, none failed; released, every one
// is produced.
func TestHoldProduce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, bridge, dev := rig(ctx, t, ModeAsync)
	release := cl.HoldProduce()
	defer release()
	for i := range 100 {
		if err := dev.Publish(ctx, fmt.Sprintf("fleet/d%d/t", i%5), 1, false, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for st := bridge.Stats(); st.InFlight < 100; st = bridge.Stats() {
		if ctx.Err() != nil {
			t.Fatalf("held: %+v, want 100 in flight", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := bridge.Stats(); st.Produced != 0 || st.Failed != 0 {
		t.Fatalf("held: %+v, want nothing produced or failed", st)
	}
	release()
	for st := bridge.Stats(); st.Produced < 100; st = bridge.Stats() {
		if ctx.Err() != nil {
			t.Fatalf("released: %+v, want 100 produced", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := bridge.Stats(); st.InFlight != 0 || st.Failed != 0 {
		t.Errorf("released: %+v, want none in flight or failed", st)
	}
}

// TestPartitionConsumer: watchers with partitions read just those, without
// a group (no rebalance, no commit): two of them, one per partition, read
// every record once between them; mixing partitions with a group or a
// commit mode is refused.
func TestPartitionConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, bridge, dev := rig(ctx, t, ModeSync)
	type seen struct {
		mu    sync.Mutex
		parts map[int32]int
		n     int
	}
	var ws []*Watcher
	got := []*seen{{parts: map[int32]int{}}, {parts: map[int32]int{}}}
	for i := range 2 {
		s := got[i]
		w, err := StartWatcher(WatcherConfig{Name: fmt.Sprintf("p%d", i), Brokers: cl.Addrs(), Topic: "telemetry", Partitions: []int32{int32(i)},
			Sink: SinkFunc(func(d Delivery) { s.mu.Lock(); s.parts[d.Partition]++; s.n++; s.mu.Unlock() })})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		<-w.Ready()
		ws = append(ws, w)
	}
	for i := range 40 {
		if err := dev.Publish(ctx, fmt.Sprintf("fleet/d%d/t", i%8), 1, false, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	total := func() int {
		n := 0
		for _, s := range got {
			s.mu.Lock()
			n += s.n
			s.mu.Unlock()
		}
		return n
	}
	for total() < 40 {
		if ctx.Err() != nil {
			t.Fatalf("read %d of 40 (bridge %+v)", total(), bridge.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, s := range got {
		s.mu.Lock()
		for p := range s.parts {
			if p != int32(i) {
				t.Errorf("watcher p%d read partition %d", i, p)
			}
		}
		s.mu.Unlock()
	}
	if ok, err := CaughtUp(ctx, ws[0]); err != nil || !ok {
		t.Errorf("caught up on its own partition: %v %v", ok, err)
	}
	if total() != 40 {
		t.Errorf("read %d, want 40 (each record once)", total())
	}
	for _, bad := range []WatcherConfig{
		{Name: "b", Brokers: cl.Addrs(), Topic: "telemetry", Partitions: []int32{0}, Group: "g", Sink: SinkFunc(func(Delivery) {})},
		{Name: "b", Brokers: cl.Addrs(), Topic: "telemetry", Partitions: []int32{0}, Commit: CommitAfter, Sink: SinkFunc(func(Delivery) {})},
		{Name: "b", Brokers: cl.Addrs(), Topic: "telemetry", Partitions: []int32{-1}, Sink: SinkFunc(func(Delivery) {})},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// rig is a reference broker, a one-broker cluster with topic telemetry (2
// partitions), a bridge of mode from fleet/+/t into it, and a device
// client; all stopped when the test ends.
func rig(ctx context.Context, t *testing.T, mode string) (*Cluster, *Bridge, *client.Client) {
	t.Helper()
	br := brokertest.Start(t, nil)
	cl, err := StartCluster(ClusterConfig{Brokers: 1, Topics: []Topic{{Name: "telemetry", Partitions: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	bridge, err := StartBridge(ctx, BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+/t"}, QoS: 1,
		Brokers: cl.Addrs(), Topic: "telemetry", Mode: mode, Acks: "all", KeyLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bridge.Close() })
	dev, _, err := client.Dial(ctx, brokertest.TCP(br), client.Options{ClientID: "dev", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Disconnect(context.Background()) })
	return cl, bridge, dev
}
