package client

import (
	"context"
	"fmt"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// maxKeptWriteBuffer: a larger encode buffer is dropped after use so one big
// publish does not pin memory in every client of a fleet.
const maxKeptWriteBuffer = 16 << 10

// longAgo is a deadline in the past, used to interrupt a blocked write.
var longAgo = time.Unix(1, 0)

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

func (c *Client) releaseWrite() { <-c.wsem }

// send writes one packet. wrote reports whether any byte may have reached
// the conn: when it is false nothing was sent and the link is unharmed.
func (c *Client) send(ctx context.Context, p packet.Packet) (wrote bool, err error) {
	if err := c.acquireWrite(ctx); err != nil {
		return false, err
	}
	defer c.releaseWrite()
	return c.writeLocked(ctx, p)
}

// writeLocked encodes and writes p; the caller holds the write slot. A write
// error ends the link, since a partial packet leaves the stream unusable.
// When ctx ends during the write, the write is interrupted through the
// conn's deadline and the link ends too.
func (c *Client) writeLocked(ctx context.Context, p packet.Packet) (wrote bool, err error) {
	if c.wclosed {
		return false, c.linkErr()
	}
	select {
	case <-c.quit:
		if _, isDisc := p.(*packet.Disconnect); !isDisc {
			return false, c.linkErr()
		}
	default:
	}
	buf, err := packet.Append(c.wbuf[:0], p, c.version)
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", p.Type(), err)
	}
	var fired chan struct{}
	var stop func() bool
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			_ = c.conn.SetWriteDeadline(longAgo)
			close(fired)
		})
	}
	_, err = c.conn.Write(buf)
	if stop != nil && !stop() {
		<-fired // the deadline is set: the write may have been cut short
		if err == nil {
			_ = c.conn.SetWriteDeadline(time.Time{})
		} else {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}
	if cap(buf) > maxKeptWriteBuffer {
		buf = nil
	}
	c.wbuf = buf
	if err != nil {
		err = fmt.Errorf("write %s: %w", p.Type(), err)
		c.fail(err, events.CauseIOError)
		return true, err
	}
	c.lastSent.Store(c.now())
	return true, nil
}
