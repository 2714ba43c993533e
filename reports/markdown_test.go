package reports

import (
	"bytes"
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	cases := []struct {
		name    string
		res     *Results
		want    []string
		notWant []string
	}{
		{"scenario", sampleResults(t), []string{
			"## ❌ FAIL — half-open-keepalive",
			"| peak connected | 400 |",
			"| e2e latency |",
			"### Failing assertions",
			"no QoS 1 message lost across the fault",
			"&lt;script&gt;",
			"| nats-2.9.10 |",
			"- `MQTT-3.1.2-2` on **nats-2.9.10**",
		}, []string{"<script>"}},
		{"passing empty", &Results{SchemaVersion: 1, Kind: KindSimulate, Run: Run{Name: "soak"}}, []string{
			"## ✅ PASS — soak", "No assertions were checked",
		}, []string{"### Failing assertions", "### Conformance"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Markdown(&buf, tc.res); err != nil {
				t.Fatal(err)
			}
			md := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(md, w) {
					t.Errorf("summary lacks %q:\n%s", w, md)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(md, w) {
					t.Errorf("summary has %q", w)
				}
			}
			if n := strings.Count(md, "\n"); n > 80 {
				t.Errorf("summary is %d lines; keep it short", n)
			}
		})
	}
}
