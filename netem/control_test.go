package netem

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

func TestFaultEventsCarryLinkGroupDirection(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	id := mustApply(t, px, ByLink(l.id), Fault{Kind: Latency, Direction: Downstream, Latency: time.Millisecond})
	if err := px.Remove(id); err != nil {
		t.Fatal(err)
	}
	for _, k := range []events.Kind{events.FaultInjected, events.FaultRemoved} {
		ev, err := rec.WaitFor(time.Second, events.Is(k))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Link != l.id || ev.Group != "127.0.0.1" || ev.Direction != "downstream" || ev.Fault != "latency" ||
			ev.Source != events.SourceNetem || ev.Time.IsZero() {
			t.Fatalf("%s event %+v", k, ev)
		}
	}
}

func TestScheduleStartDurationEvery(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	t0 := time.Now()
	id := mustApply(t, px, ByLink(l.id), Fault{Kind: Blackhole, Start: 200 * time.Millisecond,
		Duration: 300 * time.Millisecond, Every: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, err := rec.WaitN(ctx, events.Is(events.FaultInjected, events.FaultRemoved), 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind events.Kind
		at   time.Duration
	}{{events.FaultInjected, 200 * time.Millisecond}, {events.FaultRemoved, 500 * time.Millisecond},
		{events.FaultInjected, 1200 * time.Millisecond}, {events.FaultRemoved, 1500 * time.Millisecond}}
	for i, w := range want {
		at := evs[i].Time.Sub(t0)
		if evs[i].Kind != w.kind || at < w.at || at > w.at+150*time.Millisecond {
			t.Fatalf("event %d: %s at %v, want %s at %v (+150ms)", i, evs[i].Kind, at, w.kind, w.at)
		}
	}
	if err := px.Remove(id); err != nil {
		t.Fatalf("remove a scheduled fault: %v", err)
	}
}

func TestScheduleOnceThenGone(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	dialLink(t, px, u, rec)
	mustApply(t, px, AllLinks(), Fault{Kind: Stall, Duration: 50 * time.Millisecond})
	if _, err := rec.WaitFor(5*time.Second, events.Is(events.FaultRemoved)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(px.Faults()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("faults still listed: %+v", px.Faults())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// affected applies a half-share fault with the given seed to 40 links of
// group "dev" and returns which ordinals it hit.
func affected(t *testing.T, seed int64) map[int]bool {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := NewProxy(ProxyConfig{Listen: "127.0.0.1:0", Upstream: u.addr(), Events: rec, Seed: seed, Logger: testLogger(t)})
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 40 {
		c, err := px.Dial(ctx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		u.accept(t)
	}
	if _, err := rec.WaitN(ctx, events.Is(events.LinkOpened), 40); err != nil {
		t.Fatal(err)
	}
	id := mustApply(t, px, ByGroup("dev"), Fault{Kind: Stall, Share: 0.5})
	hit := map[int]bool{}
	ordinal := map[string]int{}
	for i, li := range px.Links() {
		ordinal[li.ID] = i + 1
	}
	for _, e := range rec.Filter(events.Is(events.FaultInjected)) {
		hit[ordinal[e.Link]] = true
	}
	px.Remove(id)
	return hit
}

func TestShareIsSeededAndPartial(t *testing.T) {
	a, b, c := affected(t, 7), affected(t, 7), affected(t, 8)
	if len(a) < 10 || len(a) > 30 {
		t.Fatalf("share 0.5 of 40 links hit %d", len(a))
	}
	if len(a) != len(b) {
		t.Fatalf("same seed, different shares: %d vs %d", len(a), len(b))
	}
	for k := range a {
		if !b[k] {
			t.Fatalf("same seed, different links: %v vs %v", a, b)
		}
	}
	same := len(a) == len(c)
	for k := range a {
		same = same && c[k]
	}
	if same {
		t.Fatalf("seeds 7 and 8 picked the same links %v", a)
	}
}

func TestGroupsByListenerDialAndRemote(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	gaddr, err := px.ListenGroup("dev-1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c1, err := net.Dial("tcp", gaddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := px.Dial(ctx, "dev-2")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c3, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	for range 3 {
		u.accept(t)
	}
	opened, err := rec.WaitN(ctx, events.Is(events.LinkOpened), 3)
	if err != nil {
		t.Fatal(err)
	}
	groupOf := map[string]string{}
	for _, e := range opened {
		groupOf[e.Remote] = e.Group
	}
	for c, want := range map[net.Conn]string{c1: "dev-1", c2: "dev-2", c3: "127.0.0.1"} {
		if got := groupOf[c.LocalAddr().String()]; got != want {
			t.Fatalf("link from %s in group %q, want %q", c.LocalAddr(), got, want)
		}
	}
	// Each selector reaches exactly its link.
	for _, sel := range []Selector{ByGroup("dev-1"), ByGroup("dev-2"), ByRemote(c3.LocalAddr().String())} {
		rec.Reset()
		id := mustApply(t, px, sel, Fault{Kind: Stall})
		if n := rec.Count(events.Is(events.FaultInjected)); n != 1 {
			t.Fatalf("%v hit %d links", sel, n)
		}
		px.Remove(id)
	}
}

func TestGroupFaultCatchesReconnect(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	mustApply(t, px, ByGroup("dev-9"), Fault{Kind: Blackhole})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := px.Dial(ctx, "dev-9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := u.accept(t)
	c.Write([]byte("hello"))
	b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := b.Read(make([]byte, 5)); n != 0 || !isTimeout(err) {
		t.Fatalf("new link of a blackholed group passed bytes: n=%d err=%v", n, err)
	}
	ev, err := rec.WaitFor(time.Second, events.Is(events.FaultInjected))
	if err != nil || ev.Group != "dev-9" {
		t.Fatalf("fault event %+v %v", ev, err)
	}
}

func TestCloseJoinsEverything(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := NewProxy(ProxyConfig{Listen: "127.0.0.1:0", Upstream: u.addr(), Events: rec, Logger: testLogger(t)})
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	var ls []tlink
	for range 5 {
		ls = append(ls, dialLink(t, px, u, rec))
	}
	mustApply(t, px, ByLink(ls[0].id), Fault{Kind: Latency, Latency: time.Hour})
	ls[0].device.Write([]byte("held for an hour"))
	mustApply(t, px, ByLink(ls[1].id), Fault{Kind: Stall})
	mustApply(t, px, AllLinks(), Fault{Kind: Bandwidth, Rate: 1, Start: time.Hour})
	done := make(chan struct{})
	go func() { px.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s")
	}
	if n := rec.Count(events.Is(events.LinkClosed)); n != 5 {
		t.Fatalf("%d LinkClosed events, want 5", n)
	}
	if _, err := px.Apply(AllLinks(), Fault{Kind: Stall}); err == nil {
		t.Fatal("apply after close succeeded")
	}
}

func TestResetWithDurationRefusesNewLinks(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	mustApply(t, px, AllLinks(), Fault{Kind: Reset, Duration: time.Hour})
	c, err := net.Dial("tcp", px.Addr())
	if err == nil { // the RST may also beat connect(2) to the finish
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("new link under an active reset: %v, want ECONNRESET", err)
	}
	if len(px.Faults()) != 1 {
		t.Fatalf("reset with a duration should stay listed: %+v", px.Faults())
	}
}

func TestFaultsCombine(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	mustApply(t, px, ByLink(l.id), Fault{Kind: Latency, Direction: Upstream, Latency: 100 * time.Millisecond})
	mustApply(t, px, ByLink(l.id), Fault{Kind: Slice, Direction: Upstream, ChunkSize: 4, ChunkDelay: 10 * time.Millisecond})
	t0 := time.Now()
	if _, err := l.device.Write([]byte("0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	l.broker.SetReadDeadline(time.Now().Add(5 * time.Second))
	first := make([]byte, 64)
	n, err := l.broker.Read(first)
	if err != nil {
		t.Fatal(err)
	}
	// No slack: latency counts from when the proxy read the bytes, after t0,
	// and timers never fire early. The head start deliver takes against late
	// wake-ups (up to maxLate) is learned from earlier waits on the same pipe;
	// this is the fresh pipe's first delayed chunk, so it starts at zero.
	if el := time.Since(t0); el < 100*time.Millisecond || n > 4 {
		t.Fatalf("first piece: %d bytes after %v, want <= 4 bytes after >= 100ms", n, el)
	}
	rest := readFull(t, l.broker, 16-n, 5*time.Second)
	if got := string(first[:n]) + string(rest); got != "0123456789abcdef" {
		t.Fatalf("got %q", got)
	}
}
