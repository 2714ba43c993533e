package broker

import (
	"testing"
	"time"
)

// TestStackReleaseWave checks when the broker returns exited goroutines'
// stacks: once a wave of releaseWave parks has been quiet for releaseQuiet,
// not for a smaller wave, and not again within releaseEvery; the goroutine
// that waits for a wave to end stops on Close (goleak in TestMain).
func TestStackReleaseWave(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Listeners = nil
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := &b.stacks
	state := func() (parks int, released time.Time, waiting bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.parks, s.lastRelease, s.waiting
	}
	// parked's callers are connection goroutines counted in b.wg, so its
	// Add cannot race Close's Wait; here no Close runs until the end.
	for range releaseWave - 1 {
		s.parked(b)
	}
	if _, _, waiting := state(); waiting {
		t.Fatal("waiting for a wave below releaseWave parks")
	}
	s.parked(b)
	waveEnd := time.Now()
	if _, _, waiting := state(); !waiting {
		t.Fatal("not waiting after releaseWave parks")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		parks, released, waiting := state()
		if !released.IsZero() {
			if parks != 0 || waiting {
				t.Fatalf("after the release: %d parks counted, waiting %v", parks, waiting)
			}
			if d := released.Sub(waveEnd); d < releaseQuiet {
				t.Fatalf("released %v after the last park, before %v of quiet", d, releaseQuiet)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no release within 5 s of the wave's end")
		}
		time.Sleep(20 * time.Millisecond) // polling state with a deadline
	}

	// A second wave right after waits for releaseEvery; Close ends the wait.
	_, first, _ := state()
	for range releaseWave {
		s.parked(b)
	}
	time.Sleep(releaseQuiet + 300*time.Millisecond) // the quiet a release would need
	if parks, released, waiting := state(); released != first || parks != releaseWave || !waiting {
		t.Fatalf("second wave within %v: released again %v, %d parks counted, waiting %v",
			releaseEvery, released != first, parks, waiting)
	}
	closed := make(chan struct{})
	go func() { _ = b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the goroutine waiting for the wave to end")
	}
	if _, _, waiting := state(); waiting {
		t.Fatal("still waiting after Close")
	}
}
