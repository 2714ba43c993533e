package netpark

import (
	"net"
	"slices"
	"testing"
	"unsafe"
)

// TestTable: entries by descriptor across chunk boundaries, sparse and
// high descriptors, free slots reused, and each visiting exactly the
// entries in use, deleting as it goes.
func TestTable(t *testing.T) {
	var tb table
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fds := []int{0, 1, tableChunk - 1, tableChunk, 5*tableChunk + 3, 70000}
	for _, fd := range fds {
		if tb.get(fd) != nil {
			t.Fatalf("fd %d found before put", fd)
		}
		tb.put(fd, parked{conn: a, deadline: 1})
	}
	if tb.n != len(fds) {
		t.Fatalf("n %d, want %d", tb.n, len(fds))
	}
	for _, fd := range []int{-1, 2, tableChunk + 1, 4 * tableChunk, 70001, 1 << 30} {
		if tb.get(fd) != nil {
			t.Fatalf("fd %d found, never put", fd)
		}
	}
	tb.del(tableChunk)
	if tb.get(tableChunk) != nil || tb.n != len(fds)-1 {
		t.Fatalf("after del: found %v, n %d", tb.get(tableChunk) != nil, tb.n)
	}
	tb.put(tableChunk, parked{conn: b})
	if e := tb.get(tableChunk); e == nil || e.conn != b {
		t.Fatal("reused slot does not hold the new entry")
	}
	var seen []int
	tb.each(func(fd int, e parked) {
		seen = append(seen, fd)
		tb.del(fd)
	})
	if !slices.Equal(seen, fds) {
		t.Fatalf("each visited %v, want %v", seen, fds)
	}
	if tb.n != 0 {
		t.Fatalf("n %d after deleting everything", tb.n)
	}
	tb.each(func(fd int, _ parked) { t.Fatalf("fd %d visited after delete", fd) })
	// The point of the table: 32 bytes per parked connection.
	if s := unsafe.Sizeof(parked{}); s != 32 {
		t.Errorf("entry is %d bytes, want 32", s)
	}
}
