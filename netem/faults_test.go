package netem

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// pingPong measures n round trips of a 16-byte message device -> broker -> device.
func pingPong(t testing.TB, l tlink, n int) []time.Duration {
	t.Helper()
	msg := make([]byte, 16)
	buf := make([]byte, 16)
	out := make([]time.Duration, 0, n)
	errc := make(chan error, 1)
	go func() { // the broker end echoes
		for range n {
			if _, err := io.ReadFull(l.broker, buf); err != nil {
				errc <- err
				return
			}
			if _, err := l.broker.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, 16)
	for range n {
		t0 := time.Now()
		if _, err := l.device.Write(msg); err != nil {
			t.Fatalf("ping write: %v", err)
		}
		l.device.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(l.device, got); err != nil {
			t.Fatalf("pong read: %v", err)
		}
		out = append(out, time.Since(t0))
	}
	if err := <-errc; err != nil {
		t.Fatalf("echo: %v", err)
	}
	return out
}

// writeResult is what one Write returned.
type writeResult struct {
	n   int
	err error
}

// writeAsync writes b to c on a goroutine of its own and reports the outcome
// on the returned channel. A cleanup closes c and waits for the goroutine, so
// a test that fails before reading the outcome leaves no writer behind; it is
// registered after the link's own cleanups and so runs before them.
func writeAsync(t testing.TB, c net.Conn, b []byte) <-chan writeResult {
	t.Helper()
	res := make(chan writeResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := c.Write(b)
		res <- writeResult{n, err}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return res
}

// writeOutcome waits up to d for the outcome of a writeAsync.
func writeOutcome(t testing.TB, res <-chan writeResult, d time.Duration) writeResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(d):
		t.Fatalf("writer still blocked after %v", d)
		return writeResult{}
	}
}

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestLatencyP50(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     Fault
		added time.Duration // expected round-trip increase at p50
	}{
		{"upstream 50ms", Fault{Kind: Latency, Direction: Upstream, Latency: 50 * time.Millisecond}, 50 * time.Millisecond},
		{"both 30ms", Fault{Kind: Latency, Latency: 30 * time.Millisecond}, 60 * time.Millisecond},
		// Jitter is kept small next to the 10% margin: the median of 41 samples
		// itself wanders by about jitter/5.
		{"downstream 50ms jitter 10ms uniform", Fault{Kind: Latency, Direction: Downstream, Latency: 50 * time.Millisecond,
			Jitter: 10 * time.Millisecond}, 50 * time.Millisecond},
		{"upstream 50ms jitter 5ms normal", Fault{Kind: Latency, Direction: Upstream, Latency: 50 * time.Millisecond,
			Jitter: 5 * time.Millisecond, Distribution: Normal}, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := withUpstream(t)
			rec := events.NewRecorder()
			px := withProxy(t, u.addr(), rec)
			l := dialLink(t, px, u, rec)
			base := p50(pingPong(t, l, 20))
			mustApply(t, px, ByLink(l.id), tc.f)
			got := p50(pingPong(t, l, 41)) - base
			t.Logf("added p50 %v (base %v), want %v ±10%%", got, base, tc.added)
			if d := got - tc.added; d < -tc.added/10 || d > tc.added/10 {
				t.Fatalf("added p50 latency %v, want %v ±10%%", got, tc.added)
			}
		})
	}
}

func TestBandwidthWithin10Percent(t *testing.T) {
	for _, tc := range []struct {
		dir   Direction
		rate  int64
		total int
	}{
		{Upstream, 1 << 20, 3 << 20 / 2},
		{Downstream, 512 << 10, 3 << 19 / 2},
	} {
		t.Run(string(tc.dir), func(t *testing.T) {
			u := withUpstream(t)
			rec := events.NewRecorder()
			px := withProxy(t, u.addr(), rec)
			l := dialLink(t, px, u, rec)
			mustApply(t, px, ByLink(l.id), Fault{Kind: Bandwidth, Direction: tc.dir, Rate: tc.rate})
			w, r := l.ends(tc.dir)
			wres := writeAsync(t, w, make([]byte, tc.total))
			buf := make([]byte, 64<<10)
			r.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := r.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			first := n // the first piece leaves at once: time the rest
			t0 := time.Now()
			got := n
			for got < tc.total {
				n, err := r.Read(buf)
				if err != nil {
					t.Fatalf("read after %d bytes: %v", got, err)
				}
				got += n
			}
			rate := float64(got-first) / time.Since(t0).Seconds()
			// Every byte arrived, so the write must have finished, whole.
			if wr := writeOutcome(t, wres, 5*time.Second); wr.n != tc.total || wr.err != nil {
				t.Fatalf("write: %d of %d bytes, err %v", wr.n, tc.total, wr.err)
			}
			t.Logf("rate %.0f B/s, want %d ±10%%", rate, tc.rate)
			if rate < 0.9*float64(tc.rate) || rate > 1.1*float64(tc.rate) {
				t.Fatalf("rate %.0f B/s, want %d ±10%%", rate, tc.rate)
			}
		})
	}
}

