package simulator

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Counts is one reading of the Live counters.
type Counts struct {
	Connected, Connects, ConnectFailures, Disconnects, Reconnects, Takeovers int64
	Sent, Received, Acked, Duplicates                                        int64
}

// Read takes a reading of the live counters.
func (l *Live) Read() Counts {
	return Counts{
		Connected: l.Connected.Load(), Connects: l.Connects.Load(), ConnectFailures: l.ConnectFailures.Load(),
		Disconnects: l.Disconnects.Load(), Reconnects: l.Reconnects.Load(), Takeovers: l.Takeovers.Load(),
		Sent: l.Sent.Load(), Received: l.Received.Load(), Acked: l.Acked.Load(), Duplicates: l.Duplicates.Load(),
	}
}

// Progress writes a status line every interval until done is closed. On a
// terminal (tty) the line is redrawn in place; otherwise each reading is a
// plain line, fit for logs. prefix labels the lines (a shard).
func (f *Fleet) Progress(done <-chan struct{}, w io.Writer, every time.Duration, tty bool, prefix string) {
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	prev, prevAt := f.liveCounts(), start
	for {
		select {
		case <-done:
			if tty {
				fmt.Fprintln(w)
			}
			return
		case now := <-t.C:
			// The same counters the results file will hold (the Collector's),
			// so the last progress line and the summary never disagree; the
			// connected gauge, reconnects and duplicates are the fleet's own,
			// which the results take too.
			c := f.liveCounts()
			secs := now.Sub(prevAt).Seconds()
			line := fmt.Sprintf("%s%4.0fs connected %d/%d  connects %d (%.0f/s) failed %d  disc %d reconn %d takeovers %d  sent %d (%.0f/s) recv %d (%.0f/s) acked %d dup %d",
				prefix, now.Sub(start).Seconds(), c.Connected, len(f.devices), c.Connects, float64(c.Connects-prev.Connects)/secs,
				c.ConnectFailures, c.Disconnects, c.Reconnects, c.Takeovers,
				c.Sent, float64(c.Sent-prev.Sent)/secs, c.Received, float64(c.Received-prev.Received)/secs, c.Acked, c.Duplicates)
			if tty {
				fmt.Fprintf(w, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(w, strings.TrimSpace(line))
			}
			prev, prevAt = c, now
		}
	}
}

// MetricsHandler serves the live counters in the Prometheus text format,
// read at scrape time (nothing is kept per device).
func (f *Fleet) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"run": f.p.Name, "shard": f.cfg.Shard.String(), "driver": f.driver.Name()}
	gauge := func(name, help string, read func(Counts) int64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "mqttfleet", Subsystem: "sim", Name: name, Help: help, ConstLabels: labels,
		}, func() float64 { return float64(read(f.Live.Read())) }))
	}
	counter := func(name, help string, read func(Counts) int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "mqttfleet", Subsystem: "sim", Name: name, Help: help, ConstLabels: labels,
		}, func() float64 { return float64(read(f.Live.Read())) }))
	}
	gauge("devices", "Devices in this fleet (shard).", func(Counts) int64 { return int64(len(f.devices)) })
	gauge("connected", "Devices connected now.", func(c Counts) int64 { return c.Connected })
	counter("connects_total", "Accepted CONNACKs.", func(c Counts) int64 { return c.Connects })
	counter("connect_failures_total", "Connect attempts refused or failed.", func(c Counts) int64 { return c.ConnectFailures })
	counter("disconnects_total", "Connections ended.", func(c Counts) int64 { return c.Disconnects })
	counter("reconnects_total", "Connections after a device's first.", func(c Counts) int64 { return c.Reconnects })
	counter("takeovers_total", "Devices closed while their client ID connected elsewhere.", func(c Counts) int64 { return c.Takeovers })
	counter("messages_sent_total", "PUBLISH packets sent.", func(c Counts) int64 { return c.Sent })
	counter("messages_received_total", "PUBLISH packets received.", func(c Counts) int64 { return c.Received })
	counter("messages_acked_total", "QoS 1/2 flows completed.", func(c Counts) int64 { return c.Acked })
	counter("messages_duplicated_total", "Sequence numbers received again.", func(c Counts) int64 { return c.Duplicates })
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// liveCounts reads the progress figures from the results model (the
// Collector's totals) and the fleet's gauges.
func (f *Fleet) liveCounts() Counts {
	t := f.col.Totals()
	l := f.Live.Read()
	return Counts{
		Connected: l.Connected, Reconnects: l.Reconnects, Duplicates: f.tr.dup.Load(),
		Connects: t["connects"], ConnectFailures: t["connect_failures"], Disconnects: t["disconnects"],
		Takeovers: t["takeovers"], Sent: t["publishes_sent"], Received: t["publishes_received"], Acked: t["publishes_acked"],
	}
}
