package reports

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// realRun drives the in-process reference broker on 127.0.0.1 with a few
// publisher/subscriber pairs for a few seconds, plus one client-ID
// takeover, and returns what a Collector made of every event. Receivers
// report end-to-end latency from a send time in the payload, as the
// simulator does; the client's own publish_received events (no latency)
// are left out so messages are not counted twice.
func realRun(t *testing.T) *Results {
	t.Helper()
	col := NewCollector(KindScenario, Run{Name: "real-run", Target: "reference", Version: "test", Devices: 4})
	col.TrackSequences(true)
	rec := events.NewRecorder()
	sink := events.Multi(col, rec)
	clientSink := events.SinkFunc(func(e events.Event) {
		if e.Kind != events.PublishReceived {
			sink.Emit(e)
		}
	})

	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Name: "tcp", Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Events = sink
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr := b.Addr("tcp")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const devices, messages, interval = 4, 40, 50 * time.Millisecond
	var clients []*client.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func(id string, d int, onMsg func(*packet.Publish)) *client.Client {
		c, _, err := client.Dial(ctx, addr, client.Options{ClientID: id, CleanSession: true, KeepAlive: 10 * time.Second,
			Events: clientSink, Device: d, OnMessage: onMsg})
		if err != nil {
			t.Fatalf("dial %s: %v", id, err)
		}
		clients = append(clients, c)
		return c
	}
	var wg sync.WaitGroup
	for d := 1; d <= devices; d++ {
		id := fmt.Sprintf("dev-%d", d)
		topic := "fleet/" + id + "/telemetry"
		sub := dial(id+"-sub", d, func(p *packet.Publish) {
			if len(p.Payload) < 16 {
				return
			}
			seq := binary.BigEndian.Uint64(p.Payload)
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(p.Payload[8:])))
			sink.Emit(events.Event{Time: time.Now(), Kind: events.PublishReceived, Source: events.SourceSimulator,
				ClientID: id + "-sub", Device: d, Topic: p.Topic, QoS: p.QoS, Seq: seq, Size: len(p.Payload), Latency: time.Since(sent)})
		})
		if _, err := sub.Subscribe(ctx, packet.Subscription{Filter: topic, QoS: 1}); err != nil {
			t.Fatal(err)
		}
		pub := dial(id, d, nil)
		wg.Go(func() {
			payload := make([]byte, 64)
			for i := 1; i <= messages; i++ {
				binary.BigEndian.PutUint64(payload, uint64(i))
				binary.BigEndian.PutUint64(payload[8:], uint64(time.Now().UnixNano()))
				if err := pub.Publish(ctx, topic, 1, false, payload); err != nil {
					t.Errorf("publish %s #%d: %v", id, i, err)
					return
				}
				select {
				case <-time.After(interval):
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	if _, err := rec.WaitN(ctx, events.And(events.Is(events.PublishReceived), events.From(events.SourceSimulator)), devices*messages); err != nil {
		t.Fatal(err)
	}
	// A second connection with dev-1's client ID takes its session over.
	dial("dev-1", 1, nil)
	if _, err := rec.Wait(ctx, events.Is(events.Takeover)); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.Disconnect(ctx)
	}
	clients = nil
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return col.Results()
}

// TestRealRunReport renders the report of a real run against the in-process
// broker and checks the page is well-formed, self-contained, every chart
// has data, and Chromium loads it without a console message.
func TestRealRunReport(t *testing.T) {
	defer goleak.VerifyNone(t)
	res := realRun(t)
	// Plain clients cannot tell a takeover from a dropped link: only the
	// broker saw it, and the broker's view stays out of the fleet's figure.
	if res.Counters["publishes_received"] != 160 || res.Counters["takeovers"] != 0 || res.Counters["broker_takeovers"] != 1 || res.Histograms["e2e_latency"].Count() != 160 ||
		res.Counters["lost"] != 0 || res.Counters["duplicates"] != 0 {
		t.Fatalf("counters %v", res.Counters)
	}
	res.AddAssertion(Assertion{Name: "every message delivered once", Verdict: Pass, Message: "160 of 160, no gaps, no duplicates"})
	page := renderHTML(t, res)
	els, style := parseXHTML(t, page)
	checkSelfContained(t, els, style)
	data := chartData(els)
	for _, c := range []string{"connected", "messages", "latency", "takeovers", "disconnects"} {
		if data[c] == 0 {
			t.Errorf("chart %q has no data (%v)", c, data)
		}
	}
	var junit bytes.Buffer
	if err := JUnit(&junit, res); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("MQTTFLEET_REPORT_DIR"); out != "" {
		// For looking at: MQTTFLEET_REPORT_DIR=/tmp go test ./reports -run RealRun
		if err := res.Write(filepath.Join(out, "real-run.json")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "real-run.html"), page, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if bin := chromium(); bin != "" {
		loadInChromium(t, bin, page, 5)
	}
}
