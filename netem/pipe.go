package netem

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// bufSize is the read buffer of one direction: large enough for bulk copies
// at loopback speed, small enough that 10,000 links fit in memory.
const bufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// pipe forwards one direction of a link. Its reader goroutine (run) owns src;
// while the pipe has no faults it is a plain read-write loop. Faults that hold
// bytes for a while (latency, bandwidth, slice) start a delivery goroutine
// that owns dst from then on, so reading goes on while bytes wait.
type pipe struct {
	l   *link
	dir Direction
	src *net.TCPConn                // owned by the reader; replaced only by it (nat_rebind, downstream)
	dst atomic.Pointer[net.TCPConn] // replaced by nat_rebind (upstream) while writers run

	state atomic.Pointer[pipeState] // nil when no fault is attached: the fast path

	mu     sync.Mutex // guards faults; held while state is rebuilt
	faults []*pipeFault

	delivered atomic.Int64 // bytes written to dst
	discarded atomic.Int64 // bytes a blackhole swallowed
	counts    counters     // what the packet and NAT faults did

	// Owned by the reader goroutine: framing and the packet decisions.
	fr     framer
	units  []unit
	prng   *rand.Rand // loss and duplication draws, apart from jitter so runs repeat; made on first use
	seed   uint64     // with stream, seeds prng and rorng (a link without packet faults never needs them)
	stream uint64
	geBad  bool // Gilbert-Elliott: in the bad state
	resync bool // src or dst changed (nat_rebind): refresh the raw conns

	wconn *net.TCPConn    // the connection wc was made from (reader-owned)
	wc    syscall.RawConn // dst for splice; replaced when dst changes

	wake    atomic.Bool                 // nat_rebind woke the reader with a read deadline
	swapSrc atomic.Pointer[net.TCPConn] // nat_rebind: the new src for the downstream reader

	// Owned by the reader goroutine.
	q chan chunk // to the delivery goroutine; nil until a timing fault first needs it

	// Owned by whichever goroutine delivers (the reader until q exists).
	rng      *rand.Rand
	rorng    *rand.Rand    // reorder shuffles; made on first use
	held     []chunk       // reorder: packets held back
	nextFree time.Time     // bandwidth: when the next byte may leave
	tokens   float64       // bandwidth with burst: bytes the bucket holds
	tokAt    time.Time     // when tokens was last topped up
	late     time.Duration // latency: head start that offsets late timer wake-ups
}

// pipeFault is one fault attached to one direction of one link.
type pipeFault struct {
	id        string
	f         Fault
	remaining atomic.Int64 // CloseAfter: bytes still allowed through
}

// pipeState is the combined effect of a pipe's faults, rebuilt whenever they
// change and read without locks by the forwarding goroutines.
type pipeState struct {
	blackhole bool
	stall     bool
	timing    bool // some fault needs the delivery goroutine
	latency   time.Duration
	jitter    time.Duration
	dist      Distribution
	rate      int64 // bytes/s; 0 = unlimited
	burst     int64 // token bucket size; 0 = plain pacing
	packets   bool  // some fault acts on whole packets: frame the stream
	lossProb  float64
	geP, geR  float64 // Gilbert-Elliott transition probabilities; geP 0 = random loss only
	geBad     float64 // loss probability in the bad state
	geGood    float64 // loss probability in the good state
	lossMask  uint16  // packet types lost (0 = all)
	dupProb   float64
	dupMask   uint16
	window    int // reorder window; < 2 = no reordering
	hold      time.Duration
	reoMask   uint16
	natIdle   time.Duration
	chunk     int // slice: piece size; 0 = no slicing
	pause     time.Duration
	limits    []*pipeFault  // CloseAfter faults
	changed   chan struct{} // closed when this state is replaced
}

// chunk is one read, on its way to the delivery goroutine.
type chunk struct {
	data []byte
	at   time.Time // when it was read: latency counts from here
	zu   float64   // uniform sample in [-1, 1) for jitter
	zn   float64   // standard normal sample for jitter
	eof  bool      // src sent FIN: pass it on after the bytes before it
	pkt  bool      // a whole packet a reorder fault may move
	// silent ends the delivery goroutine at eof without passing the FIN on.
	silent bool
}

func newPipe(l *link, dir Direction, src, dst *net.TCPConn, seed, stream uint64) *pipe {
	p := &pipe{l: l, dir: dir, src: src, rng: rand.New(rand.NewPCG(seed, stream)), seed: seed, stream: stream}
	p.dst.Store(dst)
	return p
}

