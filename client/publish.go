package client

import (
	"context"
	"fmt"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Publish sends a message and waits for its flow to finish: QoS 0 returns
// once written, QoS 1 once PUBACK arrives, QoS 2 once PUBREC -> PUBREL ->
// PUBCOMP is done. When ctx ends while waiting for the ack, the message
// stays in flight and ctx's error is returned.
func (c *Client) Publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error {
	return c.PublishAsync(ctx, topic, qos, retain, payload).Wait(ctx)
}

// PublishAsync writes a message and returns without waiting for its ack, so
// many can be in flight. It blocks only for a free slot in the MaxInflight
// window (QoS 1/2) and for the write itself, both bounded by ctx. Errors
// before or during the write come back as an already completed Token.
// payload is not retained after PublishAsync returns. The topic is checked
// first, so a malformed one is an error here rather than a dropped link.
func (c *Client) PublishAsync(ctx context.Context, topic string, qos byte, retain bool, payload []byte) *Token {
	return c.PublishAsyncProps(ctx, topic, qos, retain, payload, nil)
}

// PublishAsyncProps is PublishAsync with MQTT 5 PUBLISH properties (message
// expiry, content type, response topic, user properties, ...). props is
// sent as is and may be shared by many publishes: it is only read. It is
// ignored on a connection that is not MQTT 5.
func (c *Client) PublishAsyncProps(ctx context.Context, topic string, qos byte, retain bool, payload []byte, props *packet.Properties) *Token {
	if c.version != packet.V5 {
		props = nil
	}
	if qos > 2 {
		return doneToken(fmt.Errorf("publish %q: QoS %d: %w", topic, qos, ErrProtocol))
	}
	if err := packet.CheckTopicName(topic, c.version); err != nil {
		return doneToken(fmt.Errorf("publish: %w", err))
	}
	if c.opts.TopicAliases && props != nil && props.TopicAlias != nil {
		return doneToken(fmt.Errorf("publish %q: a Topic Alias in the properties while Options.TopicAliases assigns them: %w", topic, ErrProtocol))
	}
	pub := &packet.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: payload, Props: props}
	if qos == 0 {
		_, alias, fresh, err := c.sendPublish(ctx, pub)
		if err != nil {
			return doneToken(fmt.Errorf("publish %q: %w", topic, err))
		}
		c.emitSentAlias(pub, alias, fresh)
		return okToken
	}
	select {
	case c.window <- struct{}{}:
	default:
		select {
		case c.window <- struct{}{}:
		case <-ctx.Done():
			return doneToken(fmt.Errorf("publish %q: wait for inflight window: %w", topic, ctx.Err()))
		case <-c.quit:
			return doneToken(fmt.Errorf("publish %q: %w", topic, c.linkErr()))
		}
	}
	kind := opPublish1
	if qos == 2 {
		kind = opPublish2
	}
	t := newToken(kind)
	t.qos = qos
	sess := c.opts.Session
	if sess != nil {
		sess.keepForResend(t, pub) // before register: from then on the session may hold t
	}
	id, err := c.register(t)
	if err != nil {
		<-c.window
		return doneToken(fmt.Errorf("publish %q: %w", topic, err))
	}
	pub.PacketID = id // [MQTT-4.3.2-1] [MQTT-4.3.3-1] fresh id, DUP 0
	t.sent.Store(c.now())
	wrote, alias, fresh, err := c.sendPublish(ctx, pub)
	if err != nil {
		if !wrote && c.unregister(t) {
			<-c.window
		} else if sess != nil {
			// The link is ending and finish hands t to the Session: its
			// Token completes with the resend on a later connection.
			return t
		}
		// Otherwise the link is ending and finish completes the token.
		t.complete(fmt.Errorf("publish %q: %w", topic, err))
		return t
	}
	c.emitSentAlias(pub, alias, fresh)
	return t
}

func (c *Client) emitSent(p *packet.Publish) { c.emitSentAlias(p, 0, false) }

// Details of a publish_sent event whose PUBLISH carried one of our Topic
// Aliases (Options.TopicAliases).
const (
	DetailAliasSet  = "topic alias set"  // the PUBLISH carried the topic and the alias
	DetailAliasOnly = "topic alias only" // the PUBLISH carried the alias and an empty topic
)

// emitSentAlias emits publish_sent for p, which went out with alias (0:
// none; fresh: the PUBLISH set it). Topic is always the full topic.
func (c *Client) emitSentAlias(p *packet.Publish, alias uint16, fresh bool) {
	if c.sink == nil {
		return
	}
	e := events.Event{Kind: events.PublishSent, Topic: p.Topic, QoS: p.QoS, Retain: p.Retain,
		PacketID: p.PacketID, Dup: p.Dup, Size: len(p.Payload), Alias: alias}
	if alias != 0 {
		e.Detail = DetailAliasOnly
		if fresh {
			e.Detail = DetailAliasSet
		}
	}
	c.emit(e)
}

// register reserves a packet identifier for t, unless the link has ended.
func (c *Client) register(t *Token) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.err != nil {
		return 0, fmt.Errorf("connection ended: %w", c.err)
	}
	id, err := c.ids.alloc(t)
	if err != nil {
		return 0, err
	}
	t.id = id
	return id, nil
}

// unregister frees t's identifier if t still holds it, and says whether it did.
func (c *Client) unregister(t *Token) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids.inflight[t.id] != t {
		return false
	}
	c.ids.free(t.id)
	return true
}

// Subscribe sends one SUBSCRIBE with all subs and waits for the SUBACK.
// Filters are checked first, so a malformed one is an error here rather
// than a dropped link. It
// returns the granted QoS (or 0x80 for a refused filter) per subscription;
// a refusal is not an error.
func (c *Client) Subscribe(ctx context.Context, subs ...packet.Subscription) ([]byte, error) {
	if len(subs) == 0 {
		return nil, fmt.Errorf("subscribe: no subscriptions: %w", ErrProtocol) // [MQTT-3.8.3-3]
	}
	t := newToken(opSubscribe)
	t.filters = make([]string, len(subs))
	for i, s := range subs {
		if err := packet.CheckTopicFilter(s.Filter, c.version); err != nil {
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		t.filters[i] = s.Filter
	}
	id, err := c.register(t)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	t.sent.Store(c.now())
	if err := c.sendTracked(ctx, t, &packet.Subscribe{PacketID: id, Subscriptions: subs}); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if err := t.Wait(ctx); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return t.codes, nil
}

// Unsubscribe sends one UNSUBSCRIBE for filters and waits for the UNSUBACK.
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) error {
	if len(filters) == 0 {
		return fmt.Errorf("unsubscribe: no filters: %w", ErrProtocol) // [MQTT-3.10.3-2]
	}
	for _, f := range filters {
		if err := packet.CheckTopicFilter(f, c.version); err != nil {
			return fmt.Errorf("unsubscribe: %w", err)
		}
	}
	t := newToken(opUnsubscribe)
	t.filters = filters
	id, err := c.register(t)
	if err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	t.sent.Store(c.now())
	if err := c.sendTracked(ctx, t, &packet.Unsubscribe{PacketID: id, Filters: filters}); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	if err := t.Wait(ctx); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	return nil
}

// sendTracked writes a packet whose id t holds, releasing the id when
// nothing was written.
func (c *Client) sendTracked(ctx context.Context, t *Token, p packet.Packet) error {
	wrote, err := c.send(ctx, p)
	if err != nil && !wrote {
		c.unregister(t)
	}
	return err
}
