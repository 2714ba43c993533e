package events

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecorderWaitSeesEarlierAndLaterEvents(t *testing.T) {
	r := NewRecorder()
	r.Emit(Event{Kind: Connect, ClientID: "a"})

	// An event recorded before the call satisfies Wait at once.
	e, err := r.WaitFor(time.Second, And(Is(Connect), ForClient("a")))
	if err != nil || e.ClientID != "a" {
		t.Fatalf("wait for an earlier event: %v, %+v", err, e)
	}
	if e.Time.IsZero() {
		t.Fatal("Emit did not stamp the time")
	}

	// A later event wakes a waiter.
	got := make(chan Event, 1)
	errc := make(chan error, 1)
	go func() {
		e, err := r.WaitFor(5*time.Second, And(Is(Disconnect), ForClient("b")))
		got <- e
		errc <- err
	}()
	r.Emit(Event{Kind: Disconnect, ClientID: "other"})
	r.Emit(Event{Kind: Disconnect, ClientID: "b", Cause: CauseKeepalive})
	if err := <-errc; err != nil {
		t.Fatalf("wait for a later event: %v", err)
	}
	if e := <-got; e.Cause != CauseKeepalive {
		t.Fatalf("got %+v, want the keepalive disconnect of b", e)
	}
}

func TestRecorderWaitNAndTimeout(t *testing.T) {
	r := NewRecorder()
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Emit(Event{Kind: PublishReceived, Topic: "t"})
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, err := r.WaitN(ctx, Is(PublishReceived), 3)
	wg.Wait()
	if err != nil || len(evs) != 3 {
		t.Fatalf("WaitN: %d events, %v", len(evs), err)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	evs, err = r.WaitN(short, Is(PublishReceived), 4)
	if !errors.Is(err, context.DeadlineExceeded) || len(evs) != 3 {
		t.Fatalf("WaitN past what exists: %d events, %v; want 3 and a deadline error", len(evs), err)
	}
}

func TestRecorderQueries(t *testing.T) {
	r := NewRecorder()
	for _, k := range []Kind{Connect, ConnAck, Connect, Drop} {
		r.Emit(Event{Kind: k, Source: SourceBroker})
	}
	if n := r.Count(Is(Connect)); n != 2 {
		t.Errorf("Count(connect) = %d, want 2", n)
	}
	if f := r.Filter(Is(Drop, ConnAck)); len(f) != 2 || f[0].Kind != ConnAck || f[1].Kind != Drop {
		t.Errorf("Filter kept %+v, want connack then drop", f)
	}
	if s := r.Since(2); len(s) != 2 || s[0].Kind != Connect {
		t.Errorf("Since(2) = %+v", s)
	}
	if s := r.Since(9); s != nil {
		t.Errorf("Since past the end = %+v, want nil", s)
	}
	if n := r.Count(From(SourceClient)); n != 0 {
		t.Errorf("Count(from client) = %d, want 0", n)
	}
	r.Reset()
	if r.Len() != 0 {
		t.Errorf("Len after Reset = %d", r.Len())
	}
}

func TestMultiAndStamp(t *testing.T) {
	a, b := NewRecorder(), NewRecorder()
	s := Multi(a, nil, b)
	s.Emit(Stamp(Event{Kind: Log}, SourceScenario))
	if a.Len() != 1 || b.Len() != 1 {
		t.Fatalf("Multi reached %d and %d sinks' events, want 1 and 1", a.Len(), b.Len())
	}
	e := a.Events()[0]
	if e.Source != SourceScenario || e.Time.IsZero() {
		t.Fatalf("Stamp left %+v", e)
	}
	if Multi(nil, nil) != Discard {
		t.Fatal("Multi of no sinks should be Discard")
	}
}

func TestJSONLinesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewJSONLines(&buf)
	want := []Event{
		{Time: time.Unix(1, 0).UTC(), Kind: ConnAck, Source: SourceClient, ClientID: "d-1", Code: 5, Latency: 3 * time.Millisecond},
		{Time: time.Unix(2, 0).UTC(), Kind: Disconnect, Source: SourceBroker, ClientID: "d-1", Cause: CauseViolation, Statement: "MQTT-3.1.0-2"},
	}
	for _, e := range want {
		w.Emit(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("%d lines, want 2:\n%s", n, buf.String())
	}
	got, err := ReadJSONLines(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) || got[i].Kind != want[i].Kind || got[i].Code != want[i].Code ||
			got[i].Latency != want[i].Latency || got[i].Statement != want[i].Statement || got[i].Cause != want[i].Cause {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReadJSONLinesNamesTheBadLine(t *testing.T) {
	in := "{\"kind\":\"connect\"}\n\nnot json\n{\"kind\":\"drop\"}\n"
	got, err := ReadJSONLines(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("error %v, want one naming line 3", err)
	}
	if len(got) != 1 || got[0].Kind != Connect {
		t.Fatalf("events before the bad line: %+v", got)
	}
}
