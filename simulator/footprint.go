package simulator

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// footprint is the process's memory and CPU at one moment.
type footprint struct {
	HeapLive, Stack, RSS int64 // bytes
	User, Sys            time.Duration
	Goroutines           int
}

// measure collects garbage first so that HeapLive is what the fleet holds,
// not what it has yet to free. It stops the world briefly; call it once.
func measure() footprint {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fp := footprint{HeapLive: int64(m.HeapAlloc), Stack: int64(m.StackInuse), RSS: rss(), Goroutines: runtime.NumGoroutine()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		fp.User = time.Duration(ru.Utime.Nano())
		fp.Sys = time.Duration(ru.Stime.Nano())
	}
	return fp
}

// rss reads the resident set size from /proc (Linux); 0 elsewhere.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