func TestBlackholeKeepsBothSocketsOpen10s(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s; -short")
	}
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	id := mustApply(t, px, ByLink(l.id), Fault{Kind: Blackhole})
	start := time.Now()
	// Both ends write and read at once for 10 s: writes succeed (the proxy
	// keeps reading), reads time out, never EOF and never data.
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 2)
	for _, c := range []net.Conn{l.device, l.broker} {
		go func() {
			c.Write([]byte("into the void"))
			c.SetReadDeadline(start.Add(10 * time.Second))
			n, err := c.Read(make([]byte, 64))
			res <- result{n, err}
		}()
	}
	for range 2 {
		r := <-res
		if r.n != 0 || !isTimeout(r.err) {
			t.Fatalf("read during blackhole: n=%d err=%v, want a timeout with no bytes", r.n, r.err)
		}
	}
	if el := time.Since(start); el < 10*time.Second {
		t.Fatalf("reads ended after %v", el)
	}
	if li := px.Links(); len(li) != 1 || li[0].Discarded != 26 {
		t.Fatalf("links %+v, want one with 26 bytes discarded", li)
	}
	// Still a working connection on both sides once the fault goes.
	if err := px.Remove(id); err != nil {
		t.Fatal(err)
	}
	for _, d := range []Direction{Upstream, Downstream} {
		w, r := l.ends(d)
		if _, err := w.Write([]byte("alive")); err != nil {
			t.Fatalf("%s write after blackhole: %v", d, err)
		}
		if got := readFull(t, r, 5, 5*time.Second); string(got) != "alive" {
			t.Fatalf("%s after blackhole: %q", d, got)
		}
	}
}

func TestBlackholeHoldsFIN(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	id := mustApply(t, px, ByLink(l.id), Fault{Kind: Blackhole, Direction: Upstream})
	l.device.(*net.TCPConn).CloseWrite()
	l.broker.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := l.broker.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("broker during blackhole after device FIN: n=%d err=%v, want timeout", n, err)
	}
	px.Remove(id)
	l.broker.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := l.broker.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("broker after blackhole removed: %v, want EOF", err)
	}
}

func TestStallBlocksSender(t *testing.T) {
	for _, dir := range []Direction{Upstream, Downstream} {
		t.Run(string(dir), func(t *testing.T) {
			u := withUpstream(t)
			rec := events.NewRecorder()
			px := withProxy(t, u.addr(), rec)
			l := dialLink(t, px, u, rec)
			id := mustApply(t, px, ByLink(l.id), Fault{Kind: Stall, Direction: dir})
			w, r := l.ends(dir)
			// Write until a write cannot complete within 500 ms: the kernel
			// buffers between sender and proxy are full. Bounded at 256 MB.
			block := make([]byte, 64<<10)
			sent := 0
			blocked := false
			for sent < 256<<20 {
				w.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
				n, err := w.Write(block)
				sent += n
				if isTimeout(err) {
					blocked = true
					break
				}
				if err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			if !blocked {
				t.Fatalf("sent %d bytes without blocking", sent)
			}
			t.Logf("sender blocked after %d bytes", sent)
			r.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := r.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
				t.Fatalf("receiver during stall: n=%d err=%v", n, err)
			}
			// Ending the stall lets every byte through, none lost.
			px.Remove(id)
			w.SetWriteDeadline(time.Time{})
			readFull(t, r, sent, 20*time.Second)
		})
	}
}

