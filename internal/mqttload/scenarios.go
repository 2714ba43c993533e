package mqttload

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Result is one scenario run: messages sent, messages received (summed over
// subscribers) and received per second. Window is the QoS 1 window the
// publisher used (PointToPoint only): the one asked for, or less when the
// server's 5.0 Receive Maximum is smaller.
type Result struct {
	Sent, Received int64
	Rate           float64
	Window         int
	Acked          int64 // PUBACKs the publishers received (PointToPoint, FanInQoS1)
}

func result(sent, received int64, d time.Duration) Result {
	return Result{Sent: sent, Received: received, Rate: float64(received) / d.Seconds()}
}

// stopReading makes Frames return after the frames it holds: the next
// read meets a deadline already past.
func (c *Conn) stopReading() { _ = c.NC.SetReadDeadline(time.Now()) }

// dialAll connects one client per ID, closing what it opened on failure.
func (t Target) dialAll(ids []string) ([]*Conn, error) {
	cs := make([]*Conn, 0, len(ids))
	for _, id := range ids {
		c, err := t.Dial(id, 0)
		if err != nil {
			CloseAll(cs...)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// FanIn is Target{Addr: addr}.FanIn: MQTT 3.1.1.
func FanIn(addr string, n int, d time.Duration) (Result, error) {
	return Target{Addr: addr}.FanIn(n, d)
}

// FanOut is Target{Addr: addr}.FanOut: MQTT 3.1.1.
func FanOut(addr string, n int, d time.Duration) (Result, error) {
	return Target{Addr: addr}.FanOut(n, d)
}

// PointToPoint is Target{Addr: addr}.PointToPoint: MQTT 3.1.1.
func PointToPoint(addr string, w int, d time.Duration) (Result, error) {
	return Target{Addr: addr}.PointToPoint(w, d)
}

// FanIn: n publishers flood QoS 0 to one subscriber of bench/in/+ for d;
// Rate is messages the subscriber received per second.
func (t Target) FanIn(n int, d time.Duration) (Result, error) {
	s, err := t.Dial("fanin-sub", 0)
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	if err := s.Subscribe("bench/in/+", 0); err != nil {
		return Result{}, err
	}
	pubs, err := t.dialAll(ids("fanin-pub", n))
	if err != nil {
		return Result{}, err
	}
	defer CloseAll(pubs...)
	until := time.Now().Add(d)
	var received atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Frames(until, func(first byte, _ []byte) {
			if first>>4 == 3 && received.Add(1) == int64(n*t.Messages) {
				s.stopReading()
			}
		}, nil)
	}()
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent.Add(int64(p.flood(fmt.Sprintf("bench/in/%d", i), Payload64, until, t.Messages)))
		}()
	}
	wg.Wait()
	<-done
	return result(sent.Load(), received.Load(), d), nil
}

// FanOut: one publisher floods QoS 0 to n subscribers of bench/out for d;
// Rate is deliveries per second summed over the subscribers.
func (t Target) FanOut(n int, d time.Duration) (Result, error) {
	subs, err := t.dialAll(ids("fanout-sub", n))
	if err != nil {
		return Result{}, err
	}
	defer CloseAll(subs...)
	for _, s := range subs {
		if err := s.Subscribe("bench/out", 0); err != nil {
			return Result{}, err
		}
	}
	p, err := t.Dial("fanout-pub", 0)
	if err != nil {
		return Result{}, err
	}
	defer p.Close()
	until := time.Now().Add(d)
	var wg sync.WaitGroup
	var received atomic.Int64
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			_ = s.Frames(until, func(first byte, _ []byte) {
				if first>>4 == 3 {
					if n++; n == int64(t.Messages) {
						s.stopReading()
					}
				}
			}, nil)
			received.Add(n)
		}()
	}
	sent := p.flood("bench/out", Payload64, until, t.Messages)
	wg.Wait()
	return result(int64(sent), received.Load(), d), nil
}

