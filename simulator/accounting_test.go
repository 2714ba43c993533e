package simulator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/reports"
)

// TestInjectedLossAndDuplication skips and repeats chosen messages through
// the Tamper hook; the accounting must find exactly those.
func TestInjectedLossAndDuplication(t *testing.T) {
	for _, tg := range targets {
		for _, qos := range []int{0, 1, 2} {
			t.Run(tg.name+"/qos"+itoa(qos), func(t *testing.T) {
				addr := tg.start(t)
				const devices, count = 10, 12
				var mu sync.Mutex
				skipped, repeated := 0, 0
				tamper := func(dev int, seq uint64) Action {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case dev%3 == 0 && seq%4 == 2: // middle-of-stream gaps
						skipped++
						return Skip
					case dev == 1 && seq == count: // tail loss: nothing after it reveals the gap
						skipped++
						return Skip
					case dev%4 == 1 && seq%5 == 0:
						repeated++
						return Repeat
					}
					return Send
				}
				res := runFleet(t, Config{Profile: echoProfile(devices, count, qos, 40*time.Millisecond), Broker: addr, Tamper: tamper})
				c := res.Counters
				mu.Lock()
				defer mu.Unlock()
				if c["lost"] != int64(skipped) || c["duplicates"] != int64(repeated) {
					t.Fatalf("lost %d dup %d, injected %d skips and %d repeats", c["lost"], c["duplicates"], skipped, repeated)
				}
				if c["out_of_order"] != 0 {
					t.Fatalf("out of order %d on an ordered run", c["out_of_order"])
				}
			})
		}
	}
}

// TestShardsEqualOneRun runs a fleet whole and as four shards at once; the
// merged totals must equal the whole run's.
func TestShardsEqualOneRun(t *testing.T) {
	addr := startReference(t)
	p := func() Config {
		return Config{Profile: echoProfile(40, 5, 1, 50*time.Millisecond), Broker: addr}
	}
	whole := runFleet(t, p())
	// The shards run on goroutines of their own, which must not call
	// t.Fatal; each reports its outcome and the test goroutine judges them.
	parts := make([]*reports.Results, 4)
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := p()
			cfg.Shard = Shard{Index: i, Count: 4}
			parts[i], errs[i] = runShard(cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d/4: %v", i, err)
		}
	}
	merged, err := reports.Merge(parts...)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	for _, k := range []string{"connects", "publishes_sent", "publishes_received", "publishes_acked", "expected",
		"received_distinct", "lost", "duplicates", "devices"} {
		if whole.Counters[k] != merged.Counters[k] {
			t.Errorf("%s: whole run %d, four shards %d", k, whole.Counters[k], merged.Counters[k])
		}
	}
	if whole.Counters["publishes_sent"] != 200 {
		t.Fatalf("sent %d, want 200", whole.Counters["publishes_sent"])
	}
}

// runShard runs one fleet like runFleet but returns its failure, for
// callers on goroutines other than the test's.
func runShard(cfg Config) (*reports.Results, error) {
	f, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("new fleet: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := f.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if res == nil {
		return nil, errors.New("run returned no results")
	}
	return res, nil
}

func TestShardRange(t *testing.T) {
	for _, total := range []int{0, 1, 7, 10000, 18001} {
		next := 0
		for i := 0; i < 4; i++ {
			lo, hi := Shard{i, 4}.Range(total)
			if lo != next || hi < lo || hi-lo > total/4+1 {
				t.Fatalf("total %d shard %d: [%d,%d) after %d", total, i, lo, hi, next)
			}
			next = hi
		}
		if next != total {
			t.Fatalf("total %d: shards cover %d", total, next)
		}
	}
	if _, err := ParseShard("4/4"); err == nil {
		t.Fatal("accepted 4/4")
	}
	if s, err := ParseShard("1/3"); err != nil || s != (Shard{1, 3}) {
		t.Fatalf("1/3: %v %v", s, err)
	}
}