func TestResetSurfacesOnBothEnds(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	mustApply(t, px, ByLink(l.id), Fault{Kind: Reset})
	for name, c := range map[string]net.Conn{"device": l.device, "broker": l.broker} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s read after reset: %v, want ECONNRESET", name, err)
		}
	}
	ev, err := rec.WaitFor(5*time.Second, events.And(events.Is(events.LinkClosed), func(e events.Event) bool { return e.Link == l.id }))
	if err != nil || ev.Cause != events.CauseFault {
		t.Fatalf("link closed event %+v, err %v", ev, err)
	}
}

func TestCloseSendsFINToBothEnds(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	mustApply(t, px, ByGroup("127.0.0.1"), Fault{Kind: Close})
	for name, c := range map[string]net.Conn{"device": l.device, "broker": l.broker} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("%s read after close: %v, want EOF", name, err)
		}
	}
	if f := px.Faults(); len(f) != 0 {
		t.Fatalf("one-shot close still listed: %+v", f)
	}
}

func TestCloseAfterDeliversExactlyN(t *testing.T) {
	for _, tc := range []struct {
		dir  Direction
		n    int64
		sent int
	}{
		{Upstream, 0, 100},
		{Upstream, 1000, 5000},
		{Upstream, 100_000, 300_000}, // cut lands inside a later 32 KB read
		{Downstream, 7, 10},
		{Downstream, 50_000, 200_000},
	} {
		t.Run(string(tc.dir), func(t *testing.T) {
			u := withUpstream(t)
			rec := events.NewRecorder()
			px := withProxy(t, u.addr(), rec)
			l := dialLink(t, px, u, rec)
			mustApply(t, px, ByLink(l.id), Fault{Kind: CloseAfter, Direction: tc.dir, Bytes: tc.n})
			w, r := l.ends(tc.dir)
			payload := bytes.Repeat([]byte("0123456789"), tc.sent/10)
			wres := writeAsync(t, w, payload)
			r.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("read: %v after %d bytes", err, len(got))
			}
			if int64(len(got)) != tc.n || !bytes.Equal(got, payload[:tc.n]) {
				t.Fatalf("got %d bytes, want exactly the first %d", len(got), tc.n)
			}
			// The cut closes the writer's socket too, so the writer must not
			// stay blocked. Whether its write fails depends on timing: the
			// kernel may have taken every byte before the proxy closed (a
			// whole write), or the close resets it mid-write (a short write
			// with ECONNRESET or EPIPE). Either way it handed over at least
			// the bytes that got through.
			wr := writeOutcome(t, wres, 10*time.Second)
			switch {
			case wr.err == nil && wr.n != len(payload):
				t.Fatalf("write returned %d of %d bytes and no error", wr.n, len(payload))
			case wr.err != nil && !errors.Is(wr.err, syscall.ECONNRESET) && !errors.Is(wr.err, syscall.EPIPE):
				t.Fatalf("write after %d bytes: %v, want success or ECONNRESET/EPIPE from the cut", wr.n, wr.err)
			case int64(wr.n) < tc.n:
				t.Fatalf("write handed over %d bytes, but %d got through", wr.n, tc.n)
			}
			t.Logf("writer: %d of %d bytes, err %v", wr.n, len(payload), wr.err)
		})
	}
}

func TestSliceSplitsWrites(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	mustApply(t, px, ByLink(l.id), Fault{Kind: Slice, Direction: Downstream, ChunkSize: 10, ChunkDelay: 20 * time.Millisecond})
	payload := bytes.Repeat([]byte("x"), 100)
	l.broker.Write(payload)
	reads, total := 0, 0
	buf := make([]byte, 1000)
	l.device.SetReadDeadline(time.Now().Add(10 * time.Second))
	t0 := time.Now()
	for total < len(payload) {
		n, err := l.device.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", total, err)
		}
		reads++
		total += n
	}
	// Ten pieces 20 ms apart: at least 180 ms, and (even on a loaded machine)
	// clearly more than one read.
	if el := time.Since(t0); el < 180*time.Millisecond || reads < 5 || total != 100 {
		t.Fatalf("%d bytes in %d reads over %v; want 100 in >=5 reads over >=180ms", total, reads, el)
	}
}
