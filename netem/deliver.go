package netem

import "time"

// queueLen bounds the chunks waiting in a pipe's delivery goroutine; beyond
// it the reader blocks, so a slow fault still pushes back on the sender.
const queueLen = 16

// enqueue hands a chunk to the delivery goroutine, starting it on first use.
// Once started it delivers every later chunk too, so order is kept.
func (p *pipe) enqueue(c chunk) bool {
	if p.q == nil {
		p.q = make(chan chunk, queueLen)
		p.l.running.Add(1)
		p.l.p.mu.Lock()
		p.l.p.goroutine(p.deliverLoop)
		p.l.p.mu.Unlock()
	}
	select {
	case p.q <- c:
		return true
	case <-p.l.done:
		return false
	}
}

// deliverLoop is the delivery goroutine: it owns dst once started. A
// reorder fault's window lives here: packets are held until the window is
// full or the oldest has waited the fault's hold, then sent shuffled.
func (p *pipe) deliverLoop() {
	defer p.l.exit()
	holdT := time.NewTimer(time.Hour)
	holdT.Stop()
	defer holdT.Stop()
	for {
		if len(p.q) == 0 && len(p.held) == 0 {
			p.nextFree = time.Time{} // idle: no catch-up credit for the next bytes
		}
		var holdC <-chan time.Time
		if len(p.held) > 0 {
			holdC = holdT.C
		}
		select {
		case c := <-p.q:
			if c.eof {
				if !c.silent && p.flushHeld() {
					p.dst.Load().CloseWrite()
				}
				return
			}
			st := p.state.Load()
			if c.pkt && st != nil && st.window > 1 {
				first := len(p.held) == 0
				if !p.hold(c, st) {
					return
				}
				if first && len(p.held) > 0 {
					holdT.Reset(max(time.Until(c.at.Add(st.hold)), 0))
				}
				continue
			}
			// A packet that may not move (or the fault is gone) lets the held ones go first.
			if !p.flushHeld() || !p.deliver(c) {
				return
			}
		case <-holdC:
			if !p.flushHeld() {
				return
			}
		case <-p.l.done:
			return
		}
	}
}

// deliver waits out the chunk's latency, then writes it in slices and at the
// rate the current faults allow. A fault change while it waits is taken into
// account at once (removing a latency releases waiting bytes).
func (p *pipe) deliver(c chunk) bool {
	for {
		st := p.state.Load()
		due := c.at.Add(st.delay(c))
		wait := time.Until(due)
		if wait <= 0 {
			break
		}
		var changed <-chan struct{}
		if st != nil {
			changed = st.changed
		}
		// Wake early by the lateness seen lately: on a busy machine timers
		// fire late, and the delay a peer sees should still be the setting.
		t := time.NewTimer(max(wait-p.late, 0))
		select {
		case <-t.C:
			// Waking at due-late+x for a scheduler delay x, the error is
			// x-late: late converges to x.
			p.late += time.Since(due) / 4
			p.late = min(max(p.late, 0), maxLate)
			t.Stop()
			return p.send(c.data)
		case <-changed:
		case <-p.l.done:
			t.Stop()
			return false
		}
		t.Stop()
	}
	return p.send(c.data)
}

// maxLate bounds the head start a latency timer takes.
const maxLate = 5 * time.Millisecond

// send writes b in slices and at the rate the current faults allow.
func (p *pipe) send(b []byte) bool {
	for len(b) > 0 {
		st := p.state.Load()
		n := st.pieceLen(len(b))
		if !p.pace(st, n) {
			return false
		}
		if !p.write(st, b[:n]) {
			return false
		}
		p.spend(st, n)
		b = b[n:]
		if len(b) > 0 && !p.sleep(st.slicePause()) {
			return false
		}
	}
	return true
}

// sleep waits d or until the link is torn down.
func (p *pipe) sleep(d time.Duration) bool {
	if d <= 0 {
		return !p.l.aborted()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.l.done:
		return false
	}
}
