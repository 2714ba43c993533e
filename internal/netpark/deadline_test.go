package netpark

import (
	"testing"
	"time"
)

// TestParkUntilDeadline: a silent connection parked with a deadline is
// woken once, after the deadline and within about scanEvery of it; one
// without a deadline parked beside it stays parked; a deadline connection
// that becomes readable first is woken by that, once.
func TestParkUntilDeadline(t *testing.T) {
	p := newPoller(t)
	silent, _ := tcpPair(t)
	plain, _ := tcpPair(t)
	talker, talkerPeer := tcpPair(t)
	woke := make(chan time.Time, 4)
	wakePlain := make(chan struct{}, 1)
	wakeTalker := make(chan struct{}, 2)

	const after = 200 * time.Millisecond
	start := time.Now()
	if !p.Park(plain, func() { wakePlain <- struct{}{} }) {
		t.Fatal("Park refused a TCP conn")
	}
	if !p.ParkUntil(silent, start.Add(after), func() { woke <- time.Now() }) {
		t.Fatal("ParkUntil refused a TCP conn")
	}
	if !p.ParkUntil(talker, start.Add(time.Hour), func() { wakeTalker <- struct{}{} }) {
		t.Fatal("ParkUntil refused a TCP conn")
	}
	if _, err := talkerPeer.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wakeTalker, "readable before its deadline")

	select {
	case at := <-woke:
		if late := at.Sub(start); late < after {
			t.Fatalf("woken %v after parking, before the %v deadline", late, after)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deadline passed, not woken")
	}
	if n := p.Len(); n != 1 {
		t.Fatalf("Len %d after the deadline wake, want 1 (the conn without deadline)", n)
	}
	if !p.Unpark(plain) {
		t.Fatal("the conn without a deadline was not parked any more")
	}
	select {
	case <-wakePlain:
		t.Fatal("the conn without a deadline was woken")
	case <-wakeTalker:
		t.Fatal("the readable conn was woken twice")
	case <-woke:
		t.Fatal("the deadline conn was woken twice")
	default:
	}
}

// TestManyDeadlinesWhileRunning: connections parked with deadlines while the
// goroutine already runs (only the first deadline shortens its wait) are
// each woken once, none before its deadline.
func TestManyDeadlinesWhileRunning(t *testing.T) {
	p := newPoller(t)
	plain, _ := tcpPair(t)
	if !p.Park(plain, func() {}) { // the goroutine runs, in its long wait
		t.Fatal("Park refused a TCP conn")
	}
	time.Sleep(20 * time.Millisecond) // let it reach that wait (it works either way)
	const n = 50
	type wake struct {
		i  int
		at time.Time
	}
	woke := make(chan wake, 2*n)
	deadlines := make([]time.Time, n)
	for i := range n {
		c, _ := tcpPair(t)
		deadlines[i] = time.Now().Add(time.Duration(100+4*i) * time.Millisecond)
		if !p.ParkUntil(c, deadlines[i], func() { woke <- wake{i, time.Now()} }) {
			t.Fatalf("conn %d: ParkUntil refused", i)
		}
	}
	seen := make(map[int]bool, n)
	timeout := time.After(10 * time.Second)
	for len(seen) < n {
		select {
		case w := <-woke:
			if seen[w.i] {
				t.Fatalf("conn %d woken twice", w.i)
			}
			seen[w.i] = true
			if w.at.Before(deadlines[w.i]) {
				t.Fatalf("conn %d woken %v before its deadline", w.i, deadlines[w.i].Sub(w.at))
			}
		case <-timeout:
			t.Fatalf("%d of %d woken after their deadlines", len(seen), n)
		}
	}
	if got := p.Len(); got != 1 {
		t.Fatalf("Len %d, want 1 (the conn without deadline)", got)
	}
}

// TestPassedDeadline: a deadline that has already passed (even one before
// the Poller was made) still counts as a deadline, woken at the next scan.
func TestPassedDeadline(t *testing.T) {
	p := newPoller(t)
	for _, at := range []time.Time{time.Now(), time.Now().Add(-time.Hour)} {
		c, _ := tcpPair(t)
		woke := make(chan struct{}, 1)
		if !p.ParkUntil(c, at, func() { woke <- struct{}{} }) {
			t.Fatal("ParkUntil refused a TCP conn")
		}
		waitWake(t, woke, "deadline "+time.Until(at).Round(time.Second).String()+" from now")
	}
}
