package client

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/mqttfleet/mqttfleet/internal/netpark"
)

// parkAfter is how long a plain TCP link stays silent before its reader
// parks it: busy clients never pay for the round trip through the poller.
const parkAfter = time.Second

// An idle client holds no goroutine. Its reader waits for the next packet
// with a read deadline parkAfter after the last packet received; when the
// deadline passes with nothing buffered, it hands the conn to the shared
// netpark poller and exits. The poller starts a new reader (resume) when
// the socket becomes readable — a PINGRESP, a PUBLISH, EOF. The keepalive
// timer does not need the reader: it writes PINGREQ and detects the ping
// timeout on its own, ending the link through fail, which (like Close and
// Disconnect) takes the conn back from the poller in closeQuit and resumes
// the reader so that finish runs as usual.
//
//	reader --silent parkAfter--> park --> poller --readable--> resume --> reader
//	                                        ^                    ^
//	                 closeQuit (fail, Close, Disconnect) --Unpark-+
//
// Only *net.TCPConn is parked: TLS and WebSocket conns buffer data in user
// space, where the poller cannot see it, so they keep their reader.
//
// c.mu orders parking against the link ending: park and armPark look at
// quit under c.mu, and closeQuit takes c.mu after closing quit, so either
// the reader sees the link ending or closeQuit sees the conn parked.

// parkable reports whether conn can wait in the poller.
func parkable(conn net.Conn) bool {
	_, ok := conn.(*net.TCPConn)
	return ok
}

// quitting reports whether the link has started ending.
func (c *Client) quitting() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// waitIdle blocks until a byte of the next packet is buffered, parking the
// client when the link stays silent. It reports parked when the poller now
// owns the client (the caller's goroutine must exit), or the read error.
func (c *Client) waitIdle() (parked bool, err error) {
	for range 3 { // re-arming once is enough: no packet arrives meanwhile
		if !c.parkArmed {
			at := time.Now().Add(parkAfter - c.silence())
			if !c.armPark(at) {
				break // the link is ending: read the plain way
			}
		}
		err := c.in.fill()
		if err == nil {
			return false, nil
		}
		if !isTimeout(err) || !c.parkArmed || c.quitting() {
			return false, err
		}
		c.parkArmed = false
		if c.silence() < parkAfter {
			continue // packets came after the deadline was set
		}
		if c.park() {
			return true, nil
		}
		break // refused: keep this goroutine
	}
	c.canPark = false
	c.disarmPark()
	return false, c.in.fill()
}

// silence is how long the reader has seen nothing: since the last packet,
// or since this reader goroutine started (a resumed reader has data to read).
func (c *Client) silence() time.Duration {
	now := c.now()
	return time.Duration(now - max(c.lastRecv.Load(), c.startedAt))
}

// armPark sets the park deadline unless the link is ending, when the
// deadline belongs to Disconnect's drain.
func (c *Client) armPark(at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quitting() {
		return false
	}
	_ = c.conn.SetReadDeadline(at)
	c.parkArmed = true
	return true
}

// disarmPark clears the park deadline unless the link is ending.
func (c *Client) disarmPark() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parkArmed && !c.quitting() {
		_ = c.conn.SetReadDeadline(time.Time{})
	}
	c.parkArmed = false
}

// retryRead is asked by the read buffer about a failed read: a park
// deadline that fires in the middle of a packet only means the rest is
// slow to come, so the deadline is cleared and the read retried.
func (c *Client) retryRead(err error, inPacket bool) bool {
	if !inPacket || !c.parkArmed || !isTimeout(err) {
		return false
	}
	c.disarmPark()
	return !c.quitting()
}

// park hands the silent conn to the poller. It drops what an idle client
// need not hold (read buffer, empty inflight map) and clears the expired
// deadline so a reader resumed for Disconnect's drain does not trip on it.
func (c *Client) park() bool {
	c.in.release()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quitting() {
		return false
	}
	_ = c.conn.SetReadDeadline(time.Time{})
	if len(c.ids.inflight) == 0 {
		c.ids.take()
	}
	c.parked.Store(true) // before Park: the wake may come at once
	if !netpark.Default().Park(c.conn, c.resume) {
		c.parked.Store(false)
		return false
	}
	return true
}

// resume starts a reader for a conn the poller (or closeQuit) gave back.
func (c *Client) resume() {
	c.parked.Store(false)
	go c.readLoop()
}

// unpark takes the conn back from the poller when the link ends, and
// resumes the reader so it sees the end; the caller has closed quit.
func (c *Client) unpark() {
	if !c.canParkConn {
		return
	}
	c.mu.Lock()
	back := netpark.Default().Unpark(c.conn)
	c.mu.Unlock()
	if back {
		c.resume()
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
