package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func needKernel(t *testing.T) {
	t.Helper()
	if err := Check(); err != nil {
		t.Skip(err)
	}
}

// pair is two namespaces made for the test and a veth between them: the
// "broker" side (host end) and the "device" side. Nothing in the test's own
// namespace changes.
type pair struct {
	broker, device *Namespace
	veth           *Veth
}

func withPair(t *testing.T) pair {
	t.Helper()
	needKernel(t)
	ctx := context.Background()
	b, err := NewNamespace(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(ctx) })
	d, err := NewNamespace(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(ctx) })
	v, err := NewVeth(ctx, b, d, netip.MustParsePrefix("10.213.7.4/30"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	return pair{broker: b, device: d, veth: v}
}

// connect listens on the broker side and dials from the device side; it
// returns (device end, broker end).
func (p pair) connect(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	var ln net.Listener
	if err := p.broker.Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(p.veth.HostAddr.String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dc net.Conn
	if err := p.device.Do(func() (err error) {
		dc, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	bc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Close() })
	return dc, bc
}

func rtt(t *testing.T, a, b net.Conn) time.Duration {
	t.Helper()
	t0 := time.Now()
	a.Write([]byte("ping"))
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("pong"))
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(a, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	return time.Since(t0)
}

// isTimeout reports whether err is a deadline expiring, and not a reset, an
// EOF or any other way for a read to end with no bytes.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func TestVethCarriesTrafficBetweenNamespaces(t *testing.T) {
	p := withPair(t)
	d, b := p.connect(t)
	if got := rtt(t, d, b); got > time.Second {
		t.Fatalf("round trip %v", got)
	}
	if d.LocalAddr().(*net.TCPAddr).IP.String() != p.veth.NsAddr.String() {
		t.Fatalf("device side address %v, want %v", d.LocalAddr(), p.veth.NsAddr)
	}
}

// writeUntilBlocked writes until one write cannot finish within 500 ms and
// returns how much went out; it fails after 256 MiB.
func writeUntilBlocked(t *testing.T, c net.Conn) int {
	t.Helper()
	block := make([]byte, 64<<10)
	sent := 0
	for sent < 256<<20 {
		c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Write(block)
		sent += n
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return sent
		}
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	t.Fatalf("wrote %d bytes without blocking", sent)
	return 0
}

func TestDropMakesWriterBlockAndReaderSeeNothing(t *testing.T) {
	p := withPair(t)
	ctx := context.Background()
	d, b := p.connect(t)
	rtt(t, d, b)
	drops := NewDrops(p.device.Target(), "test")
	t.Cleanup(func() { drops.Close(ctx) })
	if err := drops.Peer(ctx, p.veth.HostAddr, 0); err != nil {
		t.Fatal(err)
	}
	sent := writeUntilBlocked(t, d)
	t.Logf("device blocked after %d bytes", sent)
	b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := b.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("broker side read %d bytes (err %v) through a DROP, want a timeout with no bytes", n, err)
	}
	rules, err := drops.List(ctx)
	if err != nil || len(rules) != 2 {
		t.Fatalf("rules %q, err %v", rules, err)
	}
	if err := drops.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rules, _ := drops.List(ctx); len(rules) != 0 {
		t.Fatalf("rules left after Close: %q", rules)
	}
}

// skipWithoutNetem skips when the kernel has no netem qdisc.
func skipWithoutNetem(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrNetemUnsupported) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestNetemDelayAddsRoundTrip(t *testing.T) {
	p := withPair(t)
	ctx := context.Background()
	d, b := p.connect(t)
	var base []time.Duration
	for range 10 {
		base = append(base, rtt(t, d, b))
	}
	err := SetNetem(ctx, p.device.Target(), p.veth.NsIf, Netem{Delay: 50 * time.Millisecond})
	skipWithoutNetem(t, err)
	t.Cleanup(func() { ClearNetem(ctx, p.device.Target(), p.veth.NsIf) })
	var slow []time.Duration
	for range 10 {
		slow = append(slow, rtt(t, d, b))
	}
	slices.Sort(base)
	slices.Sort(slow)
	if added := slow[5] - base[5]; added < 50*time.Millisecond {
		t.Fatalf("netem delay 50ms added %v to the median round trip", added)
	}
}

