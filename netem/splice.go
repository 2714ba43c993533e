package netem

import (
	"errors"
	"io"
	"syscall"

	"github.com/mqttfleet/mqttfleet/events"
)

// The fast path moves bytes socket -> pipe -> socket with splice(2), so an
// unfaulted link costs the proxy no copies through user space. A pipe is held
// only while bytes flow; idle links hold none (each pipe is two files, and
// files are the scarce resource at 10,000 links).

const (
	spliceMove     = 0x1 // SPLICE_F_MOVE
	spliceNonblock = 0x2 // SPLICE_F_NONBLOCK
	spliceMax      = 1 << 20
	pipePoolSize   = 64   // idle pipes a proxy keeps for reuse
	fSetPipeSize   = 1031 // F_SETPIPE_SZ
	fGetPipeSize   = 1032 // F_GETPIPE_SZ
	pipeSize       = 1 << 20
)

// kpipe is a kernel pipe used as the splice buffer.
type kpipe struct {
	r, w int
	size int // capacity in bytes
}

func (p *Proxy) getPipe() (kpipe, error) {
	select {
	case kp := <-p.pipes:
		return kp, nil
	default:
	}
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return kpipe{}, err
	}
	// A larger pipe moves more per splice call; where the kernel refuses,
	// the default 64 KiB still works.
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[1]), fSetPipeSize, pipeSize)
	size, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[1]), fGetPipeSize, 0)
	if errno != 0 {
		size = 4096 // the smallest a pipe can be
	}
	return kpipe{fds[0], fds[1], int(size)}, nil
}

// putPipe keeps an empty pipe for reuse, or closes it.
func (p *Proxy) putPipe(kp kpipe) {
	select {
	case p.pipes <- kp:
	default:
		kp.close()
	}
}

func (kp kpipe) close() {
	syscall.Close(kp.r)
	syscall.Close(kp.w)
}

// closePipes closes the pooled pipes; called once every pipe user has ended.
func (p *Proxy) closePipes() {
	for {
		select {
		case kp := <-p.pipes:
			kp.close()
		default:
			return
		}
	}
}

// errSpliceUnsupported means the kernel or socket cannot splice: use the copy path.
var errSpliceUnsupported = errors.New("splice unsupported")

// spliceBurst moves what src has to offer to dst while the pipe has no
// faults. It returns (true, nil) when src has nothing more for now or a fault
// appeared, (false, nil) when the link is finished, and errSpliceUnsupported
// when the caller should copy instead.
func (p *pipe) spliceBurst(src, dst syscall.RawConn) (bool, error) {
	kp, err := p.l.p.getPipe()
	if err != nil {
		return true, errSpliceUnsupported
	}
	inPipe := 0 // bytes in kp not yet written to dst
	defer func() {
		if inPipe == 0 {
			p.l.p.putPipe(kp)
		} else {
			kp.close() // never reuse a pipe with someone else's bytes in it
		}
	}()
	for p.state.Load() == nil {
		var n int64
		var serr error
		moved := false
		rerr := src.Read(func(fd uintptr) bool {
			n, serr = syscall.Splice(int(fd), nil, kp.w, nil, spliceMax, spliceMove|spliceNonblock)
			if serr == syscall.EINTR {
				return false
			}
			if serr == syscall.EAGAIN {
				// Nothing more now: end the burst rather than hold the pipe.
				serr = nil
				return true
			}
			moved = true
			return true
		})
		switch {
		case rerr != nil:
			p.readEnd(rerr)
			return false, nil
		case serr == syscall.EINVAL || serr == syscall.ENOSYS:
			return true, errSpliceUnsupported
		case serr != nil:
			p.readEnd(serr)
			return false, nil
		case !moved:
			return true, nil
		case n == 0: // FIN
			p.readEnd(io.EOF)
			return false, nil
		}
		inPipe = int(n)
		for inPipe > 0 {
			var m int64
			var werr error
			err := dst.Write(func(fd uintptr) bool {
				m, werr = syscall.Splice(kp.r, nil, int(fd), nil, inPipe, spliceMove|spliceNonblock)
				return werr != syscall.EAGAIN && werr != syscall.EINTR
			})
			if err == nil {
				err = werr
			}
			if err != nil {
				if !p.l.aborted() {
					p.l.abort(true, events.CauseIOError, string(p.dir)+" write: "+err.Error())
				}
				return false, nil
			}
			inPipe -= int(m)
			p.delivered.Add(m)
		}
		if int(n) < kp.size {
			// The socket gave less than the pipe holds: it is most likely
			// empty, and asking again would only cost a syscall for EAGAIN.
			return true, nil
		}
	}
	return true, nil
}
