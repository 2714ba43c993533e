package simulator

import (
	"context"
	"testing"
	"time"
)

// BenchmarkFleetEcho measures the fleet's cost per message end to end:
// 50 devices each publishing to the topic it subscribes to, against the
// in-process reference broker (so the figure includes the broker's work).
// One op is one message sent and received; lost/op must stay 0.
func BenchmarkFleetEcho(b *testing.B) {
	for _, qos := range []int{0, 1, 2} {
		b.Run("qos"+itoa(qos), func(b *testing.B) {
			addr := startReference(b)
			const devices = 50
			count := b.N/devices + 1
			p := echoProfile(devices, count, qos, time.Millisecond)
			p.Drain = 200 * time.Millisecond
			f, err := New(Config{Profile: p, Broker: addr})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			b.ResetTimer()
			res, err := f.Run(ctx)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			c := res.Counters
			b.ReportMetric(float64(c["lost"])/float64(b.N), "lost/op")
			b.ReportMetric(float64(c["cpu_user_ms"]+c["cpu_sys_ms"])*1e6/float64(c["received_distinct"]), "cpu-ns/msg")
			if h := res.Histograms["e2e_latency"]; h != nil {
				b.ReportMetric(float64(h.Percentile(99).Microseconds()), "p99-e2e-µs")
			}
		})
	}
}
