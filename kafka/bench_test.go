package kafka

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/internal/brokertest"
	"github.com/mqttfleet/mqttfleet/simulator/payload"
)

// latencies keeps device -> Kafka latencies of what a watcher read.
type latencies struct {
	mu sync.Mutex
	ds []time.Duration
}

func (l *latencies) Deliver(d Delivery) {
	if !d.HasHeader || d.Header.Run != testRun {
		return
	}
	l.mu.Lock()
	l.ds = append(l.ds, d.At.Sub(d.Header.Sent))
	l.mu.Unlock()
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ds)
}

func (l *latencies) p(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ds) == 0 {
		return 0
	}
	ds := append([]time.Duration(nil), l.ds...)
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, int(float64(len(ds))*q))]
}

// BenchmarkDeviceToKafka measures devices -> reference broker -> bridge ->
// kfake -> watcher, QoS 1, 50 devices publishing side by side with up to 20
// messages each in flight: records per second through the whole path and
// the p50/p99 device -> Kafka latency (publish to read by the watcher),
// sync producer against async.
//
//	go test -run '^$' -bench DeviceToKafka -benchtime 20000x ./kafka/
func BenchmarkDeviceToKafka(b *testing.B) {
	for _, mode := range []string{ModeSync, ModeAsync} {
		b.Run(mode, func(b *testing.B) {
			const devices = 50
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			// The bridge is one subscriber taking every device's messages:
			// a queue deep enough that the broker never drops for it.
			br := brokertest.Start(b, func(c *broker.Config) { c.MaxQueued = 1 << 20 })
			cl, err := StartCluster(ClusterConfig{Brokers: 3, Topics: []Topic{{Name: "telemetry", Partitions: 4}}})
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			cfg := BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+/t"}, QoS: 1,
				Brokers: cl.Addrs(), Topic: "telemetry", Mode: mode, Acks: "all", Idempotent: true, KeyLevel: 1}
			if mode == ModeAsync {
				cfg.Linger = time.Millisecond
			}
			bridge, err := StartBridge(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer bridge.Close()
			lat := &latencies{}
			w, err := StartWatcher(WatcherConfig{Name: "watcher", Brokers: cl.Addrs(), Topic: "telemetry", Sink: lat, Commit: CommitAuto})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			<-w.Ready()
			conns := make([]*client.Client, devices)
			for i := range conns {
				c, _, err := client.Dial(ctx, brokertest.TCP(br), client.Options{ClientID: fmt.Sprintf("dev-%d", i), CleanSession: true, MaxInflight: 20})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Disconnect(context.Background())
				conns[i] = c
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i, c := range conns {
				n := b.N / devices
				if i < b.N%devices {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					toks := make([]*client.Token, 0, n)
					for s := 1; s <= n; s++ {
						msg := payload.AppendHeader(make([]byte, 0, 128), payload.Header{Run: testRun, Device: uint32(i), Seq: uint64(s), Sent: time.Now()})
						msg = append(msg, make([]byte, 100)...)
						toks = append(toks, c.PublishAsync(ctx, fmt.Sprintf("fleet/dev-%d/t", i), 1, false, msg))
					}
					for _, t := range toks {
						if err := t.Wait(ctx); err != nil {
							b.Errorf("publish: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			last, lastAt := -1, time.Now()
			for n := lat.count(); n < b.N; n = lat.count() {
				if n != last {
					last, lastAt = n, time.Now()
				}
				if time.Since(lastAt) > 20*time.Second {
					b.Fatalf("read %d of %d records, none for 20s; bridge %+v", n, b.N, bridge.Stats())
				}
				time.Sleep(time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
			b.ReportMetric(float64(lat.p(0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat.p(0.99).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkBridgeMemoryPerInFlight measures the bridge's heap per record in
// flight: the cluster holds every produce request (Cluster.HoldProduce), a
// device publishes b.N QoS 1 messages, and once the bridge's in-flight
// count stops growing (the async producer's buffers are full, the MQTT
// intake back-pressured) the live heap grown since before the run is
// divided by the records in flight. Then the cluster answers and every
// record must be produced.
//
//	go test -run '^$' -bench BridgeMemoryPerInFlight -benchtime 20000x ./kafka/
func BenchmarkBridgeMemoryPerInFlight(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	br := brokertest.Start(b, func(c *broker.Config) { c.MaxQueued = 1 << 20 })
	cl, err := StartCluster(ClusterConfig{Brokers: 1, Topics: []Topic{{Name: "telemetry", Partitions: 4}}})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	bridge, err := StartBridge(ctx, BridgeConfig{Name: "bridge", MQTT: brokertest.TCP(br), Filters: []string{"fleet/+/t"}, QoS: 1,
		Brokers: cl.Addrs(), Topic: "telemetry", Mode: ModeAsync, Acks: "all", KeyLevel: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer bridge.Close()
	dev, _, err := client.Dial(ctx, brokertest.TCP(br), client.Options{ClientID: "dev", CleanSession: true, MaxInflight: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Disconnect(context.Background())
	release := cl.HoldProduce()
	defer release()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	b.ResetTimer()
	go func() {
		for s := 1; s <= b.N; s++ {
			msg := payload.AppendHeader(make([]byte, 0, 128), payload.Header{Run: testRun, Seq: uint64(s), Sent: time.Now()})
			msg = append(msg, make([]byte, 100)...)
			if err := dev.PublishAsync(ctx, fmt.Sprintf("fleet/dev-%d/t", s%50), 1, false, msg).Err(); err != nil && ctx.Err() == nil {
				b.Errorf("publish: %v", err)
				return
			}
		}
	}()
	// In flight grows until the producer's buffers are full or every
	// message is in; it is settled once it has not moved for a second.
	var inflight int64
	for last, since := int64(-1), time.Now(); ; time.Sleep(20 * time.Millisecond) {
		inflight = bridge.Stats().InFlight
		if inflight != last {
			last, since = inflight, time.Now()
		} else if time.Since(since) > time.Second {
			break
		}
		if ctx.Err() != nil {
			b.Fatal("in flight never settled")
		}
	}
	grown := int64(heap()) - int64(before)
	b.StopTimer()
	release()
	for st := bridge.Stats(); st.Produced < int64(b.N); st = bridge.Stats() {
		if ctx.Err() != nil {
			b.Fatalf("after release: %+v, want %d produced", st, b.N)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if inflight == 0 {
		b.Fatal("nothing was in flight")
	}
	b.ReportMetric(float64(inflight), "records-in-flight")
	b.ReportMetric(float64(grown)/float64(inflight), "heap-B/record")
}
