package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// mqttOptions are the bridge's MQTT client options: a clean session unless
// Persistent, whose Session then carries in-flight QoS 1/2 state from one
// connection to the next [MQTT-4.4.0-1].
func (b *Bridge) mqttOptions() client.Options {
	o := client.Options{ClientID: b.cfg.Name, CleanSession: !b.cfg.Persistent,
		KeepAlive: 30 * time.Second, Events: b.cfg.Events, MessageBuffer: 1024}
	if b.cfg.Persistent {
		b.mu.Lock()
		if b.sess == nil {
			b.sess = client.NewSession()
		}
		o.Session = b.sess
		b.mu.Unlock()
	}
	return o
}

// subscribe subscribes to the bridge's filters and checks every grant.
func (b *Bridge) subscribe(ctx context.Context, conn *client.Client) error {
	subs := make([]packet.Subscription, len(b.cfg.Filters))
	for i, f := range b.cfg.Filters {
		subs[i] = packet.Subscription{Filter: f, QoS: b.cfg.QoS}
	}
	granted, err := conn.Subscribe(ctx, subs...)
	if err != nil {
		return err
	}
	for i, g := range granted {
		if g >= 0x80 {
			return fmt.Errorf("filter %s refused (0x%02x)", b.cfg.Filters[i], g)
		}
	}
	return nil
}

// reconnect dials the broker again after the MQTT link ended, every
// Reconnect, until it is back or the bridge closes (nil). A persistent
// session the broker kept (session present) keeps its subscriptions and
// the messages queued meanwhile; otherwise the bridge subscribes again, and
// what was published in between is lost to it.
func (b *Bridge) reconnect() *client.Client {
	if b.cfg.Reconnect <= 0 {
		return nil
	}
	t := time.NewTimer(b.cfg.Reconnect)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return nil
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		conn, ack, err := client.Dial(ctx, b.cfg.MQTT, b.mqttOptions())
		if err == nil && !ack.SessionPresent {
			if err = b.subscribe(ctx, conn); err != nil {
				conn.Close()
			}
		}
		cancel()
		if err == nil {
			b.mu.Lock()
			closed := b.closed
			if !closed {
				b.conn = conn
			}
			b.mu.Unlock()
			if closed {
				conn.Close()
				return nil
			}
			b.emit(events.Event{Kind: events.Log, Detail: fmt.Sprintf("bridge MQTT link back (session present %v)", ack.SessionPresent)})
			return conn
		}
		b.emit(events.Event{Kind: events.Log, Detail: fmt.Sprintf("bridge MQTT reconnect: %v", err)})
		t.Reset(b.cfg.Reconnect)
	}
}