// add attaches a fault and switches the pipe's behaviour at once, even while
// its goroutines are blocked.
func (p *pipe) add(id string, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pf := &pipeFault{id: id, f: f}
	pf.remaining.Store(f.Bytes)
	p.faults = append(p.faults, pf)
	p.rebuild()
}

// remove detaches a fault by ID.
func (p *pipe) remove(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.faults[:0]
	for _, pf := range p.faults {
		if pf.id != id {
			kept = append(kept, pf)
		}
	}
	clear(p.faults[len(kept):])
	p.faults = kept
	p.rebuild()
}

// rebuild publishes the combined state and wakes goroutines waiting on the
// old one. Latencies and jitters add up; the lowest rate and smallest slice win.
func (p *pipe) rebuild() {
	var st *pipeState
	if len(p.faults) > 0 {
		st = &pipeState{changed: make(chan struct{})}
		for _, pf := range p.faults {
			f := pf.f
			st.timing = st.timing || f.Kind.timing()
			switch f.Kind {
			case Blackhole:
				st.blackhole = true
			case Stall:
				st.stall = true
			case Latency:
				st.latency += f.Latency
				st.jitter += f.Jitter
				st.dist = f.Distribution
			case Bandwidth:
				if st.rate == 0 || f.Rate < st.rate {
					st.rate, st.burst = f.Rate, f.Burst
				}
			case Loss:
				st.packets = true
				m, _ := packetMask(f.Packets) // checked by Validate
				st.lossMask = m
				if f.P > 0 {
					st.geP, st.geR, st.geBad, st.geGood = f.P, f.R, f.LossBad, f.LossGood
					if f.LossBad == 0 && f.LossGood == 0 {
						st.geBad = 1
					}
				} else {
					st.lossProb = 1 - (1-st.lossProb)*(1-f.Probability)
				}
			case Duplicate:
				st.packets = true
				st.dupMask, _ = packetMask(f.Packets)
				st.dupProb = 1 - (1-st.dupProb)*(1-f.Probability)
			case Reorder:
				st.packets = true
				st.reoMask, _ = packetMask(f.Packets)
				st.window = max(st.window, f.Window)
				st.hold = max(st.hold, cmp.Or(f.Hold, DefaultHold))
			case NATIdle:
				st.natIdle = f.Idle
			case Slice:
				if st.chunk == 0 || f.ChunkSize < st.chunk {
					st.chunk = f.ChunkSize
				}
				st.pause = max(st.pause, f.ChunkDelay)
			case CloseAfter:
				st.limits = append(st.limits, pf)
			}
		}
	}
	if old := p.state.Swap(st); old != nil {
		close(old.changed)
	}
}

// run is the reader goroutine. An idle link holds no read buffer: the
// goroutine waits for the socket to turn readable first and takes a pooled
// buffer only for as long as bytes keep coming, which keeps 10,000 idle links
// to a few KiB each.
func (p *pipe) run() {
	defer p.l.exit()
	var rc syscall.RawConn
	p.resync = true
	useSplice := true
	for {
		if p.resync {
			p.resync = false
			var err error
			if rc, err = p.src.SyscallConn(); err == nil {
				_, err = p.dstRaw()
			}
			if err != nil {
				p.readEnd(err)
				return
			}
		}
		if useSplice && p.state.Load() == nil && p.q == nil && !p.l.natGone.Load() && p.fr.mode != frameMQTT {
			more, err := p.spliceBurst(rc)
			if err == nil && !more {
				return
			}
			if err != nil {
				useSplice = false // copy from now on
			}
			continue
		}
		if err := waitReadable(rc); err != nil {
			if p.readEnd(err) {
				continue
			}
			return
		}
		if st := p.state.Load(); st != nil && st.stall && !st.blackhole {
			// Stalled: take nothing in at all, so the bytes (and a FIN)
			// stay in the kernel and backpressure reaches the sender.
			if !p.await(st) {
				return
			}
			continue
		}
		if !p.drain() {
			return
		}
	}
}

// drain reads while a full buffer suggests more is waiting, and returns
// false once the pipe is finished.
func (p *pipe) drain() bool {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := p.src.Read(buf)
		if n > 0 && !p.forward(buf[:n]) {
			return false
		}
		if err != nil {
			return p.readEnd(err)
		}
		if n < len(buf) {
			return true
		}
	}
}

