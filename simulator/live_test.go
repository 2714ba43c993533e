package simulator

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/internal/syncbuf"
)

// TestProgressAndMetrics scrapes the Prometheus endpoint and reads the plain
// progress lines while a small fleet runs.
func TestProgressAndMetrics(t *testing.T) {
	addr := startReference(t)
	const devices = 5
	p := echoProfile(devices, 0, 1, 50*time.Millisecond)
	p.Duration = 1500 * time.Millisecond
	rec := events.NewRecorder()
	f, err := New(Config{Profile: p, Broker: addr, Events: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.MetricsHandler())
	defer srv.Close()
	var out syncbuf.Buffer
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.Progress(stop, &out, 200*time.Millisecond, false, "[t] ") }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _, _ = f.Run(ctx) }()
	// The gauge counts devices, so every device must be seen connected:
	// a receipt by each one (any five receipts may come from fewer devices).
	for dev := 1; dev <= devices; dev++ {
		if _, err := rec.Wait(ctx, func(e events.Event) bool { return e.Kind == events.PublishReceived && e.Device == dev }); err != nil {
			t.Fatalf("no traffic to device %d: %v", dev, err)
		}
	}
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"mqttfleet_sim_connected{", "mqttfleet_sim_messages_sent_total{", "mqttfleet_sim_devices{"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	if !strings.Contains(string(body), `mqttfleet_sim_connected{driver="native",run="echo",shard="0/1"} 5`) {
		t.Errorf("connected gauge is not 5:\n%s", body)
	}
	<-done
	close(stop)
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "[t] ") || !strings.Contains(lines[len(lines)-1], "connected") {
		t.Fatalf("progress lines:\n%s", out.String())
	}
}

func TestCheckOpenFiles(t *testing.T) {
	if err := CheckOpenFiles(10); err != nil {
		t.Fatalf("10 devices refused: %v", err)
	}
	err := CheckOpenFiles(1 << 30)
	if err == nil || !strings.Contains(err.Error(), "--procs") || !strings.Contains(err.Error(), "open files") {
		t.Fatalf("want an error naming the limit and --procs, got %v", err)
	}
}

// TestProgressReadsTheResultsModel: once a run is over, the progress
// figures are the results file's counters, so the last progress line and
// the summary cannot disagree.
func TestProgressReadsTheResultsModel(t *testing.T) {
	addr := startReference(t)
	p := echoProfile(3, 0, 1, 50*time.Millisecond)
	p.Duration = time.Second
	f, err := New(Config{Profile: p, Broker: addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := f.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := f.liveCounts()
	for name, got := range map[string]int64{"connects": c.Connects, "publishes_sent": c.Sent,
		"publishes_received": c.Received, "publishes_acked": c.Acked, "duplicates": c.Duplicates, "reconnects": c.Reconnects} {
		if want := res.Counters[name]; got != want {
			t.Errorf("progress %s = %d, results say %d", name, got, want)
		}
	}
	if c.Sent == 0 || c.Received == 0 {
		t.Fatalf("nothing flowed: %+v", c)
	}
}