func TestNetemFullLossBlocksWriter(t *testing.T) {
	p := withPair(t)
	ctx := context.Background()
	d, b := p.connect(t)
	err := SetNetem(ctx, p.device.Target(), p.veth.NsIf, Netem{Loss: 100})
	skipWithoutNetem(t, err)
	t.Cleanup(func() { ClearNetem(ctx, p.device.Target(), p.veth.NsIf) })
	writeUntilBlocked(t, d)
	b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := b.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("read %d bytes (err %v) through 100%% loss, want a timeout with no bytes", n, err)
	}
}

func TestNetemArgs(t *testing.T) {
	for _, tc := range []struct {
		n    Netem
		want string
	}{
		{Netem{Delay: 50 * time.Millisecond}, "netem delay 50000us"},
		{Netem{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Distribution: "normal"},
			"netem delay 20000us 5000us distribution normal"},
		{Netem{Loss: 100}, "netem loss 100%"},
		{Netem{Loss: 0.5, Duplicate: 1, Reorder: 25, Corrupt: 2, Rate: 125000, Limit: 50, Delay: time.Millisecond},
			"netem limit 50 delay 1000us loss 0.5% duplicate 1% reorder 25% corrupt 2% rate 1000000bit"},
	} {
		if got := strings.Join(tc.n.args(), " "); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestContainerNamespaceByPID acts on a process's namespace the way it would
// on a container's: a process started in a fresh network namespace stands in.
func TestContainerNamespaceByPID(t *testing.T) {
	needKernel(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	// Our own namespace, read before the child exists: the child starts in
	// it and leaves it when unshare runs.
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "unshare", "--net", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	target := PID(cmd.Process.Pid)
	// unshare enters the namespace just after it starts: wait until the
	// target's namespace differs from ours. The namespace's identity, not
	// which interfaces it lists, since those names vary from host to host.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ns, err := os.Readlink(target.Path)
		if err == nil && ns != own {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process never left our namespace %s: %q, %v", own, ns, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	drops := NewDrops(target, "")
	t.Cleanup(func() { drops.Close(context.Background()) })
	if err := drops.Add(ctx, "OUTPUT", "-p", "tcp", "--dport", "1883"); err != nil {
		t.Fatal(err)
	}
	rules, err := drops.List(ctx)
	if err != nil || len(rules) != 1 || !strings.Contains(rules[0], "--dport 1883") {
		t.Fatalf("rules in container netns %q, err %v", rules, err)
	}
	// The rule is in the process's namespace, not ours.
	if out, _ := (Target{}).Run(ctx, "iptables", "-w", "-S"); strings.Contains(out, drops.Tag()) {
		t.Fatal("rule leaked into the test's own namespace")
	}
	if err := drops.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rules, _ := drops.List(ctx); len(rules) != 0 {
		t.Fatalf("rules after Close: %q", rules)
	}
	// A netem on the container's loopback, where the kernel has netem.
	err = SetNetem(ctx, target, "lo", Netem{Delay: time.Millisecond})
	if errors.Is(err, ErrNetemUnsupported) {
		t.Logf("netem part skipped: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := ClearNetem(ctx, target, "lo"); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimitsThroughput(t *testing.T) {
	p := withPair(t)
	ctx := context.Background()
	d, b := p.connect(t)
	const rate = 1 << 20
	if err := SetRate(ctx, p.device.Target(), p.veth.NsIf, rate); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ClearNetem(ctx, p.device.Target(), p.veth.NsIf) })
	const total = 3 << 20
	// The writer reports its outcome; a cleanup closes d (unblocking it if
	// the test failed early) and waits for it, so it never outlives the test.
	wres := make(chan error, 1)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		n, err := d.Write(make([]byte, total))
		if err == nil && n != total {
			err = fmt.Errorf("wrote %d of %d bytes", n, total)
		}
		wres <- err
	}()
	t.Cleanup(func() {
		d.Close()
		<-wdone
	})
	buf := make([]byte, 64<<10)
	b.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	first, got, t0 := n, n, time.Now()
	for got < total {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		got += n
	}
	// The token bucket starts full: skip its burst by timing from the first read.
	r := float64(got-first) / time.Since(t0).Seconds()
	// Every byte arrived, so the write must have finished, whole.
	select {
	case err := <-wres:
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after the reader got every byte")
	}
	t.Logf("rate %.0f B/s, want %d ±10%%", r, rate)
	if r < 0.9*rate || r > 1.1*rate {
		t.Fatalf("rate %.0f B/s, want %d ±10%%", r, rate)
	}
}
