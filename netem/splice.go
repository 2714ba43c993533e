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

// spliceBurst waits for src to have bytes and moves them to dst, for as long
// as the pipe has no faults. It holds a kernel pipe only while bytes are
// there: on EAGAIN the pipe goes back to the pool before the goroutine parks.
// Waiting and moving are one system call each way (no separate readiness
// probe). It returns true when a fault appeared (the caller takes the copy
// path), false when the link is finished, and errSpliceUnsupported when the
// caller should copy instead.
func (p *pipe) spliceBurst(src syscall.RawConn) (bool, error) {
	var kp kpipe
	have := false // kp is ours
	inPipe := 0   // bytes in kp not yet written to dst
	defer func() {
		switch {
		case !have:
		case inPipe == 0:
			p.l.p.putPipe(kp)
		default:
			kp.close() // never reuse a pipe with someone else's bytes in it
		}
	}()
	for {
		var n int64
		var serr error
		faulted := false
		rerr := src.Read(func(fd uintptr) bool {
			if p.state.Load() != nil {
				faulted = true
				return true
			}
			if !have {
				var err error
				if kp, err = p.l.p.getPipe(); err != nil {
					serr = errSpliceUnsupported
					return true
				}
				have = true
			}
			for {
				n, serr = syscall.Splice(int(fd), nil, kp.w, nil, spliceMax, spliceMove|spliceNonblock)
				if serr != syscall.EINTR {
					break
				}
			}
			if serr == syscall.EAGAIN {
				// Nothing there: wait for bytes without holding a pipe.
				p.l.p.putPipe(kp)
				have, serr = false, nil
				return false
			}
			return true
		})
		switch {
		case faulted:
			return true, nil
		case rerr != nil:
			return p.readEnd(rerr), nil
		case serr == errSpliceUnsupported || serr == syscall.EINVAL || serr == syscall.ENOSYS:
			return true, errSpliceUnsupported
		case serr != nil:
			p.readEnd(serr)
			return false, nil
		case n == 0: // FIN
			p.readEnd(io.EOF)
			return false, nil
		}
		inPipe = int(n)
		dst, err := p.dstRaw()
		if err != nil {
			p.l.abort(true, events.CauseIOError, string(p.dir)+" write: "+err.Error())
			return false, nil
		}
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
	}
}
