package client

import (
	"errors"
	"testing"
)

// TestIDSpaceAlloc checks which identifiers come next; running out of them
// (ErrNoPacketID) needs all 65535 in flight and is TestIDSpaceFullAndReuse's.
func TestIDSpaceAlloc(t *testing.T) {
	tests := []struct {
		name string
		last uint16   // identifier issued last before the test
		busy []uint16 // identifiers already in flight
		want []uint16 // identifiers the next allocations return
	}{
		{name: "starts at 1", want: []uint16{1, 2, 3}},
		{name: "wraps past 65535 to 1, never 0", last: 65533, want: []uint16{65534, 65535, 1, 2}},
		{name: "skips identifiers in flight", last: 65534, busy: []uint16{65535, 1, 3}, want: []uint16{2, 4, 5}},
		{name: "skips a run in flight", last: 10, busy: []uint16{11, 12}, want: []uint16{13}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idSpace{last: tt.last, inflight: map[uint16]*Token{}}
			for _, id := range tt.busy {
				s.inflight[id] = &Token{}
			}
			for _, want := range tt.want {
				got, err := s.alloc(&Token{})
				if err != nil || got != want {
					t.Fatalf("alloc = %d, %v; want %d", got, err, want)
				}
			}
		})
	}
}

func TestIDSpaceFullAndReuse(t *testing.T) {
	var s idSpace
	seen := make(map[uint16]bool, 65535)
	for i := range 65535 {
		id, err := s.alloc(&Token{})
		if err != nil {
			t.Fatalf("alloc %d: %v", i, err)
		}
		if id == 0 || seen[id] {
			t.Fatalf("alloc %d returned %d (zero or still in flight)", i, id)
		}
		seen[id] = true
	}
	if _, err := s.alloc(&Token{}); !errors.Is(err, ErrNoPacketID) {
		t.Fatalf("alloc with all 65535 in flight: err = %v, want ErrNoPacketID", err)
	}
	s.free(40000)
	if id, err := s.alloc(&Token{}); err != nil || id != 40000 {
		t.Fatalf("alloc after freeing 40000 = %d, %v; want 40000", id, err)
	}
	for id := range seen {
		s.free(id)
	}
	if s.inflight != nil {
		t.Fatalf("map of %d entries kept after emptying; want it dropped", len(s.inflight))
	}
}
