package simulator

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// The accounting rule, per (publisher, receiver) pair:
//
//   - A receiver expects a publisher's messages from the first one sent
//     after its SUBACK arrived (the broker routes to a subscription before it
//     acknowledges it) until it stops listening.
//   - It stops listening when its link ends, at the last message sent at
//     least Grace before that moment (later ones may legitimately miss it) —
//     unless its session is persistent and both the subscription and the
//     publish are QoS 1 or 2: then the broker queues for it and the range
//     stays open. A device that leaves for good closes its range too.
//   - At the end of the run publishing stops, every open range closes at the
//     publisher's last sequence number, and receivers listen for Drain more.
//     Only then is a message in an expected range and never received lost.
//   - A sequence number seen again is a duplicate; one lower than the
//     highest seen so far, seen for the first time, is out of order.
//
// Expected ranges are known only for publishers in the same process; for
// others (another shard) duplicates and reordering are still counted.
type tracker struct {
	run   uint32
	lo    int
	grace time.Duration
	pubs  []*pubState  // by index-lo; nil for devices that do not publish
	recvs []*recvState // by index-lo; nil for devices that subscribe to nothing

	received, dup, ooo, foreign atomic.Int64
}

// pubState is a publisher's sequence and the send times of its last few
// messages, to find the last one sent before a receiver's link ended.
type pubState struct {
	mu   sync.Mutex
	seq  uint64
	qos  byte
	ring [4]sendMark
	next uint8
}

type sendMark struct {
	seq uint64
	at  int64 // unix nanoseconds
}

// match is a publisher whose topic one of the receiver's filters matches,
// with the highest QoS those filters ask for.
type match struct {
	pub int32 // global index
	qos byte
}

type recvState struct {
	mu      sync.Mutex
	matches []match
	pairs   map[int32]*pair
}

type pair struct {
	seen      []uint64 // bit s set: sequence s received
	max       uint64
	distinct  uint64
	dup, ooo  uint64
	segs      []seg
	keepAlive bool // range survives link loss (persistent session, QoS >= 1 both ways)
}

// seg is an expected range of sequence numbers, from..to inclusive; to is
// meaningless while open.
type seg struct {
	from, to uint64
	open     bool
}

// send assigns the next sequence number and records when it was sent.
func (p *pubState) send(now int64) uint64 {
	p.mu.Lock()
	p.seq++
	s := p.seq
	p.ring[p.next%uint8(len(p.ring))] = sendMark{s, now}
	p.next++
	p.mu.Unlock()
	return s
}

func (p *pubState) current() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// sentBefore returns the highest sequence number sent at or before t. When
// every remembered send is later, it assumes the one before the oldest.
func (p *pubState) sentBefore(t int64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, oldest := uint64(0), p.seq
	found := false
	for _, m := range p.ring {
		if m.seq == 0 {
			continue
		}
		if m.at <= t && m.seq > best {
			best, found = m.seq, true
		}
		if m.seq < oldest {
			oldest = m.seq
		}
	}
	if found {
		return best
	}
	if oldest == 0 {
		return 0
	}
	return oldest - 1
}

func (t *tracker) pub(index int) *pubState {
	i := index - t.lo
	if i < 0 || i >= len(t.pubs) {
		return nil
	}
	return t.pubs[i]
}

// listen opens expected ranges for a receiver whose SUBACK just arrived.
func (t *tracker) listen(r *recvState, persistent bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.matches {
		ps := t.pub(int(m.pub))
		if ps == nil {
			continue
		}
		p := r.pair(m.pub)
		p.keepAlive = persistent && m.qos > 0 && ps.qos > 0
		if n := len(p.segs); n > 0 && p.segs[n-1].open {
			continue // kept open through a reconnect: the session held it
		}
		p.segs = append(p.segs, seg{from: ps.current() + 1, open: true})
	}
}

// pause closes a receiver's open ranges when its link ended at now;
// final closes even those a persistent session would keep.
func (t *tracker) pause(r *recvState, now time.Time, final bool) {
	cut := now.Add(-t.grace).UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.matches {
		ps := t.pub(int(m.pub))
		p := r.pairs[m.pub]
		if ps == nil || p == nil || len(p.segs) == 0 || !p.segs[len(p.segs)-1].open {
			continue
		}
		if p.keepAlive && !final {
			continue
		}
		closeSeg(p, ps.sentBefore(cut))
	}
}

func closeSeg(p *pair, to uint64) {
	s := &p.segs[len(p.segs)-1]
	if to < s.from {
		p.segs = p.segs[:len(p.segs)-1]
		return
	}
	s.to, s.open = to, false
}

// finish closes every open range at its publisher's last sequence number;
// call it when publishing has stopped.
func (t *tracker) finish() {
	for _, r := range t.recvs {
		if r == nil {
			continue
		}
		r.mu.Lock()
		for pub, p := range r.pairs {
			ps := t.pub(int(pub))
			if ps != nil && len(p.segs) > 0 && p.segs[len(p.segs)-1].open {
				closeSeg(p, ps.current())
			}
		}
		r.mu.Unlock()
	}
}

func (r *recvState) pair(pub int32) *pair {
	p := r.pairs[pub]
	if p == nil {
		if r.pairs == nil {
			r.pairs = make(map[int32]*pair, 1)
		}
		p = &pair{}
		r.pairs[pub] = p
	}
	return p
}

// receive accounts one message from device pub with sequence seq and
// reports whether it was a duplicate.
func (t *tracker) receive(r *recvState, pub int32, seq uint64) (dup bool) {
	if seq == 0 {
		return false
	}
	t.received.Add(1)
	r.mu.Lock()
	p := r.pair(pub)
	w := seq / 64
	if w >= uint64(len(p.seen)) {
		if w > 1<<26 { // a corrupt header would otherwise allocate without bound
			r.mu.Unlock()
			return false
		}
		grown := make([]uint64, w+1+w/2)
		copy(grown, p.seen)
		p.seen = grown
	}
	bit := uint64(1) << (seq % 64)
	switch {
	case p.seen[w]&bit != 0:
		p.dup++
		dup = true
	default:
		p.seen[w] |= bit
		p.distinct++
		if seq < p.max {
			p.ooo++
			t.ooo.Add(1)
		} else {
			p.max = seq
		}
	}
	r.mu.Unlock()
	if dup {
		t.dup.Add(1)
	}
	return dup
}

// tally is the final accounting over every pair.
type tally struct {
	Expected, Received, Distinct, Lost, Dup, OutOfOrder int64
}

func (t *tracker) tally() tally {
	var out tally
	for _, r := range t.recvs {
		if r == nil {
			continue
		}
		r.mu.Lock()
		for _, p := range r.pairs {
			out.Distinct += int64(p.distinct)
			out.Received += int64(p.distinct + p.dup)
			out.Dup += int64(p.dup)
			out.OutOfOrder += int64(p.ooo)
			for _, s := range p.segs {
				if s.open || s.to < s.from {
					continue
				}
				n := int64(s.to - s.from + 1)
				out.Expected += n
				out.Lost += n - int64(countBits(p.seen, s.from, s.to))
			}
		}
		r.mu.Unlock()
	}
	return out
}

// countBits counts the set bits of seen in [from, to].
func countBits(seen []uint64, from, to uint64) int {
	n := 0
	for s := from; s <= to; {
		w := s / 64
		if w >= uint64(len(seen)) {
			break
		}
		if s%64 == 0 && s+63 <= to {
			n += bits.OnesCount64(seen[w])
			s += 64
			continue
		}
		if seen[w]&(1<<(s%64)) != 0 {
			n++
		}
		s++
	}
	return n
}
