package client

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// readLoop is the client's one goroutine: it reads packets until the link
// fails, dispatches them, then winds the client down. A silent plain TCP
// link is parked instead and the goroutine exits; the poller starts a new
// readLoop when it is readable again (see park.go).
func (c *Client) readLoop() {
	c.startedAt = c.now()
	for {
		if c.canPark && c.in.empty() {
			parked, err := c.waitIdle()
			if parked {
				return
			}
			if err != nil {
				c.fail(fmt.Errorf("read packet: %w", err), events.CauseIOError)
				break
			}
		}
		c.in.inPacket = true
		p, err := packet.ReadPacket(&c.in, c.ropts)
		c.in.inPacket = false
		if err != nil {
			cause := events.CauseIOError
			if pe := (*packet.Error)(nil); errors.As(err, &pe) {
				cause = events.CauseViolation // the broker sent a malformed packet
			}
			c.fail(fmt.Errorf("read packet: %w", err), cause)
			break
		}
		c.lastRecv.Store(c.now())
		if err := c.handle(p); err != nil {
			if pe := (*ProtocolError)(nil); errors.As(err, &pe) && c.version == packet.V5 {
				c.disconnectFor(pe.Code)
			}
			c.fail(err, events.CauseViolation)
			break
		}
	}
	c.finish()
}

// finish runs once on the reader goroutine when the link has ended: it stops
// the keepalive timer, fails everything in flight, closes Messages, emits the
// Disconnect event, closes Done and then calls OnConnectionLost.
func (c *Client) finish() {
	_ = c.conn.Close()
	c.in.release()
	c.mu.Lock()
	c.ended = true
	pending, lastID := c.ids.take(), c.ids.last
	c.resendQ = nil
	err, cause, t := c.err, c.cause, c.timer
	msgs := c.msgs
	c.msgEnd = true
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	c.bg.Wait() // a timer callback already running may re-arm the timer
	if t != nil {
		t.Stop()
	}
	if c.opts.Session != nil {
		c.handBack(pending, lastID)
	}
	lost := fmt.Errorf("connection ended before the ack: %w", err)
	for _, tok := range pending {
		tok.complete(lost)
	}
	if msgs != nil {
		close(msgs)
	}
	if c.sink != nil {
		e := events.Event{Kind: events.Disconnect, Cause: cause, Detail: err.Error()}
		if pe := (*packet.Error)(nil); errors.As(err, &pe) {
			e.Statement = pe.Statement
		}
		if re := (*ReasonError)(nil); cause == events.CauseServerDisconnect && errors.As(err, &re) {
			e.Code = int(re.Code)
		}
		c.emit(e)
	}
	close(c.done)
	if c.opts.OnConnectionLost != nil && cause != events.CauseShutdown && cause != events.CauseClientDisconnect {
		c.opts.OnConnectionLost(err)
	}
}

// handle acts on one incoming packet. An error ends the link as a protocol
// violation. Failed ack writes are not errors here: a write failure has
// already ended the link, and the next read will say so.
func (c *Client) handle(p packet.Packet) error {
	switch p := p.(type) {
	case *packet.Publish:
		if c.version == packet.V5 {
			if err := c.resolveAlias(p); err != nil {
				return err
			}
		}
		c.onPublish(p)
	case *packet.Puback:
		c.onPuback(p)
	case *packet.Pubrec:
		c.onPubrec(p)
	case *packet.Pubrel:
		// [MQTT-4.3.3-2] the id is fresh again once PUBCOMP goes out.
		delete(c.recv2, p.PacketID)
		c.sendAck(packet.PUBCOMP, p.PacketID)
	case *packet.Pubcomp:
		c.onPubcomp(p)
	case *packet.Suback:
		c.onSuback(p)
	case *packet.Unsuback:
		c.onUnsuback(p)
	case *packet.Pingresp:
		if sent := c.pingSent.Swap(0); sent != 0 && c.sink != nil {
			c.emit(events.Event{Kind: events.Ping, Latency: time.Duration(c.now() - sent)})
		}
	case *packet.Auth:
		return c.onAuth(p) // re-authentication (auth.go)
	case *packet.Disconnect:
		// An MQTT 5 server may say why it drops us; for us it is a lost link.
		err := &ReasonError{Packet: "DISCONNECT", Code: p.ReasonCode}
		c.fail(err, events.CauseServerDisconnect)
		return err
	default:
		return fmt.Errorf("unexpected %s from the broker: %w", p.Type(), ErrProtocol)
	}
	return nil
}

