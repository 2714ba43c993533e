package broker

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// limitDrop matches the drop event of a message refused by limit l.
func limitDrop(l limit) events.Match {
	return events.And(events.Is(events.Drop), func(e events.Event) bool {
		return e.Cause == CauseLimit && strings.HasPrefix(e.Detail, l.String()+" (")
	})
}

// TestLimits: each configured limit refuses what would exceed it, with an
// event naming the limit, a count in LimitRefusals and in /metrics, and
// nothing else refused.
func TestLimits(t *testing.T) {
	tb := startBroker(t, func(c *Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.MaxSubscriptions = 2
		c.MaxTopicLength = 20
		c.MaxTopicLevels = 3
		c.MaxRetainedMessages = 2
		c.MaxRetainedBytes = 100
		c.MaxQueuedBytes = 50
	})
	pub := tb.connect(t, "lim-pub")

	t.Run("subscriptions, topic length and levels on SUBSCRIBE", func(t *testing.T) {
		r := tb.connect(t, "lim-sub")
		codes := subscribe(t, r, sub("a/b", 0), sub("a/b/c/d", 0), sub(strings.Repeat("x", 21), 0), sub("c", 0), sub("a/b", 1), sub("d", 0))
		want := []byte{0, packet.SubackFailure, packet.SubackFailure, 0, 1, packet.SubackFailure}
		if string(codes) != string(want) {
			t.Fatalf("SUBACK %v, want %v (levels, length, then the third subscription refused; a/b replaced)", codes, want)
		}
		e := tb.wait(t, events.And(events.Is(events.Subscribed), events.ForClient("lim-sub"), func(e events.Event) bool { return e.Topic == "d" }))
		if e.QoS != packet.SubackFailure || !strings.HasPrefix(e.Detail, "max_subscriptions (2): session holds 2") {
			t.Fatalf("subscribed event %+v", e)
		}
	})

	t.Run("topic length and levels on PUBLISH", func(t *testing.T) {
		publish(t, pub, &packet.Publish{Topic: "a/b/c/d", QoS: 1, PacketID: 1, Payload: []byte("x")})
		tb.wait(t, events.And(limitDrop(limitTopicLevels), events.ForClient("lim-pub")))
		publish(t, pub, &packet.Publish{Topic: strings.Repeat("y", 21), QoS: 1, PacketID: 2, Payload: []byte("x")})
		tb.wait(t, events.And(limitDrop(limitTopicLength), events.ForClient("lim-pub")))
	})

	t.Run("retained messages and bytes", func(t *testing.T) {
		retain := func(topic string, n int) {
			publish(t, pub, &packet.Publish{Topic: topic, QoS: 1, PacketID: 3, Retain: true, Payload: []byte(strings.Repeat("p", n))})
		}
		retain("r/1", 10)
		retain("r/2", 10)
		retain("r/3", 10) // a third message
		tb.wait(t, limitDrop(limitRetainedMessages))
		retain("r/2", 90) // 3+10 + 3+90 > 100 bytes
		tb.wait(t, limitDrop(limitRetainedBytes))
		retain("r/2", 80) // 3+10 + 3+80 = 96: a replacement within the bound
		if st := tb.Stats(); st.Retained != 2 {
			t.Fatalf("retained %d, want 2", st.Retained)
		}
		r := tb.connect(t, "lim-ret")
		subscribe(t, r, sub("r/+", 0))
		got := map[string]int{}
		for range 2 {
			p := expect[*packet.Publish](t, r)
			got[p.Topic] = len(p.Payload)
		}
		if got["r/1"] != 10 || got["r/2"] != 80 {
			t.Fatalf("retained after the refusals: %v", got)
		}
	})

	t.Run("queued bytes per session", func(t *testing.T) {
		r, _ := tb.raw(t, &packet.Connect{ClientID: "lim-q", CleanSession: false}, 0)
		subscribe(t, r, sub("q", 1))
		_ = r.Close()
		tb.wait(t, disconnectOf("lim-q"))
		for i := range 3 { // 1+20 bytes each: the third takes the queue past 50
			publish(t, pub, &packet.Publish{Topic: "q", QoS: 1, PacketID: uint16(10 + i), Payload: []byte(strings.Repeat("q", 20))})
		}
		e := tb.wait(t, limitDrop(limitQueuedBytes))
		if e.ClientID != "lim-q" || !strings.Contains(e.Detail, "holds 42 bytes") {
			t.Fatalf("drop event %+v", e)
		}
	})

	refused := tb.LimitRefusals()
	for l, want := range map[string]uint64{
		"max_subscriptions": 1, "max_topic_length": 2, "max_topic_levels": 2,
		"max_retained_messages": 1, "max_retained_bytes": 1, "max_queued_bytes": 1,
	} {
		if refused[l] != want {
			t.Errorf("LimitRefusals()[%q] = %d, want %d (all: %v)", l, refused[l], want, refused)
		}
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + tb.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if m := `mqttfleet_broker_limit_refusals_total{limit="max_topic_levels"} 2`; !strings.Contains(string(body), m) {
		t.Errorf("/metrics lacks %q", m)
	}
}
