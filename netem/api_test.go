package netem

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

func TestHTTPAPI(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	srv := httptest.NewServer(px.Handler())
	defer srv.Close()

	do := func(method, path, body string, want int) []byte {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d (%s), want %d", method, path, resp.StatusCode, b, want)
		}
		return b
	}

	var links []LinkInfo
	json.Unmarshal(do("GET", "/links", "", 200), &links)
	if len(links) != 1 || links[0].ID != l.id {
		t.Fatalf("links %+v", links)
	}
	var created map[string]string
	json.Unmarshal(do("POST", "/faults", `{"selector":{"link":"`+l.id+`"},"fault":{"kind":"latency","direction":"upstream","latency":"20ms","jitter":"5ms"}}`, 201), &created)
	var faults []FaultInfo
	json.Unmarshal(do("GET", "/faults", "", 200), &faults)
	if len(faults) != 1 || faults[0].ID != created["id"] || faults[0].Fault.Latency != 20*time.Millisecond ||
		faults[0].Links != 1 || !faults[0].Active {
		t.Fatalf("faults %+v", faults)
	}
	for _, tc := range []struct{ name, body string }{
		{"typo in field", `{"selector":{"all":true},"fault":{"kind":"latency","latncy":"20ms"}}`},
		{"bad duration", `{"selector":{"all":true},"fault":{"kind":"latency","latency":"soon"}}`},
		{"no selector", `{"fault":{"kind":"stall"}}`},
		{"not json", `{`},
	} {
		t.Run(tc.name, func(t *testing.T) { do("POST", "/faults", tc.body, 400) })
	}
	do("POST", "/faults", `{"selector":{"link":"l999"},"fault":{"kind":"stall"}}`, 404)
	do("DELETE", "/faults/"+created["id"], "", 204)
	do("DELETE", "/faults/"+created["id"], "", 404)
	if n := rec.Count(events.Is(events.FaultRemoved)); n != 1 {
		t.Fatalf("%d FaultRemoved events", n)
	}
	var g GroupInfo
	json.Unmarshal(do("POST", "/groups", `{"name":"dev-1"}`, 201), &g)
	if g.Name != "dev-1" || !strings.HasPrefix(g.Addr, "127.0.0.1:") {
		t.Fatalf("group %+v", g)
	}
	var gs []GroupInfo
	json.Unmarshal(do("GET", "/groups", "", 200), &gs)
	if len(gs) != 1 || gs[0] != g {
		t.Fatalf("groups %+v", gs)
	}
	do("POST", "/faults", `{"selector":{"group":"dev-1"},"fault":{"kind":"stall"}}`, 201)
	do("POST", "/faults", `{"selector":{"all":true},"fault":{"kind":"blackhole","start":"1h"}}`, 201)
	do("DELETE", "/faults", "", 204)
	json.Unmarshal(do("GET", "/faults", "", 200), &faults)
	if len(faults) != 0 {
		t.Fatalf("faults after DELETE /faults: %+v", faults)
	}
}
