package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
)

// writeShard writes the results of a small fleet shard: devices
// [first, first+n) each connect, publish 10 messages with latencies, and leave.
func writeShard(t *testing.T, path string, index, count, first, n int) {
	t.Helper()
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	c := reports.NewCollector(reports.KindSimulate, reports.Run{Name: "cli", Target: "reference", Shard: reports.Shard{Index: index, Count: count}, Devices: n})
	for d := first; d < first+n; d++ {
		id := fmt.Sprintf("dev-%d", d)
		at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
		c.Emit(events.Event{Time: at(float64(d) / 10), Kind: events.ConnAck, Source: events.SourceClient, ClientID: id, Device: d + 1, Latency: time.Duration(d+1) * time.Millisecond})
		for i := 1; i <= 10; i++ {
			c.Emit(events.Event{Time: at(float64(i)), Kind: events.PublishSent, Source: events.SourceClient, ClientID: id, Device: d + 1})
			c.Emit(events.Event{Time: at(float64(i) + 0.01), Kind: events.PublishReceived, Source: events.SourceClient, ClientID: id + "-sub", Device: d + 1, Seq: uint64(i), Topic: "t/" + id, Latency: time.Duration(d*i+1) * 100 * time.Microsecond})
		}
		c.Emit(events.Event{Time: at(12), Kind: events.Disconnect, Source: events.SourceClient, ClientID: id, Device: d + 1, Cause: events.CauseClientDisconnect})
	}
	if err := c.Results().Write(path); err != nil {
		t.Fatal(err)
	}
}

// runReport runs `mqttfleet report args...`.
func runReport(ctx context.Context, args []string) error {
	return execute(ctx, append([]string{"report"}, args...))
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	for i := range 4 {
		writeShard(t, filepath.Join(dir, fmt.Sprintf("shard-%d.json", i)), i, 4, i*5, 5)
	}
	merged := filepath.Join(dir, "merged.json")
	ctx := context.Background()
	if err := runReport(ctx, []string{"merge", "-o", merged, filepath.Join(dir, "shard-*.json")}); err != nil {
		t.Fatal(err)
	}
	res, err := reports.Read(merged)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != reports.KindMerged || res.Counters["publishes_sent"] != 200 || res.Counters["connects"] != 20 || len(res.Run.Shards) != 4 {
		t.Fatalf("merged: kind %s counters %v shards %v", res.Kind, res.Counters, res.Run.Shards)
	}
	cases := []struct{ format, want string }{
		{"html", "<!DOCTYPE html>"},
		{"junit", "<testsuites"},
		{"md", "## ✅ PASS — cli"},
	}
	for _, tc := range cases {
		t.Run(tc.format, func(t *testing.T) {
			out := filepath.Join(dir, "out."+tc.format)
			if err := runReport(ctx, []string{tc.format, "-o", out, merged}); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%s output lacks %q (err %v)", tc.format, tc.want, err)
			}
		})
	}
}

func TestReportCommandErrors(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.json")
	if err := os.WriteFile(newer, []byte(`{"schema_version": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no subcommand", nil, true, "subcommand"},
		{"unknown format", []string{"pdf", "x.json"}, true, "unknown report"},
		{"two inputs", []string{"html", "a.json", "b.json"}, true, "one results file"},
		{"merge without -o", []string{"merge", "a.json"}, true, "-o"},
		{"missing file", []string{"md", filepath.Join(dir, "nope.json")}, false, "nope.json"},
		{"newer schema", []string{"junit", newer}, false, "newer.json: schema version 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := runReport(context.Background(), tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
				t.Fatalf("err = %v, want one containing %q (usage error: %v)", err, tc.want, tc.usage)
			}
		})
	}
}
