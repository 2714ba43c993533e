package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/internal/mosquittotest"
	"github.com/mqttfleet/mqttfleet/internal/mqttload"
)

// BenchmarkPersistence measures QoS 1 throughput from one publisher (64
// messages in flight) to one subscriber with a persistent session
// (msg/s: delivered to the subscriber; acked/s: PUBACKs to the publishers), with
// persistence off and on with each sync policy, the broker in its own
// process (this test binary re-executed, as the restart tests run it):
//
//	go test ./broker -run '^$' -bench Persistence -benchtime 1x -v
//
// and with many publishers at once (fan_in: 10 publishers, 64 in flight
// each, one persistent subscriber to all), where every_write's group commit
// shares each fsync among the connections. With persistence on, every
// message is written three times for the subscriber (queued, sent, acked)
// and each PUBACK to the publisher waits for the first one to be durable
// (every_write). MQTTFLEET_BENCH_SECONDS sets the length of each run
// (default 3). The store file is on the test's temporary directory. The
// last row of each scenario is Mosquitto (local binary) with its own
// persistence on (autosave_interval 1), in the same run.
func BenchmarkPersistence(b *testing.B) {
	d := mqttload.RunLength(3 * time.Second)
	modes := []struct{ name, yaml string }{
		{"off", ""},
		{"interval", "persistence: {enabled: true, path: %q, sync: interval, interval: 1s}\n"},
		{"every_write", "persistence: {enabled: true, path: %q, sync: every_write}\n"},
		{"mosquitto", ""}, // Mosquitto 2 with persistence true, autosave_interval 1
	}
	scenarios := []struct {
		name string
		run  func(t mqttload.Target) (mqttload.Result, error)
	}{
		{"p2p_qos1", func(t mqttload.Target) (mqttload.Result, error) { return t.PointToPoint(64, d) }},
		{"fanin_qos1", func(t mqttload.Target) (mqttload.Result, error) { return t.FanInQoS1(10, 64, d) }},
	}
	for _, sc := range scenarios {
		for _, m := range modes {
			b.Run(sc.name+"/"+m.name, func(b *testing.B) {
				dir := b.TempDir()
				if m.name == "mosquitto" {
					// Its persistence saves the whole in-memory state every
					// autosave_interval seconds (and at a graceful stop): the
					// counterpart of sync: interval, with no per-write sync.
					mq := mosquittotest.Start(b, mosquittotest.Config("persistence true",
						"persistence_location "+dir+"/", "autosave_interval 1", "log_type error"))
					var r mqttload.Result
					for range b.N {
						var err error
						if r, err = sc.run(mqttload.Target{Addr: mq.Addr, Persistent: true}); err != nil {
							b.Fatal(err)
						}
						b.Logf("%s %s: sent %d, acknowledged %d, received %d, window %d", sc.name, m.name, r.Sent, r.Acked, r.Received, r.Window)
					}
					b.ReportMetric(r.Rate, "msg/s")
					b.ReportMetric(float64(r.Acked)/d.Seconds(), "acked/s")
					return
				}
				cfg := filepath.Join(dir, "broker.yaml")
				yaml := "{}\n"
				if m.yaml != "" {
					yaml = fmt.Sprintf(m.yaml, filepath.Join(dir, "broker.db"))
				}
				if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
					b.Fatal(err)
				}
				p := startChild(b, cfg)
				defer p.stop(b)
				var r mqttload.Result
				for range b.N {
					var err error
					if r, err = sc.run(mqttload.Target{Addr: p.addr, Persistent: true}); err != nil {
						b.Fatal(err)
					}
					b.Logf("%s %s: sent %d, acknowledged %d, received %d, window %d", sc.name, m.name, r.Sent, r.Acked, r.Received, r.Window)
				}
				b.ReportMetric(r.Rate, "msg/s")
				b.ReportMetric(float64(r.Acked)/d.Seconds(), "acked/s")
			})
		}
	}
}
