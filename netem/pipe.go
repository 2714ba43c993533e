package netem

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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
	l        *link
	dir      Direction
	src, dst *net.TCPConn

	state atomic.Pointer[pipeState] // nil when no fault is attached: the fast path

	mu     sync.Mutex // guards faults; held while state is rebuilt
	faults []*pipeFault

	delivered atomic.Int64 // bytes written to dst
	discarded atomic.Int64 // bytes a blackhole swallowed

	// Owned by the reader goroutine.
	q chan chunk // to the delivery goroutine; nil until a timing fault first needs it

	// Owned by whichever goroutine delivers (the reader until q exists).
	rng      *rand.Rand
	nextFree time.Time     // bandwidth: when the next byte may leave
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
	chunk     int   // slice: piece size; 0 = no slicing
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
}

func newPipe(l *link, dir Direction, src, dst *net.TCPConn, rng *rand.Rand) *pipe {
	return &pipe{l: l, dir: dir, src: src, dst: dst, rng: rng}
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
					st.rate = f.Rate
				}
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
	rc, err := p.src.SyscallConn()
	if err != nil {
		p.readEnd(err)
		return
	}
	wc, err := p.dst.SyscallConn()
	if err != nil {
		p.readEnd(err)
		return
	}
	useSplice := true
	for {
		if useSplice && p.state.Load() == nil && p.q == nil {
			more, err := p.spliceBurst(rc, wc)
			if err == nil && !more {
				return
			}
			if err != nil {
				useSplice = false // copy from now on
			}
			continue
		}
		if err := waitReadable(rc); err != nil {
			p.readEnd(err)
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
			p.readEnd(err)
			return false
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
	for {
		st := p.state.Load()
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
		if p.q != nil || st.timing {
			return p.enqueue(chunk{data: append([]byte(nil), b...), at: time.Now(),
				zu: 2*p.rng.Float64() - 1, zn: p.rng.NormFloat64()})
		}
		return p.write(st, b)
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
func (p *pipe) readEnd(err error) {
	if p.l.aborted() {
		return
	}
	if !errors.Is(err, io.EOF) {
		p.l.abort(true, events.CauseIOError, string(p.dir)+" read: "+err.Error())
		return
	}
	for {
		st := p.state.Load()
		if st == nil || (!st.blackhole && !st.stall) {
			break
		}
		if !p.await(st) {
			return
		}
	}
	if p.q != nil {
		p.enqueue(chunk{eof: true})
		return
	}
	p.dst.CloseWrite()
}

// write sends b to dst, honouring CloseAfter budgets (closeafter.go).
func (p *pipe) write(st *pipeState, b []byte) bool {
	b, cut := st.budget(b)
	if len(b) > 0 {
		n, err := p.dst.Write(b)
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
