package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/events"
)

// reasonResults collects a fleet's view with codes of every kind, and the
// broker's own CONNACKs, which must not count.
func reasonResults() *Results {
	c := NewCollector(KindSimulate, Run{Name: "rc"})
	for i := 0; i < 3; i++ {
		c.Emit(events.Event{Kind: events.ConnAck, Source: events.SourceSimulator, ClientID: "d" + itoa(i)})
	}
	c.Emit(events.Event{Kind: events.ConnAck, Source: events.SourceSimulator, ClientID: "x", Code: 0x86})
	c.Emit(events.Event{Kind: events.ConnAck, Source: events.SourceSimulator, ClientID: "y", Code: -1}) // no CONNACK
	c.Emit(events.Event{Kind: events.ConnAck, Source: events.SourceBroker, ClientID: "d0"})
	c.Emit(events.Event{Kind: events.PublishAcked, Source: events.SourceClient, QoS: 1, Code: 0x10})
	c.Emit(events.Event{Kind: events.PublishAcked, Source: events.SourceClient, QoS: 1})
	c.Emit(events.Event{Kind: events.PublishAcked, Source: events.SourceClient, QoS: 2})
	c.Emit(events.Event{Kind: events.PublishFailed, Source: events.SourceClient, QoS: 1, Code: 0x97, Detail: "PUBACK"})
	c.Emit(events.Event{Kind: events.Subscribed, Source: events.SourceClient, QoS: 0x87})
	c.Emit(events.Event{Kind: events.Disconnect, Source: events.SourceClient, ClientID: "d1", Cause: events.CauseServerDisconnect, Code: 0x8e})
	c.Emit(events.Event{Kind: events.Disconnect, Source: events.SourceClient, ClientID: "d2", Cause: events.CauseServerDisconnect})
	c.Emit(events.Event{Kind: events.Disconnect, Source: events.SourceSimulator, ClientID: "d0", Cause: events.CauseTakeover, Code: 0x8e})
	c.Emit(events.Event{Kind: events.Disconnect, Source: events.SourceSimulator, ClientID: "d0", Cause: events.CauseIOError})
	c.Emit(events.Event{Kind: events.Disconnect, Source: events.SourceClient, ClientID: "x", Cause: events.CauseRefused, Code: 0x86})
	return c.Results()
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestReasonCodeCounters(t *testing.T) {
	r := reasonResults()
	want := map[string]int64{
		"connack_rc_0x00": 3, "connack_rc_0x86": 1, "puback_rc_0x10": 1, "puback_rc_0x00": 1, "pubrec_rc_0x00": 1,
		"puback_rc_0x97": 1, "suback_rc_0x87": 1, "disconnect_rc_0x8e": 2, "disconnect_rc_0x00": 1,
	}
	for k, n := range want {
		if r.Counters[k] != n {
			t.Errorf("%s = %d, want %d", k, r.Counters[k], n)
		}
		if !IsCollectorCounter(k) {
			t.Errorf("IsCollectorCounter(%q) = false", k)
		}
	}
	for k := range r.Counters {
		if IsRCCounter(k) && want[k] == 0 {
			t.Errorf("unexpected reason-code counter %s = %d", k, r.Counters[k])
		}
	}
	for _, bad := range []string{"connack_rc_0x8E", "connack_rc_0x8", "connack_rc_0x100", "ping_rc_0x00", "broker_connack_rc_0x00"} {
		if IsRCCounter(bad) {
			t.Errorf("IsRCCounter(%q) = true", bad)
		}
	}
	merged, err := Merge(r, reasonResults())
	if err != nil {
		t.Fatal(err)
	}
	if merged.Counters["connack_rc_0x00"] != 6 {
		t.Errorf("merged connack_rc_0x00 = %d, want 6", merged.Counters["connack_rc_0x00"])
	}
}

// TestReasonCodeTables: the HTML report and the Markdown summary show a
// "Reason codes" table when a reason-code counter is present, and none
// otherwise.
func TestReasonCodeTables(t *testing.T) {
	r := reasonResults()
	var md bytes.Buffer
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| reason codes | code | meaning | count |", "| CONNACK | `0x00` | success | 3 |",
		"| CONNACK | `0x86` | bad user name or password | 1 |", "| DISCONNECT | `0x8e` | session taken over | 2 |",
		"| SUBACK | `0x87` | not authorized | 1 |", "| PUBACK | `0x10` | no matching subscribers | 1 |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	page := renderHTML(t, r)
	els, style := parseXHTML(t, page)
	checkSelfContained(t, els, style)
	for _, want := range []string{"<h2>Reason codes</h2>", "<td>CONNACK</td><td><code>0x86</code></td><td>bad user name or password</td><td class=\"num\">1</td>"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	plain := &Results{SchemaVersion: 1, Kind: KindSimulate, Counters: map[string]int64{"connects": 3}}
	md.Reset()
	if err := Markdown(&md, plain); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "reason codes") || bytes.Contains(renderHTML(t, plain), []byte("Reason codes")) {
		t.Error("a reason-code table without reason-code counters")
	}
}