// waitReadable blocks in the runtime's poller until fd has bytes, a FIN or an
// error to report, without reading anything.
func waitReadable(rc syscall.RawConn) error {
	var b [1]byte
	err := rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
	if err != nil {
		return fmt.Errorf("wait for readable socket: %w", err)
	}
	return nil
}

// forward passes one read on according to the current faults. It returns
// false when the link is finished.
func (p *pipe) forward(b []byte) bool {
	if p.l.natGone.Load() {
		p.counts.natDropped.Add(1) // the mapping is gone: the bytes go nowhere
		p.discarded.Add(int64(len(b)))
		return true
	}
	for {
		st := p.state.Load()
		if st != nil && st.natIdle > 0 {
			p.l.lastActive.Store(time.Now().UnixNano())
		}
		if (st == nil || !st.packets) && p.fr.mode != frameUnsynced {
			// Packet faults are gone: pass on a packet cut in two, and stop
			// following boundaries (framing starts afresh if they come back).
			if pre := p.fr.flush(); len(pre) > 0 {
				b = append(pre, b...)
			}
		}
		if st == nil && p.q == nil {
			return p.write(nil, b)
		}
		if st != nil {
			if st.blackhole {
				p.discarded.Add(int64(len(b)))
				return true
			}
			if st.stall {
				// The read that was in flight when the stall began is held, not
				// lost: it goes on when the stall ends.
				if !p.await(st) {
					return false
				}
				continue
			}
		}
		if st != nil && st.packets {
			return p.forwardPackets(st, b)
		}
		return p.pass(st, b, false)
	}
}

// await blocks until st is replaced or the link is torn down.
func (p *pipe) await(st *pipeState) bool {
	select {
	case <-st.changed:
		return true
	case <-p.l.done:
		return false
	}
}

// readEnd handles the end of src: a FIN is passed on (after a blackhole or
// stall lets it through: a half-open link loses FINs too), anything else
// resets the whole link so both peers learn of it.
// It returns true when the pipe goes on: nat_rebind woke the reader with a
// read deadline to move it to the new broker connection.
func (p *pipe) readEnd(err error) bool {
	if p.l.aborted() {
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && p.wake.Swap(false) {
		if n := p.swapSrc.Swap(nil); n != nil {
			p.src = n // the old broker connection is left unread: half-open at the broker
		} else {
			p.src.SetReadDeadline(time.Time{})
		}
		p.resync = true
		return true
	}
	if !errors.Is(err, io.EOF) {
		p.l.abort(true, events.CauseIOError, string(p.dir)+" read: "+err.Error())
		return false
	}
	if p.l.natGone.Load() {
		// A NAT that forgot the link passes no FIN either: the peer stays
		// half-open. The link ends when the other side gives up too.
		if p.q != nil {
			p.enqueue(chunk{eof: true, silent: true})
		}
		return false
	}
	if pre := p.fr.flush(); len(pre) > 0 && !p.pass(p.state.Load(), pre, false) {
		return false
	}
	for {
		st := p.state.Load()
		if st == nil || (!st.blackhole && !st.stall) {
			break
		}
		if !p.await(st) {
			return false
		}
	}
	if p.q != nil {
		p.enqueue(chunk{eof: true})
		return false
	}
	p.dst.Load().CloseWrite()
	return false
}

// write sends b to dst, honouring CloseAfter budgets (closeafter.go).
func (p *pipe) write(st *pipeState, b []byte) bool {
	b, cut := st.budget(b)
	if len(b) > 0 {
		n, err := p.dst.Load().Write(b)
		p.delivered.Add(int64(n))
		if err != nil {
			if !p.l.aborted() {
				p.l.abort(true, events.CauseIOError, string(p.dir)+" write: "+err.Error())
			}
			return false
		}
	}
	if cut != nil {
		p.l.abort(false, events.CauseFault, "close_after "+cut.id)
		return false
	}
	return true
}

// dstRaw returns the raw connection of the current dst for splice, made anew
// when a nat_rebind replaced dst: bytes read in the same wake-up as the
// rebind must go to the new connection, not wait for the reader to notice
// its read deadline.
func (p *pipe) dstRaw() (syscall.RawConn, error) {
	if d := p.dst.Load(); d != p.wconn {
		wc, err := d.SyscallConn()
		if err != nil {
			return nil, err
		}
		p.wconn, p.wc = d, wc
	}
	return p.wc, nil
}
