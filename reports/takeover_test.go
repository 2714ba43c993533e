package reports

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// TestTakeoversFleetView: takeovers reported by the fleet and by the broker
// in one stream (the in-process broker's events share the sink) count once
// each in their own view: "takeovers" and the series from the fleet's
// events, "broker_takeovers" from the broker's. The rendered reports show
// the fleet's figure.
func TestTakeoversFleetView(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name          string
		fleet, broker int
	}{
		{"both views", 78, 78},
		{"fleet only", 5, 0},
		{"broker only", 0, 7},
		{"views differ", 3, 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var evs []events.Event
			for i := range max(tc.fleet, tc.broker) {
				at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
				id := fmt.Sprintf("twin-%d", i%2)
				if i < tc.broker {
					evs = append(evs, events.Event{Time: at, Kind: events.Takeover, Source: events.SourceBroker, ClientID: id, Remote: "127.0.0.1:40000"})
				}
				if i < tc.fleet {
					evs = append(evs, events.Event{Time: at, Kind: events.Takeover, Source: events.SourceSimulator, ClientID: id, Device: i%2 + 1})
				}
			}
			res := collect(evs, Run{Name: "takeovers"})
			if got := res.Counters["takeovers"]; got != int64(tc.fleet) {
				t.Errorf("takeovers %d, want %d", got, tc.fleet)
			}
			if got := res.Counters["broker_takeovers"]; got != int64(tc.broker) {
				t.Errorf("broker_takeovers %d, want %d", got, tc.broker)
			}
			var series int64
			if res.Series != nil {
				for _, v := range res.Series.Columns[ColTakeovers] {
					series += v
				}
			}
			if series != int64(tc.fleet) {
				t.Errorf("takeovers series sums to %d, want %d", series, tc.fleet)
			}

			var md bytes.Buffer
			if err := Markdown(&md, res); err != nil {
				t.Fatal(err)
			}
			if row := fmt.Sprintf("| takeovers | %d |", tc.fleet); tc.fleet > 0 && !strings.Contains(md.String(), row) {
				t.Errorf("markdown lacks %q:\n%s", row, md.String())
			}
			if row := fmt.Sprintf("| takeovers (broker) | %d |", tc.broker); tc.broker > 0 && !strings.Contains(md.String(), row) {
				t.Errorf("markdown lacks %q:\n%s", row, md.String())
			}
			page := renderHTML(t, res)
			tile := fmt.Sprintf(`<div class="l">takeovers</div><div class="v">%d</div>`, tc.fleet)
			if !bytes.Contains(page, []byte(tile)) {
				t.Errorf("HTML lacks the tile %q", tile)
			}
			// The broker's figure is named only when it was in the stream
			// and differs from the fleet's.
			want := tc.broker > 0 && tc.broker != tc.fleet
			if got := bytes.Contains(page, []byte(fmt.Sprintf("broker saw %d", tc.broker))); got != want {
				t.Errorf("HTML names the broker's %d takeovers: %v, want %v", tc.broker, got, want)
			}
		})
	}
}
