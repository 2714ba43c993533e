package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves Prometheus /metrics from the broker's own registry, so
// several brokers in one process (tests) do not collide.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
	log interface{ Error(string, ...any) }
}

// startMetrics binds the metrics address and registers the broker's collectors.
func (b *Broker) startMetrics(addr string) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "mqttfleet", Subsystem: "broker", Name: name, Help: help},
			func() float64 { return f(b.Stats()) })
	}
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "mqttfleet", Subsystem: "broker", Name: name, Help: help},
			func() float64 { return float64(f()) })
	}
	collectors := []prometheus.Collector{
		gauge("clients_connected", "Connections past CONNACK 0.", func(s Stats) float64 { return float64(s.ClientsConnected) }),
		gauge("connections", "Open sockets, connected or not.", func(s Stats) float64 { return float64(s.Connections) }),
		gauge("sessions", "Sessions held, online or offline.", func(s Stats) float64 { return float64(s.Sessions) }),
		gauge("retained_messages", "Retained messages stored.", func(s Stats) float64 { return float64(s.Retained) }),
		gauge("subscriptions", "Subscriptions in the topic tree.", func(s Stats) float64 { return float64(s.Subscriptions) }),
		gauge("parked_connections", "Idle connections parked in the poller, holding no goroutine.", func(s Stats) float64 { return float64(s.Parked) }),
		gauge("uptime_seconds", "Seconds since the broker was created.", func(s Stats) float64 { return s.Uptime.Seconds() }),
		counter("messages_received_total", "PUBLISH packets received from clients.", b.msgIn.Load),
		counter("messages_sent_total", "PUBLISH packets written to clients.", b.msgOut.Load),
		counter("messages_dropped_total", "Messages dropped (queue full, not authorized, slow consumer).", b.dropped.Load),
		counter("bytes_sent_total", "Bytes written to clients.", b.bytesOut.Load),
		counter("bytes_received_total", "Bytes read from client sockets.", b.bytesIn.Load),
		prometheus.NewGoCollector(),
		prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
	}
	for l := range numLimits {
		collectors = append(collectors, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "mqttfleet", Subsystem: "broker", Name: "limit_refusals_total",
			Help:        "Subscriptions, messages and retained messages refused by a configured limit, by limit.",
			ConstLabels: prometheus.Labels{"limit": l.String()},
		}, func() float64 { return float64(b.limitHits[l].Load()) }))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metric: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return &metricsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, log: b.log}, nil
}

// serve runs the HTTP server until close.
func (m *metricsServer) serve(wg *sync.WaitGroup) {
	defer wg.Done()
	if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		m.log.Error("metrics server stopped", "err", err)
	}
}

// close stops the server, letting scrapes in progress finish briefly.
func (m *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil {
		_ = m.srv.Close()
	}
}
