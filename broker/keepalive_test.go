package broker

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestKeepaliveExpiry checks [MQTT-3.1.2-24] with the acceptance figures: a
// client with keepalive 2 s that goes silent while its socket stays open is
// closed between 3.0 and 3.5 s after its last packet, and a subscriber gets
// its will once [MQTT-3.1.2-8].
func TestKeepaliveExpiry(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	watcher := tb.connect(t, "ka-watcher")
	subscribe(t, watcher, sub("will/ka", 0))

	r, _ := tb.raw(t, &packet.Connect{ClientID: "silent", CleanSession: true, KeepAlive: 2,
		Will: &packet.Will{Topic: "will/ka", Payload: []byte("expired")}}, 0)
	last := time.Now() // CONNECT was the last packet it sent
	if err := r.ExpectClosed(6 * time.Second); err != nil {
		t.Fatalf("silent client not closed: %v", err)
	}
	silence := time.Since(last)
	t.Logf("closed after %v of silence", silence)
	if silence < 3*time.Second || silence > 3500*time.Millisecond {
		t.Errorf("closed after %v of silence, want 3.0 s..3.5 s", silence)
	}
	e := tb.wait(t, events.And(events.Is(events.KeepaliveExpired), events.ForClient("silent")))
	if e.Latency < 3*time.Second {
		t.Errorf("broker measured %v of silence, want at least 3 s", e.Latency)
	}
	if d := tb.wait(t, disconnectOf("silent")); d.Cause != events.CauseKeepalive || d.Statement != "MQTT-3.1.2-24" {
		t.Errorf("disconnect %+v", d)
	}
	w := expect[*packet.Publish](t, watcher)
	if w.Topic != "will/ka" || string(w.Payload) != "expired" {
		t.Errorf("will %+v", w)
	}
	expectNothing(t, watcher, 300*time.Millisecond) // once
}

// TestKeepalivePinging checks that a client pinging every 2 s with keepalive
// 2 s stays connected for 20 s, each PINGREQ answered at once.
func TestKeepalivePinging(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s test")
	}
	t.Parallel()
	tb := startBroker(t, nil)
	r, _ := tb.raw(t, &packet.Connect{ClientID: "pinger", CleanSession: true, KeepAlive: 2}, 0)
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		time.Sleep(2 * time.Second) // the client's own ping period, not a wait for a condition
		sent := time.Now()
		if err := r.WritePacket(&packet.Pingreq{}); err != nil {
			t.Fatalf("ping after %v: %v", time.Since(start), err)
		}
		expect[*packet.Pingresp](t, r)
		if d := time.Since(sent); d > 500*time.Millisecond {
			t.Errorf("PINGRESP took %v", d)
		}
	}
	if n := tb.rec.Count(disconnectOf("pinger")); n != 0 {
		t.Fatalf("pinging client disconnected")
	}
}

// TestKeepaliveZero checks that keepalive 0 disables expiry.
func TestKeepaliveZero(t *testing.T) {
	t.Parallel()
	tb := startBroker(t, nil)
	r, _ := tb.raw(t, &packet.Connect{ClientID: "nokeepalive", CleanSession: true}, 0)
	expectNothing(t, r, 2*time.Second)
	if err := r.WritePacket(&packet.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Pingresp](t, r)
}