// onPublish delivers an incoming message and acknowledges it. A QoS 2
// message is delivered on its first PUBLISH only; repeats before PUBREL are
// answered with PUBREC again and not delivered [MQTT-4.3.3-2].
func (c *Client) onPublish(p *packet.Publish) {
	if c.sink != nil {
		e := events.Event{Kind: events.PublishReceived, Topic: p.Topic, QoS: p.QoS, Retain: p.Retain,
			PacketID: p.PacketID, Dup: p.Dup, Size: len(p.Payload)}
		if p.Props != nil && p.Props.TopicAlias != nil {
			e.Alias = *p.Props.TopicAlias // the broker's alias, resolved into Topic
		}
		c.emit(e)
	}
	switch p.QoS {
	case 0:
		c.deliver(p)
	case 1:
		c.deliver(p)
		c.sendAck(packet.PUBACK, p.PacketID) // [MQTT-4.3.2-2]
	case 2:
		if _, dup := c.recv2[p.PacketID]; !dup {
			if c.recv2 == nil {
				c.recv2 = make(map[uint16]struct{})
			}
			c.recv2[p.PacketID] = struct{}{}
			c.deliver(p)
		}
		c.sendAck(packet.PUBREC, p.PacketID)
	}
}

// deliver hands a message to OnMessage or the Messages channel. While the
// channel is full the reader waits, unless the link is ending.
func (c *Client) deliver(p *packet.Publish) {
	if c.opts.OnMessage != nil {
		c.opts.OnMessage(p)
		return
	}
	if c.rmsgs == nil {
		c.Messages() // makes it
		c.mu.Lock()
		c.rmsgs = c.msgs
		c.mu.Unlock()
	}
	select {
	case c.rmsgs <- p:
	case <-c.quit:
	}
}

// lookup returns the token in flight under id when it waits for an ack of
// the given kind; the caller holds c.mu.
func (c *Client) lookup(id uint16, kind opKind) *Token {
	t := c.ids.inflight[id]
	if t == nil || t.kind != kind || t.queued {
		return nil
	}
	return t
}

// finishPublish ends an outgoing QoS 1/2 exchange: frees its id and window
// slot, completes its token and reports the round trip with the reason
// code (PUBACK's, or PUBREC's for QoS 2), or the refusal.
func (c *Client) finishPublish(t *Token, code byte, err error) {
	if c.resendQ == nil || !c.resendNext() { // unlocked read: once the reader runs, only it changes resendQ
		<-c.window
	}
	t.complete(err)
	if c.sink == nil {
		return
	}
	if re := (*ReasonError)(nil); errors.As(err, &re) {
		c.emit(events.Event{Kind: events.PublishFailed, PacketID: t.id, QoS: t.qos, Code: int(re.Code), Detail: re.Packet})
		return
	}
	if err == nil {
		c.emit(events.Event{Kind: events.PublishAcked, PacketID: t.id, QoS: t.qos, Code: int(code), Latency: time.Duration(c.now() - t.sent.Load())})
	}
}

func (c *Client) onPuback(p *packet.Puback) {
	c.mu.Lock()
	t := c.lookup(p.PacketID, opPublish1)
	if t != nil {
		c.ids.free(p.PacketID)
	}
	c.mu.Unlock()
	if t == nil {
		slog.Debug("mqtt client: PUBACK for no QoS 1 publish in flight", "client", c.opts.ClientID, "id", p.PacketID)
		return
	}
	c.finishPublish(t, p.ReasonCode, c.reasonErr("PUBACK", p.ReasonCode))
}