// PointToPoint: one QoS 1 publisher with a window of w unacknowledged
// messages to one QoS 1 subscriber that acknowledges everything, for d;
// Rate is messages the subscriber received per second. In 5.0 the window is
// at most the server's Receive Maximum [MQTT-3.3.4-7].
func (t Target) PointToPoint(w int, d time.Duration) (Result, error) {
	s, err := t.Dial("p2p-sub", 0)
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	if err := s.Subscribe("bench/p2p", 1); err != nil {
		return Result{}, err
	}
	p, err := t.Dial("p2p-pub", 0)
	if err != nil {
		return Result{}, err
	}
	defer p.Close()
	w = max(1, min(w, int(p.ReceiveMax)))
	until := time.Now().Add(d)
	var received atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // subscriber: count and acknowledge
		defer wg.Done()
		var acks []byte
		_ = s.Frames(until, func(first byte, body []byte) {
			if first>>4 != 3 {
				return
			}
			tl := int(body[0])<<8 | int(body[1])
			acks = appendPuback(acks, s.Level, body[2+tl], body[3+tl])
			if received.Add(1) == int64(t.Messages) {
				s.stopReading() // after flushing these acks
			}
		}, func() error {
			if len(acks) == 0 {
				return nil
			}
			_, err := s.NC.Write(acks)
			acks = acks[:0]
			return err
		})
	}()
	var acked atomic.Int64
	sent := t.publishWindowed(p, "bench/p2p", w, until, d, &acked)
	wg.Wait()
	r := result(sent, received.Load(), d)
	r.Window = w
	r.Acked = acked.Load()
	return r, nil
}

// publishWindowed publishes QoS 1 messages to topic from p with up to w
// unacknowledged, for d (or t.Messages of them), counting the PUBACKs in
// acked, and returns how many it sent. Its PUBACK reader goroutine has
// returned when it does.
func (t Target) publishWindowed(p *Conn, topic string, w int, until time.Time, d time.Duration, acked *atomic.Int64) int64 {
	window := make(chan struct{}, w)
	done := make(chan struct{})
	mine := 0   // PUBACKs for p (owned by the reader)
	go func() { // the PUBACK reader frees the window
		defer close(done)
		_ = p.Frames(until.Add(time.Second), func(first byte, _ []byte) {
			if first>>4 == 4 {
				acked.Add(1)
				if mine++; mine == t.Messages {
					p.stopReading() // exact: every acknowledgement is in
				}
				select {
				case <-window:
				default:
				}
			}
		}, nil)
	}()
	id := uint16(0)
	var buf []byte
	sent := int64(0)
	_ = p.NC.SetWriteDeadline(until)
	end := time.NewTimer(d)
	defer end.Stop()
send:
	for t.Messages == 0 || sent < int64(t.Messages) {
		select {
		case window <- struct{}{}:
		case <-end.C:
			break send
		}
		buf = buf[:0]
		k := 0
		for ; ; k++ { // everything the window allows, in one write
			id++
			if id == 0 {
				id = 1
			}
			buf, _ = packet.Append(buf, &packet.Publish{Topic: topic, QoS: 1, PacketID: id, Payload: Payload64}, p.Level)
			if k == w-1 || sent+int64(k+1) == int64(t.Messages) {
				break
			}
			select {
			case window <- struct{}{}:
				continue
			default:
			}
			break
		}
		if _, err := p.NC.Write(buf); err != nil {
			break
		}
		sent += int64(k + 1)
	}
	if t.Messages == 0 || sent < int64(t.Messages) {
		_ = p.NC.SetReadDeadline(time.Now()) // timed: end the PUBACK reader now
	}
	<-done
	return sent
}

// FanInQoS1: n publishers, each with up to w QoS 1 messages unacknowledged,
// to one QoS 1 subscriber of bench/in1/+ that acknowledges everything, for
// d; Rate is messages the subscriber received per second, Acked the
// PUBACKs the publishers received (what a broker that stores messages
// before acknowledging them limits).
func (t Target) FanInQoS1(n, w int, d time.Duration) (Result, error) {
	s, err := t.Dial("fanin1-sub", 0)
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	if err := s.Subscribe("bench/in1/+", 1); err != nil {
		return Result{}, err
	}
	pubs, err := t.dialAll(ids("fanin1-pub", n))
	if err != nil {
		return Result{}, err
	}
	defer CloseAll(pubs...)
	w = max(1, min(w, int(pubs[0].ReceiveMax)))
	until := time.Now().Add(d)
	var received, acked, sent atomic.Int64
	done := make(chan struct{})
	go func() { // subscriber: count and acknowledge
		defer close(done)
		var acks []byte
		_ = s.Frames(until, func(first byte, body []byte) {
			if first>>4 != 3 {
				return
			}
			tl := int(body[0])<<8 | int(body[1])
			acks = appendPuback(acks, s.Level, body[2+tl], body[3+tl])
			if received.Add(1) == int64(n*t.Messages) {
				s.stopReading()
			}
		}, func() error {
			if len(acks) == 0 {
				return nil
			}
			_, err := s.NC.Write(acks)
			acks = acks[:0]
			return err
		})
	}()
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent.Add(t.publishWindowed(p, fmt.Sprintf("bench/in1/%d", i), w, until, d, &acked))
		}()
	}
	wg.Wait()
	<-done
	r := result(sent.Load(), received.Load(), d)
	r.Window, r.Acked = w, acked.Load()
	return r, nil
}
