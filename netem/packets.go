package netem

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// counters is what the packet and NAT faults did to one direction.
type counters struct {
	packets    atomic.Int64 // units (packets, or raw reads) the packet faults looked at
	dropped    atomic.Int64
	duplicated atomic.Int64
	reordered  atomic.Int64
	natDropped atomic.Int64 // reads a forgotten NAT mapping swallowed
}

// Counts is what the packet and NAT faults did to one direction of a link.
type Counts struct {
	Packets    int64 `json:"packets"`     // packets (or raw reads) the loss, duplicate and reorder faults looked at
	Dropped    int64 `json:"dropped"`     // lost by a loss fault
	Duplicated int64 `json:"duplicated"`  // sent twice by a duplicate fault
	Reordered  int64 `json:"reordered"`   // sent in another place than they came by a reorder fault
	NATDropped int64 `json:"nat_dropped"` // reads swallowed after a NAT forgot the link
}

func (c *counters) snapshot() Counts {
	return Counts{Packets: c.packets.Load(), Dropped: c.dropped.Load(), Duplicated: c.duplicated.Load(),
		Reordered: c.reordered.Load(), NATDropped: c.natDropped.Load()}
}

// Add sums two Counts.
func (c Counts) Add(o Counts) Counts {
	return Counts{Packets: c.Packets + o.Packets, Dropped: c.Dropped + o.Dropped, Duplicated: c.Duplicated + o.Duplicated,
		Reordered: c.Reordered + o.Reordered, NATDropped: c.NATDropped + o.NATDropped}
}

// Zero says whether no fault counted anything.
func (c Counts) Zero() bool { return c == Counts{} }

// applies says whether a fault limited to the packet types in mask acts on u.
// Raw reads (type 0) are acted on only by faults not limited to types.
func applies(mask uint16, u unit) bool {
	if mask == 0 {
		return true
	}
	return u.typ != 0 && mask&(1<<u.typ) != 0
}

// forwardPackets cuts b into packets and decides for each, with the pipe's
// seeded generator, whether it is lost, sent twice, or may be reordered. The
// draws depend only on the sequence of packets, never on how reads cut the
// stream, so a run with the same seed and traffic makes the same decisions.
func (p *pipe) forwardPackets(st *pipeState, b []byte) bool {
	if p.prng == nil {
		p.prng = rand.New(rand.NewPCG(p.seed^0x9e3779b97f4a7c15, p.stream))
	}
	units, base := p.fr.split(b, p.units[:0])
	defer func() {
		clear(units)
		p.units = units[:0]
	}()
	// Packets that go on unchanged and back to back leave in one write (or
	// one queued chunk): a read of a hundred small PUBLISHes costs one
	// system call, as on the unfaulted path, not a hundred.
	from, to := 0, 0 // the run base[from:to] waiting to go
	flush := func() bool {
		if to == from {
			return true
		}
		ok := p.pass(st, base[from:to], false)
		from = to
		return ok
	}
	for _, u := range units {
		p.counts.packets.Add(1)
		if (st.lossProb > 0 || st.geP > 0) && applies(st.lossMask, u) && p.lose(st) {
			p.counts.dropped.Add(1)
			if !flush() {
				return false
			}
			from, to = u.off+len(u.b), u.off+len(u.b)
			continue
		}
		dup := st.dupProb > 0 && applies(st.dupMask, u) && p.prng.Float64() < st.dupProb
		if st.window > 1 && applies(st.reoMask, u) {
			// A packet the reorder window may move travels alone.
			if !flush() {
				return false
			}
			for range 1 + btoi(dup) {
				if !p.pass(st, u.b, true) {
					return false
				}
			}
			if dup {
				p.counts.duplicated.Add(1)
			}
			from, to = u.off+len(u.b), u.off+len(u.b)
			continue
		}
		to = u.off + len(u.b)
		if dup {
			p.counts.duplicated.Add(1)
			// Send the run up to and including the packet, then start the
			// next run with the packet again.
			if !flush() {
				return false
			}
			from = u.off
		}
	}
	return flush()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lose draws one loss decision: plain random loss, or the Gilbert-Elliott
// two-state chain (move between the states first, then lose with the
// state's probability).
func (p *pipe) lose(st *pipeState) bool {
	if st.geP > 0 {
		if p.geBad {
			if p.prng.Float64() < st.geR {
				p.geBad = false
			}
		} else if p.prng.Float64() < st.geP {
			p.geBad = true
		}
		pl := st.geGood
		if p.geBad {
			pl = st.geBad
		}
		return p.prng.Float64() < pl
	}
	return p.prng.Float64() < st.lossProb
}

// pass writes b now, or queues it for the delivery goroutine when a timing
// fault holds bytes (or once that goroutine exists, to keep order).
func (p *pipe) pass(st *pipeState, b []byte, reorderable bool) bool {
	if p.q != nil || (st != nil && st.timing) {
		return p.enqueue(chunk{data: append([]byte(nil), b...), at: time.Now(),
			zu: 2*p.rng.Float64() - 1, zn: p.rng.NormFloat64(), pkt: reorderable})
	}
	return p.write(st, b)
}

// hold takes a packet into the reorder window, and sends the window on in a
// shuffled order once it is full. Owned by the delivery goroutine.
func (p *pipe) hold(c chunk, st *pipeState) bool {
	p.held = append(p.held, c)
	if len(p.held) >= st.window {
		return p.flushHeld()
	}
	return true
}

// flushHeld sends the held packets in a seeded random order and counts every
// packet that leaves in another place than it came.
func (p *pipe) flushHeld() bool {
	if len(p.held) == 0 {
		return true
	}
	held := p.held
	p.held = nil
	if p.rorng == nil {
		p.rorng = rand.New(rand.NewPCG(p.seed^0x6a09e667f3bcc909, p.stream))
	}
	perm := p.rorng.Perm(len(held))
	for i, j := range perm {
		if i != j {
			p.counts.reordered.Add(1)
		}
		if !p.deliver(held[j]) {
			return false
		}
	}
	return true
}