func (c *Client) onPubrec(p *packet.Pubrec) {
	rerr := c.reasonErr("PUBREC", p.ReasonCode)
	c.mu.Lock()
	t := c.lookup(p.PacketID, opPublish2)
	if t != nil {
		if rerr != nil {
			c.ids.free(p.PacketID) // a failed PUBREC ends the exchange
		} else {
			t.relSent, t.rc = true, p.ReasonCode
			if s := c.opts.Session; s != nil {
				// Past PUBREC only PUBREL is ever resent, in PUBREC order.
				t.msg, t.seq = nil, s.seq.Add(1)
			}
		}
	}
	c.mu.Unlock()
	if t == nil {
		slog.Debug("mqtt client: PUBREC for no QoS 2 publish in flight", "client", c.opts.ClientID, "id", p.PacketID)
		return
	}
	if rerr != nil {
		c.finishPublish(t, p.ReasonCode, rerr)
		return
	}
	// A repeated PUBREC gets the PUBREL again; the PUBLISH is never resent [MQTT-4.3.3-1].
	c.sendAck(packet.PUBREL, p.PacketID)
}

func (c *Client) onPubcomp(p *packet.Pubcomp) {
	c.mu.Lock()
	t := c.lookup(p.PacketID, opPublish2)
	if t != nil && t.relSent {
		c.ids.free(p.PacketID)
	} else {
		t = nil
	}
	c.mu.Unlock()
	if t == nil {
		slog.Debug("mqtt client: PUBCOMP for no PUBREL in flight", "client", c.opts.ClientID, "id", p.PacketID)
		return
	}
	c.finishPublish(t, t.rc, c.reasonErr("PUBCOMP", p.ReasonCode))
}

func (c *Client) onSuback(p *packet.Suback) {
	c.mu.Lock()
	t := c.lookup(p.PacketID, opSubscribe)
	if t != nil {
		c.ids.free(p.PacketID)
	}
	c.mu.Unlock()
	if t == nil {
		slog.Debug("mqtt client: SUBACK for no SUBSCRIBE in flight", "client", c.opts.ClientID, "id", p.PacketID)
		return
	}
	t.codes = p.ReturnCodes
	var err error
	if len(p.ReturnCodes) != len(t.filters) {
		err = fmt.Errorf("SUBACK has %d codes for %d filters: %w", len(p.ReturnCodes), len(t.filters), ErrProtocol)
	}
	t.complete(err)
	if c.sink != nil {
		lat := time.Duration(c.now() - t.sent.Load())
		for i, f := range t.filters {
			if i < len(p.ReturnCodes) {
				c.emit(events.Event{Kind: events.Subscribed, Topic: f, QoS: p.ReturnCodes[i], PacketID: p.PacketID, Latency: lat})
			}
		}
	}
}

func (c *Client) onUnsuback(p *packet.Unsuback) {
	c.mu.Lock()
	t := c.lookup(p.PacketID, opUnsubscribe)
	if t != nil {
		c.ids.free(p.PacketID)
	}
	c.mu.Unlock()
	if t == nil {
		slog.Debug("mqtt client: UNSUBACK for no UNSUBSCRIBE in flight", "client", c.opts.ClientID, "id", p.PacketID)
		return
	}
	t.codes = p.ReasonCodes
	t.complete(nil)
	if c.sink != nil {
		for _, f := range t.filters {
			c.emit(events.Event{Kind: events.Unsubscribed, Topic: f, PacketID: p.PacketID, Latency: time.Duration(c.now() - t.sent.Load())})
		}
	}
}

// reasonErr turns an MQTT 5 failure reason code into an error; 3.1.1 acks
// carry no code.
func (c *Client) reasonErr(pkt string, code byte) error {
	if c.version == packet.V5 && code >= 0x80 {
		return &ReasonError{Packet: pkt, Code: code}
	}
	return nil
}
