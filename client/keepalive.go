package client

import (
	"context"
	"fmt"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// onTimer is the keepalive timer's callback. It looks at three stamps — last
// write, last read and the outstanding PINGREQ — and either sends a PINGREQ
// (nothing written for a keepalive period [MQTT-3.1.2-23]), declares the link
// dead (no PINGRESP within PingTimeout), or re-arms itself for the next
// moment one of those can happen. One timer per client, no polling.
func (c *Client) onTimer() {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.bg.Add(1) // finish waits for this callback before stopping the timer for good
	t := c.timer
	c.mu.Unlock()
	defer c.bg.Done()

	now := c.now()
	if sent := c.pingSent.Load(); sent != 0 {
		waited := time.Duration(now - sent)
		if waited < c.pingTimeout {
			t.Reset(c.pingTimeout - waited)
			return
		}
		if c.sink != nil {
			c.emit(events.Event{Kind: events.KeepaliveExpired, KeepAlive: int(c.keepAlive / time.Second), Latency: waited,
				Detail: fmt.Sprintf("no PINGRESP after %v; last packet received %v ago", waited.Round(time.Millisecond),
					time.Duration(now-c.lastRecv.Load()).Round(time.Millisecond))})
		}
		c.fail(fmt.Errorf("keepalive %v: waited %v: %w", c.keepAlive, waited.Round(time.Millisecond), ErrPingTimeout), events.CauseKeepalive)
		return
	}
	idle := time.Duration(now - c.lastSent.Load())
	if idle < c.keepAlive {
		t.Reset(c.keepAlive - idle)
		return
	}
	// Arm the ping timeout before writing: if the write blocks on a dead
	// link, the next callback still fires, ends the link and so the write.
	c.pingSent.Store(now)
	t.Reset(c.pingTimeout)
	_, _ = c.send(context.Background(), &packet.Pingreq{})
}
