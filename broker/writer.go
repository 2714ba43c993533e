package broker

import (
	"errors"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// The outbound side of a connection. Packets are appended to conn.out under
// conn.omu; a writer goroutine is started when the first packet arrives and
// exits when the queue is empty, so an idle connection holds no writer
// goroutine and no write buffer (memory per idle connection is a target).

// writeBufs holds encode buffers shared by all writers.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// flushAt is the encoded size after which a writer writes what it has.
const flushAt = 32 << 10

// send queues p for writing. A droppable packet (a QoS 0 PUBLISH) is refused
// when the queue holds OutboundBuffer packets or more, so a slow subscriber
// never slows its publishers. Other packets are bounded by the inflight
// window and by the reader's back-pressure (waitRoom). It reports whether p
// was queued.
func (c *conn) send(p packet.Packet, droppable bool) bool {
	c.omu.Lock()
	if c.oclosed || (droppable && len(c.out) >= c.b.cfg.OutboundBuffer) {
		c.omu.Unlock()
		return false
	}
	c.out = append(c.out, p)
	if !c.writing {
		c.writing = true
		// The caller is a goroutine counted in b.wg, so the counter is not
		// zero here and Add may race with Close's Wait.
		c.b.wg.Add(1)
		go c.writeLoop()
	}
	c.omu.Unlock()
	return true
}

// sendPublish queues a PUBLISH, counting and reporting it as dropped when a
// QoS 0 message finds the queue full.
func (c *conn) sendPublish(p *packet.Publish) {
	if c.send(p, p.QoS == 0) {
		return
	}
	if p.QoS == 0 {
		c.b.drop(c.clientID, p.Topic, 0, events.CauseQueueFull, "outbound queue full (slow consumer)")
	}
}

// stallLimit is how long a reader waits for its own outbound queue to move
// before the connection is closed as stalled.
const stallLimit = 30 * time.Second

// waitRoom blocks the reader while the connection's own outbound queue is
// far over its bound: a client that publishes but never reads its socket
// slows only itself. If the queue does not move for stallLimit (or 1.5x the
// keepalive, if longer) the connection is closed.
func (c *conn) waitRoom() {
	limit := 2*c.b.cfg.OutboundBuffer + c.b.cfg.MaxInflight
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for range 1 << 20 { // bounded; each pass waits for one drain
		c.omu.Lock()
		if len(c.out) <= limit || c.oclosed {
			c.omu.Unlock()
			return
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.omu.Unlock()
		wait := max(stallLimit, c.keepalive*3/2)
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait) // the queue moved: start over
		}
		select {
		case <-room:
		case <-timer.C:
			c.shutdown(events.CauseIOError, "", "outbound queue stalled: the client does not read")
			return
		}
	}
}

// writeLoop writes queued packets in batches until the queue is empty or the
// socket fails.
func (c *conn) writeLoop() {
	defer c.b.wg.Done()
	bp := writeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			*bp = (*bp)[:0]
			writeBufs.Put(bp)
		}
	}()
	for {
		c.omu.Lock()
		batch := c.out
		if len(batch) == 0 || c.oclosed {
			c.writing = false
			c.out = nil
			c.wakeReader()
			c.omu.Unlock()
			return
		}
		c.out = nil
		c.omu.Unlock()

		buf := (*bp)[:0]
		var err error
		var pubs uint64
		connack := false
		for i, p := range batch {
			switch p.Type() {
			case packet.PUBLISH:
				pubs++
			case packet.CONNACK:
				connack = true
			}
			if c.aliasOut == nil {
				buf, err = packet.Append(buf, p, c.version)
			} else if pub, ok := p.(*packet.Publish); ok {
				buf, err = c.appendPublish(buf, pub) // with a Topic Alias (alias_out.go)
			} else {
				buf, err = packet.Append(buf, p, c.version)
			}
			if err != nil {
				c.b.log.Error("encode packet", "client", c.clientID, "type", p.Type().String(), "err", err)
				err = nil
				continue
			}
			if len(buf) >= flushAt || i == len(batch)-1 {
				if err = c.write(buf, connack); err != nil {
					break
				}
				c.b.bytesOut.Add(uint64(len(buf)))
				buf = buf[:0]
			}
		}
		*bp = buf[:0]
		c.b.msgOut.Add(pubs)
		clear(batch)
		c.omu.Lock()
		if c.out == nil && cap(batch) <= 256 {
			c.out = batch[:0] // reused while the writer lives
		}
		c.wakeReader()
		c.omu.Unlock()
		if err != nil {
			c.shutdown(events.CauseIOError, "", "write: "+err.Error())
			c.omu.Lock()
			c.writing = false
			c.out = nil
			c.omu.Unlock()
			return
		}
	}
}

// closeOutbound stops accepting packets and wakes a reader waiting for room.
func (c *conn) closeOutbound() {
	c.omu.Lock()
	c.oclosed = true
	c.wakeReader()
	c.omu.Unlock()
}

// wakeReader releases a reader waiting in waitRoom. c.omu is held.
func (c *conn) wakeReader() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// errSealed stops a writer once a server DISCONNECT went out.
var errSealed = errors.New("connection sealed by a server DISCONNECT")

// write writes buf unless a server DISCONNECT was written [MQTT-3.14.4-1],
// and notes when an MQTT 5 CONNACK went out (a DISCONNECT may follow it
// only then [MQTT-3.14.0-1]).
func (c *conn) write(buf []byte, connack bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.sealed {
		return errSealed
	}
	if connack && c.version == packet.V5 {
		// Before the write: a DISCONNECT waits for it on wmu, and the
		// client may act on the CONNACK before Write returns here.
		c.connacked.Store(true)
	}
	_, err := c.rd.nc.Write(buf)
	return err
}
