package events

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Recorder keeps every event in memory, in arrival order, and lets callers
// wait for an event that matches a predicate. It is the sink tests and
// assertions read; the zero value is not usable, call NewRecorder.
type Recorder struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on every Emit, to wake waiters
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{changed: make(chan struct{})}
}

// Emit records e, stamping its time when it has none.
func (r *Recorder) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Len returns the number of events recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Events returns a copy of every event recorded so far.
func (r *Recorder) Events() []Event {
	return r.Since(0)
}

// Since returns a copy of the events recorded at index i and after. Readers
// that follow the stream as it grows keep their own index.
func (r *Recorder) Since(i int) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.events) {
		return nil
	}
	if i < 0 {
		i = 0
	}
	out := make([]Event, len(r.events)-i)
	copy(out, r.events[i:])
	return out
}

// Filter returns the recorded events that match m.
func (r *Recorder) Filter(m Match) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if m(e) {
			out = append(out, e)
		}
	}
	return out
}

// Count returns how many recorded events match m.
func (r *Recorder) Count(m Match) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if m(e) {
			n++
		}
	}
	return n
}

// Wait returns the first recorded event that matches m, waiting for one to
// arrive until ctx ends. Events recorded before the call count.
func (r *Recorder) Wait(ctx context.Context, m Match) (Event, error) {
	evs, err := r.WaitN(ctx, m, 1)
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// WaitN waits until at least n recorded events match m and returns the first
// n of them, or an error when ctx ends first.
func (r *Recorder) WaitN(ctx context.Context, m Match, n int) ([]Event, error) {
	seen := 0
	var found []Event
	for {
		r.mu.Lock()
		for ; seen < len(r.events) && len(found) < n; seen++ {
			if m(r.events[seen]) {
				found = append(found, r.events[seen])
			}
		}
		changed := r.changed
		r.mu.Unlock()
		if len(found) >= n {
			return found, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return found, fmt.Errorf("wait for %d matching events: got %d: %w", n, len(found), ctx.Err())
		}
	}
}

// WaitFor is Wait with a timeout instead of a context.
func (r *Recorder) WaitFor(timeout time.Duration, m Match) (Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.Wait(ctx, m)
}

// Reset forgets every recorded event.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}
