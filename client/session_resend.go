package client

import (
	"context"
	"fmt"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// resumeSession adopts the Session's state after CONNACK, before the reader
// starts. Every held message gets its packet identifier back at once, so
// the allocator never reuses one; the first window's worth is returned to
// be resent now, the rest wait in resendQ (marked queued, so an ack for one
// not yet resent is ignored) and go out one per final ack (resendNext).
// With Session Present 0 the held messages fail with ErrSessionLost.
func (c *Client) resumeSession(present bool) []packet.Packet {
	out, in2, last, lost := c.opts.Session.take(present)
	failHeld(lost, fmt.Errorf("broker answered Session Present 0: %w", ErrSessionLost))
	c.recv2 = in2 // reader only; the reader has not started
	n := min(len(out), cap(c.window))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids.last = last
	for i, t := range out {
		t.queued = i >= n
		c.ids.hold(t)
		if !t.queued {
			c.window <- struct{}{} // never blocks: n <= cap
		}
	}
	if n < len(out) {
		c.resendQ = out[n:]
	}
	// The packets are made here, before the reader could touch the tokens.
	first := make([]packet.Packet, n)
	for i, t := range out[:n] {
		first[i] = t.resendPacket()
	}
	return first
}

// resendFirst writes the first resent messages in one Write, before
// Connect returns and so before any new publish. A failure ends the link,
// which hands the messages back to the Session.
func (c *Client) resendFirst(ctx context.Context, first []packet.Packet) {
	if err := c.acquireWrite(ctx); err != nil {
		c.fail(fmt.Errorf("resend session: %w", err), events.CauseIOError)
		return
	}
	defer c.releaseWrite()
	if c.writable(nil) != nil {
		return // the link is ending: finish hands the messages back
	}
	bp := getWriteBuf()
	buf := *bp
	for _, p := range first {
		var err error
		if buf, err = packet.Append(buf, p, c.version); err != nil {
			putWriteBuf(bp, buf)
			c.fail(fmt.Errorf("resend session: encode %s: %w", p.Type(), err), events.CauseViolation)
			return
		}
	}
	if err := c.writeBuf(ctx, buf, first[0].Type()); err == nil && c.sink != nil {
		for _, p := range first {
			if pub, ok := p.(*packet.Publish); ok {
				c.emitSent(pub)
			}
		}
	}
	putWriteBuf(bp, buf)
}

// resendNext lets the next queued session message out in the window slot
// a final ack just freed, and says whether there was one; the reader calls
// it. Handing the slot over keeps new publishes behind the session's.
func (c *Client) resendNext() bool {
	c.mu.Lock()
	if len(c.resendQ) == 0 || c.ended {
		c.mu.Unlock()
		return false
	}
	t := c.resendQ[0]
	c.resendQ[0] = nil
	c.resendQ = c.resendQ[1:]
	if len(c.resendQ) == 0 {
		c.resendQ = nil
	}
	t.queued = false
	c.mu.Unlock()
	if t.relSent {
		c.sendAck(packet.PUBREL, t.id)
		return true
	}
	c.sendQueued(ack{t: packet.PUBLISH, id: t.id, pub: t.resendPacket().(*packet.Publish)})
	return true
}

// handBack gives the Session what this connection still holds when the
// link ends; finish calls it before Done closes, so the next connection
// finds the session free. Outgoing publishes leave pending (their Tokens
// stay open); the rest stays for finish to fail.
func (c *Client) handBack(pending map[uint16]*Token, last uint16) {
	var out []*Token
	for id, t := range pending {
		if t.kind == opPublish1 || t.kind == opPublish2 {
			out = append(out, t)
			delete(pending, id)
		}
	}
	c.opts.Session.keep(c, out, c.recv2, last)
	c.recv2 = nil
}
