package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWriters: every write lands whole (run with -race).
func TestConcurrentWriters(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("ab"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := b.String(); len(got) != 1600 || strings.Count(got, "ab") != 800 || string(b.Bytes()) != got {
		t.Fatalf("got %d bytes", len(got))
	}
}
