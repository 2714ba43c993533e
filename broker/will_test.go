package broker

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestWill checks when a will is published [MQTT-3.1.2-8] and when it is
// discarded [MQTT-3.1.2-10], with its QoS and retain flag.
func TestWill(t *testing.T) {
	tb := startBroker(t, nil)
	for _, tc := range []struct {
		name    string
		end     func(t *testing.T, r *client.Raw)
		cause   events.Cause
		publish bool
	}{
		{"DISCONNECT", func(t *testing.T, r *client.Raw) {
			_ = r.WriteBytes([]byte{0xE0, 0})
		}, events.CauseClientDisconnect, false},
		{"socket closed", func(t *testing.T, r *client.Raw) {
			_ = r.Close()
		}, events.CauseIOError, true},
		{"protocol violation", func(t *testing.T, r *client.Raw) {
			_ = r.WriteBytes([]byte{0x00, 0x00}) // reserved packet type 0
		}, events.CauseViolation, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "will-" + tc.name
			topic := "will/" + tc.name
			watcher := tb.connect(t, "watch-"+tc.name)
			subscribe(t, watcher, sub(topic, 2))
			r, _ := tb.raw(t, &packet.Connect{ClientID: id, CleanSession: true,
				Will: &packet.Will{Topic: topic, Payload: []byte("bye"), QoS: 1, Retain: true}}, 0)
			tc.end(t, r)
			d := tb.wait(t, disconnectOf(id))
			if d.Cause != tc.cause {
				t.Errorf("cause %q, want %q", d.Cause, tc.cause)
			}
			if !tc.publish {
				expectNothing(t, watcher, 300*time.Millisecond)
				if n := tb.rec.Count(events.And(events.Is(events.WillPublished), events.ForClient(id))); n != 0 {
					t.Errorf("will published after DISCONNECT")
				}
				return
			}
			w := expect[*packet.Publish](t, watcher)
			// Forwarded to an existing subscription: RETAIN 0 [MQTT-3.3.1-9], QoS 1 kept.
			if w.Topic != topic || w.QoS != 1 || w.Retain {
				t.Errorf("will %+v", w)
			}
			// Stored as retained: a new subscriber gets it with RETAIN 1 [MQTT-3.3.1-8].
			late := tb.connect(t, "late-"+tc.name)
			subscribe(t, late, sub(topic, 1))
			if p := expect[*packet.Publish](t, late); !p.Retain || string(p.Payload) != "bye" {
				t.Errorf("retained will %+v", p)
			}
		})
	}
}

// TestWillOnShutdown checks that Close publishes wills with cause shutdown.
func TestWillOnShutdown(t *testing.T) {
	rec := events.NewRecorder()
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Events = rec
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	// If a step fails before the Close under test, close anyway, so goleak
	// reports the real failure rather than the broker's goroutines.
	t.Cleanup(func() { b.Close() })
	tb := &testBroker{Broker: b, rec: rec, tcp: b.Addr("tcp")[len("tcp://"):]}
	tb.raw(t, &packet.Connect{ClientID: "dying", CleanSession: true, Will: &packet.Will{Topic: "will/shutdown", Payload: []byte("x")}}, 0)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	e := tb.wait(t, events.And(events.Is(events.WillPublished), events.ForClient("dying")))
	if e.Cause != events.CauseShutdown {
		t.Errorf("will cause %q, want shutdown", e.Cause)
	}
}
