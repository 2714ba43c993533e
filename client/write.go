package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// maxKeptWriteBuffer: a larger encode buffer is dropped after use so one big
// publish does not pin memory in the pool.
const maxKeptWriteBuffer = 16 << 10

// writeBufs are the encode buffers, shared by every client: a client holds
// one only while it writes, so an idle fleet holds none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// getWriteBuf borrows an empty encode buffer.
func getWriteBuf() *[]byte { return writeBufs.Get().(*[]byte) }

// putWriteBuf returns buf, the grown contents of bp, to the pool.
func putWriteBuf(bp *[]byte, buf []byte) {
	if cap(buf) > maxKeptWriteBuffer {
		return
	}
	*bp = buf[:0]
	writeBufs.Put(bp)
}

// longAgo is a deadline in the past, used to interrupt a blocked write.
var longAgo = time.Unix(1, 0)

// ack is an acknowledgement the reader owes the broker: PUBACK, PUBREC,
// PUBREL or PUBCOMP for one packet identifier; or a Session's PUBLISH the
// reader resends when a window slot frees (session_resend.go).
type ack struct {
	t   packet.Type
	id  uint16
	pub *packet.Publish // PUBLISH only
}

// acquireWrite takes the write slot, giving up when ctx ends or the link is
// ending.
func (c *Client) acquireWrite(ctx context.Context) error {
	select {
	case c.wsem <- struct{}{}:
		return nil
	default:
	}
	select {
	case c.wsem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait to write: %w", ctx.Err())
	case <-c.quit:
		return c.linkErr()
	}
}

// releaseWrite writes the acks queued while the slot was held, then frees
// the slot. An ack queued just after the check is flushed by whoever gets
// the slot next, or by the reader itself (see sendAck).
func (c *Client) releaseWrite() {
	for range 1 << 16 { // bounded: each pass flushes or returns
		if c.acksQueued.Load() {
			c.flushAcksLocked()
		}
		<-c.wsem
		if !c.acksQueued.Load() {
			return
		}
		select {
		case c.wsem <- struct{}{}:
		default:
			return // the new holder flushes them
		}
	}
	<-c.wsem
}

// sendAck writes an acknowledgement from the reader goroutine. When the slot
// is busy — a publisher may be blocked in Write because the broker is itself
// blocked writing to us — the ack is queued and the reader goes on reading,
// so the two sides cannot deadlock on full socket buffers. Queued acks go
// out before newer ones, in the order their packets arrived [MQTT-4.6.0-2]
// [MQTT-4.6.0-3] [MQTT-4.6.0-4].
func (c *Client) sendAck(t packet.Type, id uint16) {
	c.sendQueued(ack{t: t, id: id})
}

// sendQueued is sendAck for any queued packet.
func (c *Client) sendQueued(a ack) {
	select {
	case c.wsem <- struct{}{}:
	default:
		c.ackMu.Lock()
		c.acks = append(c.acks, a)
		c.acksQueued.Store(true)
		c.ackMu.Unlock()
		// The holder may have released the slot before seeing the queue.
		select {
		case c.wsem <- struct{}{}:
			c.releaseWrite()
		default:
		}
		return
	}
	if c.acksQueued.Load() {
		c.flushAcksLocked()
	}
	_, _ = c.writeLocked(context.Background(), c.ackPacket(a))
	c.releaseWrite()
}

// flushAcksLocked writes every queued ack in one Write; the caller holds the
// slot. Acks owed on a link that is ending are dropped.
func (c *Client) flushAcksLocked() {
	c.ackMu.Lock()
	q := c.acks
	c.acks = nil
	c.acksQueued.Store(false)
	c.ackMu.Unlock()
	if len(q) == 0 || c.writable(nil) != nil {
		return
	}
	bp := getWriteBuf()
	buf := *bp
	for _, a := range q {
		var err error
		if buf, err = packet.Append(buf, c.ackPacket(a), c.version); err != nil {
			putWriteBuf(bp, buf)
			c.fail(fmt.Errorf("encode %s: %w", a.t, err), events.CauseViolation)
			return
		}
	}
	_ = c.writeBuf(context.Background(), buf, q[0].t)
	putWriteBuf(bp, buf)
}

// ackPacket fills the slot holder's scratch packet for a; it is encoded at
// once, so one scratch per type is enough.
func (c *Client) ackPacket(a ack) packet.Packet {
	switch a.t {
	case packet.PUBLISH:
		if c.sink != nil {
			c.emitSent(a.pub)
		}
		return a.pub
	case packet.PUBACK:
		c.puback.PacketID = a.id
		return &c.puback
	case packet.PUBREC:
		c.pubrec.PacketID = a.id
		return &c.pubrec
	case packet.PUBREL:
		c.pubrel.PacketID = a.id
		return &c.pubrel
	default:
		c.pubcomp.PacketID = a.id
		return &c.pubcomp
	}
}

// send writes one packet. wrote reports whether any byte may have reached
// the conn: when it is false nothing was sent and the link is unharmed.
func (c *Client) send(ctx context.Context, p packet.Packet) (wrote bool, err error) {
	if err := c.acquireWrite(ctx); err != nil {
		return false, err
	}
	defer c.releaseWrite()
	return c.writeLocked(ctx, p)
}

// writable says whether p (nil: any packet) may still be written: nothing
// goes out after DISCONNECT [MQTT-3.14.4-2], and only DISCONNECT once the
// link is ending.
func (c *Client) writable(p packet.Packet) error {
	if c.wclosed {
		return c.linkErr()
	}
	select {
	case <-c.quit:
		if _, isDisc := p.(*packet.Disconnect); !isDisc {
			return c.linkErr()
		}
	default:
	}
	return nil
}

// writeLocked encodes and writes p; the caller holds the write slot.
func (c *Client) writeLocked(ctx context.Context, p packet.Packet) (wrote bool, err error) {
	if err := c.writable(p); err != nil {
		return false, err
	}
	bp := getWriteBuf()
	buf, err := packet.Append(*bp, p, c.version)
	if err != nil {
		putWriteBuf(bp, buf)
		return false, fmt.Errorf("encode %s: %w", p.Type(), err)
	}
	err = c.writeBuf(ctx, buf, p.Type())
	putWriteBuf(bp, buf)
	return true, err
}

// writeBuf writes buf (encoded packets, the first of type t) in one Write.
// A write error ends the link, since a
// partial packet leaves the stream unusable. When ctx ends during the write,
// the write is interrupted through the conn's deadline and the link ends too.
func (c *Client) writeBuf(ctx context.Context, buf []byte, t packet.Type) error {
	var fired chan struct{}
	var stop func() bool
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			_ = c.conn.SetWriteDeadline(longAgo)
			close(fired)
		})
	}
	_, err := c.conn.Write(buf)
	if stop != nil && !stop() {
		<-fired // the deadline is set: the write may have been cut short
		if err == nil {
			_ = c.conn.SetWriteDeadline(time.Time{})
		} else {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}
	if err != nil {
		err = fmt.Errorf("write %s: %w", t, err)
		c.fail(err, events.CauseIOError)
		return err
	}
	c.lastSent.Store(c.now())
	return nil
}
