package broker

import (
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// delayedWill is a 5.0 CONNECT for id with a will on topic "wd/<id>" with a
// Will Delay Interval of delay seconds and a Session Expiry Interval of
// expiry seconds.
func delayedWill(id string, clean bool, delay, expiry uint32) *packet.Connect {
	return &packet.Connect{ClientID: id, CleanSession: clean, Props: &packet.Properties{SessionExpiry: u32(expiry)},
		Will: &packet.Will{Topic: "wd/" + id, Payload: []byte("gone"), QoS: 1, Props: &packet.Properties{WillDelay: u32(delay)}}}
}

func willOf(id string) events.Match {
	return events.And(events.Is(events.WillPublished), events.ForClient(id))
}

func willCancelledOf(id string) events.Match {
	return events.And(events.Is(events.WillCancelled), events.ForClient(id))
}

// TestV5WillDelay checks the Will Delay Interval: the will is published
// once the delay passed or the session ended, whichever is sooner
// [MQTT-3.1.2-8], and not at all when a new connection for the client ID
// (a reconnect or a takeover) comes before the delay passed [MQTT-3.1.3-9].
func TestV5WillDelay(t *testing.T) {
	tb := startBroker(t, nil)
	w := tb.connect5(t, "wd-watch")
	subscribe(t, w, sub("wd/#", 1))

	// elapsed is the broker's time from the disconnect of id to its will.
	elapsed := func(t *testing.T, id string) time.Duration {
		t.Helper()
		d := tb.wait(t, disconnectOf(id))
		e := tb.wait(t, willOf(id))
		if m := expect[*packet.Publish](t, w); m.Topic != "wd/"+id {
			t.Errorf("will on %q", m.Topic)
		} else {
			if m.Props != nil && m.Props.WillDelay != nil {
				t.Error("will published with its Will Delay Interval")
			}
			ackDelivery(t, w, m)
		}
		return e.Time.Sub(d.Time)
	}

	t.Run("delay passes", func(t *testing.T) {
		r, _ := tb.raw5(t, delayedWill("wd-delay", true, 1, 60), 0)
		_ = r.Close()
		if el := elapsed(t, "wd-delay"); el < 900*time.Millisecond {
			t.Errorf("will published %v after the close, before its 1 s delay", el)
		}
	})
	t.Run("session ends first", func(t *testing.T) {
		r, _ := tb.raw5(t, delayedWill("wd-expiry", true, 3600, 1), 0)
		_ = r.Close()
		if el := elapsed(t, "wd-expiry"); el < 900*time.Millisecond || el > 30*time.Second {
			t.Errorf("will published %v after the close, want at the session's end 1 s after", el)
		}
		tb.wait(t, events.And(events.Is(events.SessionExpired), events.ForClient("wd-expiry")))
	})
	t.Run("session expiry 0", func(t *testing.T) {
		// The session ends with the connection: the will goes at once.
		r, _ := tb.raw5(t, delayedWill("wd-zero", true, 3600, 0), 0)
		_ = r.Close()
		elapsed(t, "wd-zero")
	})
	t.Run("DISCONNECT with will", func(t *testing.T) {
		r, _ := tb.raw5(t, delayedWill("wd-04", true, 1, 60), 0)
		_ = r.WritePacket(&packet.Disconnect{ReasonCode: 0x04})
		if el := elapsed(t, "wd-04"); el < 900*time.Millisecond {
			t.Errorf("will published %v after DISCONNECT 0x04, before its 1 s delay", el)
		}
	})
	t.Run("reconnect cancels", func(t *testing.T) {
		r, _ := tb.raw5(t, delayedWill("wd-back", true, 3600, 60), 0)
		_ = r.Close()
		tb.wait(t, disconnectOf("wd-back"))
		r, ack := tb.raw5(t, &packet.Connect{ClientID: "wd-back", Props: &packet.Properties{SessionExpiry: u32(60)}}, 0)
		if !ack.SessionPresent {
			t.Error("session not present")
		}
		e := tb.wait(t, willCancelledOf("wd-back"))
		if e.Topic != "wd/wd-back" || e.Statement != "MQTT-3.1.3-9" {
			t.Errorf("will_cancelled event %+v", e)
		}
		// The cancelled will stays cancelled: the session now ends at once.
		_ = r.WritePacket(&packet.Disconnect{Props: &packet.Properties{SessionExpiry: u32(0)}})
		tb.wait(t, disconnectOf("wd-back"))
		expectNothing(t, w, 300*time.Millisecond)
		if n := tb.rec.Count(willOf("wd-back")); n != 0 {
			t.Errorf("%d wills published", n)
		}
	})
	t.Run("takeover cancels", func(t *testing.T) {
		old, _ := tb.raw5(t, delayedWill("wd-take", true, 3600, 60), 0)
		// Clean Start 1 too: the new connection comes before the delay passed.
		tb.raw5(t, &packet.Connect{ClientID: "wd-take", CleanSession: true}, 0)
		expectServerDisconnect(t, old, 0x8E)
		tb.wait(t, willCancelledOf("wd-take"))
		expectNothing(t, w, 300*time.Millisecond)
		if n := tb.rec.Count(willOf("wd-take")); n != 0 {
			t.Errorf("will published on takeover despite its delay")
		}
	})
}

// TestV5WillDelayOnClose checks that a will waiting out its delay is
// published when the broker closes (its session ends), with cause
// shutdown, and that the timer goroutine is gone (goleak in TestMain).
func TestV5WillDelayOnClose(t *testing.T) {
	tb := startBroker(t, nil)
	r, _ := tb.raw5(t, delayedWill("wd-close", true, 3600, 3600), 0)
	_ = r.Close()
	tb.wait(t, disconnectOf("wd-close"))
	if n := tb.rec.Count(willOf("wd-close")); n != 0 {
		t.Fatal("will published before its delay")
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if e := tb.wait(t, willOf("wd-close")); e.Cause != events.CauseShutdown {
		t.Errorf("will cause %q, want shutdown", e.Cause)
	}
}
