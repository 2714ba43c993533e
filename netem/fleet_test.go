package netem

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// childEnv makes the test binary act as the far side of the fleet test: the
// echo "broker" and every device socket live in that second process, because
// one process may hold 20,000 files here and 5,000 links need 20,000 sockets
// (device, proxy in, proxy out, broker side).
const childEnv = "NETEM_FLEET_CHILD"

// fleetLinks is the number of concurrent links the fleet test holds.
const fleetLinks = 5000

func TestFiveThousandLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 5,000 links; -short")
	}
	if raceEnabled {
		t.Skip("5,000 links need 10,000 goroutines; the race detector allows 8,128")
	}
	r := runFleet(t, fleetLinks)
	t.Logf("%d links: %.1f KiB per link (heap+stacks), %d goroutines, up in %v",
		fleetLinks, r.perLink/1024, r.goroutines, r.upIn)
}

// BenchmarkLinkMemory reports the proxy's memory per idle link at 5,000 links.
func BenchmarkLinkMemory(b *testing.B) {
	for range b.N {
		r := runFleet(b, fleetLinks)
		b.ReportMetric(r.perLink, "B/link")
		b.ReportMetric(float64(r.goroutines)/fleetLinks, "goroutines/link")
	}
}

type fleetResult struct {
	perLink    float64 // bytes of heap and goroutine stacks per link
	goroutines int
	upIn       time.Duration
}

func runFleet(t testing.TB, n int) fleetResult {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start fleet child: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		stdin.Close() // the child exits when its stdin ends
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	lines := bufio.NewScanner(stdout)
	var px *Proxy
	expect := func(prefix string) string {
		t.Helper()
		got := make(chan string, 1)
		go func() {
			if lines.Scan() {
				got <- lines.Text()
			}
			close(got)
		}()
		select {
		case s, ok := <-got:
			if !ok || !strings.HasPrefix(s, prefix) {
				if px != nil {
					all := px.Links()
					t.Logf("%d links open", len(all))
					for _, li := range all {
						if li.Up != li.Down || li.Up == 0 || strings.Contains(s, li.Remote+"->") {
							t.Logf("link %+v", li)
						}
					}
				}
				t.Fatalf("fleet child said %q, want %q...", s, prefix)
			}
			return strings.TrimSpace(strings.TrimPrefix(s, prefix))
		case <-time.After(60 * time.Second):
			t.Fatalf("fleet child: no %q within 60 s", prefix)
		}
		return ""
	}
	up := expect("upstream ")

	px = NewProxy(ProxyConfig{Listen: "127.0.0.1:0", Upstream: up, Events: events.Discard, Logger: testLogger(t),
		DialTimeout: 30 * time.Second}) // the far side may be slow to accept on a busy machine
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	t0 := time.Now()
	fmt.Fprintf(stdin, "proxy %s %d\n", px.Addr(), n)
	expect("ready")
	upIn := time.Since(t0)
	if got := len(px.Links()); got != n {
		t.Fatalf("%d links open, want %d", got, n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	res := fleetResult{
		perLink:    float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / float64(n),
		goroutines: runtime.NumGoroutine() - g0,
		upIn:       upIn,
	}
	// Every link still forwards, through a fault applied to all of them at once.
	if _, err := px.Apply(AllLinks(), Fault{Kind: Latency, Latency: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "echo")
	expect("ready")
	return res
}

// childMain is the far side of the fleet test, driven over stdin/stdout.
func childMain() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child listen:", err)
		return 1
	}
	defer ln.Close()
	go func() { // echo every connection
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "child: accept: %v\n", err)
				time.Sleep(10 * time.Millisecond) // out of files: wait for some to close
				continue
			}
			// Not io.Copy: TCPConn to TCPConn splices, and a splice waiting
			// for data holds a pipe (two more files) per connection.
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	fmt.Printf("upstream %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return 1
	}
	f := strings.Fields(in.Text())
	if len(f) != 3 || f[0] != "proxy" {
		fmt.Fprintf(os.Stderr, "child: bad command %q\n", in.Text())
		return 1
	}
	n, _ := strconv.Atoi(f[2])
	conns := make([]net.Conn, n)
	roundTrip := func(i int) error {
		if conns[i] == nil {
			c, err := net.DialTimeout("tcp", f[1], 10*time.Second)
			if err != nil {
				return err
			}
			conns[i] = c
		}
		c := conns[i]
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, 4))
		return err
	}
	// Open (and later exercise) all links, 100 at a time.
	each := func() error {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		sem := make(chan struct{}, 100)
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := roundTrip(i); err != nil {
					local := ""
					if conns[i] != nil {
						local = conns[i].LocalAddr().String()
					}
					errs <- fmt.Errorf("link %d from %s: %w", i, local, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	// A failure is reported on stdout with the sockets still open, so the
	// parent can look at the link before the child goes.
	report := func() {
		if err := each(); err != nil {
			fmt.Printf("fail %v\n", err)
			return
		}
		fmt.Println("ready")
	}
	report()
	for in.Scan() {
		if in.Text() == "echo" {
			report()
		}
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	return 0
}
