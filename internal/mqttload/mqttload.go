// Package mqttload is the load generator of the benchmarks that compare
// brokers (broker/) and measure the fault proxy (netem/). It is lean on
// purpose: CONNECT and SUBSCRIBE go through the codec, then PUBLISH batches
// are pre-encoded and incoming frames are only counted, so the generator
// costs the same whichever broker or path it drives and leaves the CPU to
// what is measured. MQTT 3.1.1 by default, MQTT 5.0 with a Target of Level
// packet.V5 (see v5.go); clean sessions.
package mqttload

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Payload64 is the 64-byte payload of every scenario.
var Payload64 = []byte(strings.Repeat("p", 64))

// Conn is one generator connection.
type Conn struct {
	NC net.Conn
	// Level is the protocol level the connection speaks (packet.V311 or
	// packet.V5).
	Level byte
	// ReceiveMax is how many QoS 1 and 2 PUBLISHes the server lets this
	// client have unacknowledged: its CONNACK's Receive Maximum in 5.0
	// (65535 when absent, section 3.2.2.3.3); 3.1.1 sets no limit (65535).
	ReceiveMax uint16
}

var dials atomic.Uint32

// dialer spreads connections over source addresses 127.0.0.2-127.0.0.65
// (all of 127/8 is loopback). From one source address, connect(2) has to
// search one ephemeral port range that the open connections are filling;
// with thousands open, that search, not the broker, was most of the machine's
// CPU in the connect-rate benchmark. IP_BIND_ADDRESS_NO_PORT leaves the port
// choice to connect, which then only avoids this source address's 4-tuples.
// Addresses that are not loopback are dialled from the default source.
func dialer(addr string) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return d
	}
	n := dials.Add(1)
	d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n%64))}
	d.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
		}); err != nil {
			return err
		}
		return serr
	}
	return d
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h.
const ipBindAddressNoPort = 24

// Dial connects with MQTT 3.1.1, a clean session and the given keepalive
// and waits for a CONNACK that accepts it.
func Dial(addr, id string, keepalive uint16) (*Conn, error) {
	return Target{Addr: addr}.Dial(id, keepalive)
}

// Dial connects at t's protocol level with a clean session (a kept one with
// t.Persistent) and the given keepalive and waits for a CONNACK that
// accepts it.
func (t Target) Dial(id string, keepalive uint16) (*Conn, error) {
	level := t.level()
	nc, err := dialer(t.Addr).Dial("tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	// Close with RST: a benchmark opens tens of thousands of connections, and
	// TIME_WAIT sockets would crowd the loopback port range other tests share.
	_ = nc.(*net.TCPConn).SetLinger(0)
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	cp := &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: level, ClientID: id, CleanSession: !t.Persistent, KeepAlive: keepalive}
	if t.Persistent && level == packet.V5 {
		never := uint32(0xFFFFFFFF)
		cp.Props = &packet.Properties{SessionExpiry: &never}
	}
	if err := packet.Encode(nc, cp, level); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect %s: %w", id, err)
	}
	c := &Conn{NC: nc, Level: level, ReceiveMax: 65535}
	if level == packet.V5 {
		err = c.readConnack5()
	} else {
		// A 3.1.1 CONNACK is four fixed bytes: read them without the
		// codec, as the connect-rate benchmark dials in its hot loop.
		var ack [4]byte
		if _, err = io.ReadFull(nc, ack[:]); err == nil && (ack[0] != 0x20 || ack[3] != 0) {
			err = fmt.Errorf("% x", ack)
		}
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("connack %s: %w", id, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// Subscribe subscribes to one filter and waits for a SUBACK that grants it.
func (c *Conn) Subscribe(filter string, qos byte) error {
	_ = c.NC.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.NC.SetDeadline(time.Time{})
	if err := packet.Encode(c.NC, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}}, c.Level); err != nil {
		return err
	}
	if c.Level == packet.V5 {
		return c.readSuback5()
	}
	var ack [5]byte
	if _, err := io.ReadFull(c.NC, ack[:]); err != nil || ack[0] != 0x90 || ack[4] > 2 {
		return fmt.Errorf("suback % x %v", ack, err)
	}
	return nil
}

// Frames reads until the deadline or an error and calls fn for every
// complete packet (first byte, body); after each read, flush (if set) runs,
// to write acknowledgements in one batch. Reaching the deadline is not an error.
func (c *Conn) Frames(until time.Time, fn func(first byte, body []byte), flush func() error) error {
	_ = c.NC.SetReadDeadline(until)
	buf := make([]byte, 256<<10)
	start, end := 0, 0
	for {
		for end-start >= 2 {
			n, mul, i, ok := 0, 1, start+1, false
			for i < end && i < start+5 { // remaining length [MQTT-2.2.3]
				b := buf[i]
				n += int(b&127) * mul
				mul *= 128
				i++
				if b&128 == 0 {
					ok = true
					break
				}
			}
			if !ok || i+n > end {
				break
			}
			fn(buf[start], buf[i:i+n])
			start = i + n
		}
		if flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		copy(buf, buf[start:end])
		end -= start
		start = 0
		if end == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		n, err := c.NC.Read(buf[end:])
		end += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			return err
		}
	}
}

// Flood writes QoS 0 PUBLISHes to topic in batches of 64 until the deadline
// and returns how many it wrote.
func (c *Conn) Flood(topic string, payload []byte, until time.Time) int {
	return c.flood(topic, payload, until, 0)
}

// flood is Flood stopping after limit messages when limit > 0.
func (c *Conn) flood(topic string, payload []byte, until time.Time, limit int) int {
	one, _ := packet.Append(nil, &packet.Publish{Topic: topic, Payload: payload}, c.Level)
	var batch []byte
	const per = 64
	for range per {
		batch = append(batch, one...)
	}
	_ = c.NC.SetWriteDeadline(until)
	sent := 0
	for time.Now().Before(until) && (limit == 0 || sent < limit) {
		b := batch
		if limit > 0 && limit-sent < per {
			b = batch[:(limit-sent)*len(one)]
		}
		if _, err := c.NC.Write(b); err != nil {
			break
		}
		sent += len(b) / len(one)
	}
	return sent
}

// Close closes the connection (with RST, see Dial).
func (c *Conn) Close() error { return c.NC.Close() }

// CloseAll closes every non-nil connection.
func CloseAll(cs ...*Conn) {
	for _, c := range cs {
		if c != nil {
			_ = c.NC.Close()
		}
	}
}

// RunLength is how long each scenario run of a benchmark lasts:
// MQTTFLEET_BENCH_SECONDS when it holds a positive number, else def.
func RunLength(def time.Duration) time.Duration {
	if v, err := strconv.ParseFloat(os.Getenv("MQTTFLEET_BENCH_SECONDS"), 64); err == nil && v > 0 {
		return time.Duration(v * float64(time.Second))
	}
	return def
}
