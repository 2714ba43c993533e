package netem

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// publish is an MQTT 3.1.1 QoS 0 PUBLISH to topic "t" carrying seq.
func publish(seq uint32) []byte {
	return []byte{0x30, 7, 0, 1, 't', byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)}
}

// pingreq ends a stream of publishes in these tests: loss, duplicate and
// reorder faults limited to publish packets let it through.
var pingreq = []byte{0xc0, 0}

// stream writes n publishes and a PINGREQ in large writes, so the proxy reads
// many packets per read and packets straddle reads.
func stream(n int) []byte {
	b := make([]byte, 0, n*9+2)
	for i := range n {
		b = append(b, publish(uint32(i))...)
	}
	return append(b, pingreq...)
}

// receive reads packets from c up to the PINGREQ and returns the sequence
// numbers of the publishes in the order they came.
func receive(t *testing.T, c net.Conn) []uint32 {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	r := bufio.NewReader(c)
	var seqs []uint32
	for {
		h, err := r.ReadByte()
		if err != nil {
			t.Fatalf("read after %d publishes: %v", len(seqs), err)
		}
		n, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
		if h == 0xc0 {
			return seqs
		}
		if h != 0x30 || n != 7 {
			t.Fatalf("packet %d: header %#x length %d: the stream was torn", len(seqs), h, n)
		}
		seqs = append(seqs, binary.BigEndian.Uint32(body[3:]))
	}
}

// runPackets sends n publishes one way through a fresh proxy with seed, the
// fault on before the first byte, and returns what arrived and the counts.
func runPackets(t *testing.T, seed int64, dir Direction, f Fault, n int) ([]uint32, Counts) {
	t.Helper()
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := NewProxy(ProxyConfig{Listen: "127.0.0.1:0", Upstream: u.addr(), Events: rec, Seed: seed, Logger: testLogger(t)})
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	f.Direction = dir
	mustApply(t, px, AllLinks(), f)
	l := dialLink(t, px, u, rec)
	w, r := l.ends(dir)
	wres := writeAsync(t, w, stream(n))
	seqs := receive(t, r)
	if wr := writeOutcome(t, wres, 10*time.Second); wr.err != nil {
		t.Fatalf("write: %v", wr.err)
	}
	c := px.Counts()
	if len(c.Links) != 1 || c.Links[0].ID != l.id {
		t.Fatalf("counts %+v: want one link %s", c, l.id)
	}
	if dir == Upstream {
		return seqs, c.Up
	}
	return seqs, c.Down
}

// checkRate fails unless got/n is within tol of want.
func checkRate(t *testing.T, what string, got, n int64, want, tol float64) {
	t.Helper()
	rate := float64(got) / float64(n)
	t.Logf("%s: %d of %d = %.4f, want %.4f ± %.3f", what, got, n, rate, want, tol)
	if math.Abs(rate-want) > tol {
		t.Errorf("%s rate %.4f, want %.4f ± %.3f", what, rate, want, tol)
	}
}

func TestLossRateAndSeededRepeat(t *testing.T) {
	const n = 10_000
	f := Fault{Kind: Loss, Probability: 0.05, Packets: []string{"publish"}}
	seqs, c := runPackets(t, 7, Upstream, f, n)
	if c.Packets != n+1 || c.Dropped != int64(n-len(seqs)) || c.Duplicated != 0 {
		t.Fatalf("counts %+v: want packets %d, dropped %d (what did not arrive)", c, n+1, n-len(seqs))
	}
	checkRate(t, "loss", c.Dropped, n, 0.05, 0.01)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("publish %d after %d: loss must not reorder", seqs[i], seqs[i-1])
		}
	}
	again, c2 := runPackets(t, 7, Upstream, f, n)
	if c2 != c || !equal(again, seqs) {
		t.Fatalf("same seed, second run: counts %+v, first %+v (or other packets lost)", c2, c)
	}
	_, c3 := runPackets(t, 8, Upstream, f, n)
	if c3 == c {
		t.Errorf("seed 8 lost exactly what seed 7 lost (%+v): the seed is not used", c3)
	}
}

func equal(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDuplicateRateAndSeededRepeat(t *testing.T) {
	const n = 10_000
	f := Fault{Kind: Duplicate, Probability: 0.03, Packets: []string{"publish"}}
	seqs, c := runPackets(t, 3, Downstream, f, n)
	twice := 0
	for i := 1; i < len(seqs); i++ {
		if seqs[i] == seqs[i-1] {
			twice++
		}
	}
	if len(seqs) != n+twice || int64(twice) != c.Duplicated || c.Dropped != 0 {
		t.Fatalf("got %d publishes, %d back to back twice; counts %+v", len(seqs), twice, c)
	}
	checkRate(t, "duplicate", c.Duplicated, n, 0.03, 0.01)
	again, c2 := runPackets(t, 3, Downstream, f, n)
	if c2 != c || !equal(again, seqs) {
		t.Fatalf("same seed, second run: counts %+v, first %+v", c2, c)
	}
}

func TestGilbertElliottBurstyLoss(t *testing.T) {
	const n = 10_000
	// Plain Gilbert: mean loss p/(p+r) = 10%, mean burst 1/r ≈ 2.2 packets.
	f := Fault{Kind: Loss, P: 0.05, R: 0.45, Packets: []string{"publish"}}
	seqs, c := runPackets(t, 11, Upstream, f, n)
	if c.Dropped != int64(n-len(seqs)) {
		t.Fatalf("counts %+v, but %d did not arrive", c, n-len(seqs))
	}
	checkRate(t, "gilbert-elliott loss", c.Dropped, n, 0.10, 0.02)
	bursts := 0
	prev := int64(-1)
	for _, s := range seqs {
		if int64(s) > prev+1 {
			bursts++
		}
		prev = int64(s)
	}
	if prev < n-1 {
		bursts++
	}
	mean := float64(c.Dropped) / float64(bursts)
	t.Logf("%d losses in %d bursts: mean burst %.2f", c.Dropped, bursts, mean)
	// Independent loss at 10% has mean bursts of 1/(1-0.1) ≈ 1.11.
	if mean < 1.6 {
		t.Errorf("mean burst %.2f packets: losses are not correlated", mean)
	}
	_, c2 := runPackets(t, 11, Upstream, f, n)
	if c2 != c {
		t.Fatalf("same seed, second run: counts %+v, first %+v", c2, c)
	}
}

func TestReorderWithinWindow(t *testing.T) {
	const n, window = 1000, 4
	// A long hold: every window fills, so the shuffle repeats exactly.
	f := Fault{Kind: Reorder, Window: window, Hold: time.Minute, Packets: []string{"publish"}}
	seqs, c := runPackets(t, 5, Downstream, f, n)
	if len(seqs) != n {
		t.Fatalf("%d publishes arrived, want all %d", len(seqs), n)
	}
	moved := 0
	seen := make([]bool, n)
	for i, s := range seqs {
		if seen[s] {
			t.Fatalf("publish %d twice", s)
		}
		seen[s] = true
		if int(s) != i {
			moved++
		}
		if int(s)/window != i/window {
			t.Fatalf("publish %d arrived at %d: outside its window of %d", s, i, window)
		}
	}
	if moved == 0 || int64(moved) != c.Reordered || c.Dropped != 0 || c.Duplicated != 0 {
		t.Fatalf("%d publishes out of place, counts %+v", moved, c)
	}
	_, c2 := runPackets(t, 5, Downstream, f, n)
	if c2 != c {
		t.Fatalf("same seed, second run: counts %+v, first %+v", c2, c)
	}
}

func TestReorderHoldReleasesALonePacket(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	mustApply(t, px, ByLink(l.id), Fault{Kind: Reorder, Direction: Upstream, Window: 8, Hold: 20 * time.Millisecond})
	if _, err := l.device.Write(publish(1)); err != nil {
		t.Fatal(err)
	}
	// Seven short of a full window: only the hold lets it go.
	if got := readFull(t, l.broker, 9, 10*time.Second); got[8] != 1 {
		t.Fatalf("got %x", got)
	}
}

func TestFramingFallsBackToRawChunks(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	mustApply(t, px, AllLinks(), Fault{Kind: Loss, Direction: Upstream, Probability: 1})
	l := dialLink(t, px, u, rec)
	// Not MQTT (type 0): the read is one raw unit, and lost whole.
	if _, err := l.device.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the raw read counted as dropped", func() bool { return px.Counts().Up.Dropped == 1 })
	l.broker.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := l.broker.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("broker read %d bytes, err %v: want nothing", n, err)
	}
}

// eventually polls cond until it holds or d passes: for state with no event to wait on.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNATIdleForgetsASilentLink(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	// An idle timeout ten times the traffic's period, so a loaded machine's
	// scheduling delays cannot make a gap that long.
	mustApply(t, px, ByLink(l.id), Fault{Kind: NATIdle, Idle: time.Second})
	// Traffic more often than the idle timeout keeps the mapping, in either direction.
	for i := range 15 {
		w, r := l.ends(Upstream)
		if i%2 == 1 {
			w, r = l.ends(Downstream)
		}
		if _, err := w.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		readFull(t, r, 4, 5*time.Second)
		time.Sleep(100 * time.Millisecond) // the traffic pattern under test, not a wait for a condition
	}
	if n := rec.Count(natExpired); n != 0 {
		t.Fatalf("mapping expired on a link with traffic every 100ms (idle timeout 1s)")
	}
	// Silence: the mapping goes.
	if _, err := rec.WaitFor(10*time.Second, natExpired); err != nil {
		t.Fatalf("no nat expiry event: %v", err)
	}
	for _, d := range []Direction{Upstream, Downstream} {
		w, r := l.ends(d)
		if _, err := w.Write([]byte("lost")); err != nil {
			t.Fatalf("%s write: %v (the sender must not notice)", d, err)
		}
		r.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := r.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: read %d bytes, err %v after the NAT forgot the link", d, n, err)
		}
	}
	eventually(t, 5*time.Second, "both writes counted as NAT drops", func() bool {
		c := px.Counts()
		return c.Up.NATDropped == 1 && c.Down.NATDropped == 1
	})
	// The device gives up and closes: no FIN reaches the broker.
	l.device.Close()
	l.broker.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := l.broker.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("broker read %d bytes, err %v after the device closed: want a half-open link", n, err)
	}
}

func natExpired(e events.Event) bool { return e.Kind == events.Log && e.Fault == string(NATIdle) }

func TestNATRebindNewSourcePort(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	if _, err := l.device.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	readFull(t, l.broker, 6, 5*time.Second)
	mustApply(t, px, ByLink(l.id), Fault{Kind: NATRebind})
	b2 := u.accept(t)
	if b2.RemoteAddr().String() == l.broker.RemoteAddr().String() {
		t.Fatalf("new broker connection from the same address %s", b2.RemoteAddr())
	}
	if _, err := rec.WaitFor(5*time.Second, func(e events.Event) bool {
		return e.Kind == events.Log && e.Fault == string(NATRebind)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.device.Write([]byte("after")); err != nil {
		t.Fatalf("device write on its old socket: %v", err)
	}
	b2.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if n, err := io.ReadFull(b2, buf); err != nil {
		l.broker.SetReadDeadline(time.Now().Add(time.Second))
		m, err2 := l.broker.Read(buf)
		t.Fatalf("new connection: %d %v; old connection got %q %v; links %+v", n, err, buf[:m], err2, px.Links())
	}
	if _, err := b2.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, l.device, 4, 5*time.Second); string(got) != "back" {
		t.Fatalf("device got %q", got)
	}
	// The old connection: nothing more, and no FIN (half-open as the broker sees it).
	l.broker.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := l.broker.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("old broker connection: read %d bytes, err %v", n, err)
	}
	// The broker closing the new connection reaches the device as a FIN.
	b2.Close()
	l.device.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := l.device.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("device read %d, %v: want EOF", n, err)
	}
}

func TestBandwidthBurst(t *testing.T) {
	const rate, burst = 64 << 10, 128 << 10
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	mustApply(t, px, ByLink(l.id), Fault{Kind: Bandwidth, Direction: Downstream, Rate: rate, Burst: burst})
	wres := writeAsync(t, l.broker, make([]byte, 2*burst))
	t0 := time.Now()
	readFull(t, l.device, burst, 10*time.Second)
	first := time.Since(t0)
	readFull(t, l.device, burst, 30*time.Second)
	rest := time.Since(t0) - first
	t.Logf("burst of %d B in %s, the next %d B in %s", burst, first, burst, rest)
	if wr := writeOutcome(t, wres, 5*time.Second); wr.err != nil {
		t.Fatal(wr.err)
	}
	// Without the bucket the first 128 KiB take 2 s at 64 KiB/s; with it
	// they leave at once. The next 128 KiB wait for tokens: 2 s.
	if first > time.Second {
		t.Errorf("the full bucket took %s to pass: no burst", first)
	}
	if rest < 1800*time.Millisecond {
		t.Errorf("after the burst %d B passed in %s: faster than %d B/s", burst, rest, rate)
	}
}

func TestLinkFaultsValidateAndJSON(t *testing.T) {
	for _, f := range []Fault{
		{Kind: Loss}, {Kind: Loss, Probability: 1.5}, {Kind: Loss, P: 0.1},
		{Kind: Loss, P: 0.1, R: 0.5, Probability: 0.1}, {Kind: Duplicate}, {Kind: Reorder, Window: 1},
		{Kind: NATIdle}, {Kind: NATIdle, Idle: time.Second, Direction: Upstream}, {Kind: NATRebind, Direction: Downstream},
		{Kind: Bandwidth, Rate: 1, Burst: -1}, {Kind: Loss, Probability: 0.1, Packets: []string{"publsh"}},
	} {
		if err := f.Validate(); err == nil {
			t.Errorf("%+v: validated", f)
		}
	}
	in := Fault{Kind: Loss, Direction: Downstream, P: 0.01, R: 0.3, LossBad: 0.9, LossGood: 0.001,
		Packets: []string{"publish", "puback"}}
	for _, f := range []Fault{in, {Kind: Reorder, Window: 3, Hold: 20 * time.Millisecond},
		{Kind: NATIdle, Idle: 2 * time.Second}, {Kind: Bandwidth, Rate: 1000, Burst: 5000}, {Kind: Duplicate, Probability: 0.2}} {
		if err := f.Validate(); err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		b, err := f.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Fault
		if err := back.UnmarshalJSON(b); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if back.String() != f.String() {
			t.Fatalf("JSON round trip %s: %s, want %s", b, back, f)
		}
	}
}

func TestCountsOverHTTP(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	srv := httptest.NewServer(px.Handler())
	t.Cleanup(srv.Close)
	body := `{"selector": {"all": true}, "fault": {"kind": "loss", "direction": "upstream", "probability": 0.5, "packets": ["publish"]}}`
	resp, err := http.Post(srv.URL+"/faults", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /faults: %s", resp.Status)
	}
	l := dialLink(t, px, u, rec)
	if _, err := l.device.Write(stream(100)); err != nil {
		t.Fatal(err)
	}
	got := receive(t, l.broker)
	resp, err = http.Get(srv.URL + "/counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c CountsReport
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if len(c.Links) != 1 || c.Links[0].ID != l.id || c.Up.Dropped != int64(100-len(got)) || c.Up.Packets != 101 || !c.Down.Zero() {
		t.Fatalf("GET /counts: %+v; %d of 100 arrived", c, len(got))
	}
}

// TestPacketFaultsSwitchOnLiveLink: a loss fault put on a link that has been
// forwarding (on the splice path) frames from the next quiet read on, and
// taking it off lets everything through again.
func TestPacketFaultsSwitchOnLiveLink(t *testing.T) {
	u := withUpstream(t)
	rec := events.NewRecorder()
	px := withProxy(t, u.addr(), rec)
	l := dialLink(t, px, u, rec)
	send := func(n int) []uint32 {
		t.Helper()
		if _, err := l.device.Write(stream(n)); err != nil {
			t.Fatal(err)
		}
		return receive(t, l.broker)
	}
	if got := send(10); len(got) != 10 {
		t.Fatalf("before the fault: %d of 10", len(got))
	}
	id := mustApply(t, px, ByLink(l.id), Fault{Kind: Loss, Direction: Upstream, Probability: 1, Packets: []string{"publish"}})
	if got := send(10); len(got) != 0 {
		t.Fatalf("with every publish lost: %d arrived", len(got))
	}
	if c := px.Counts(); c.Up.Dropped != 10 || c.Up.Packets != 11 {
		t.Fatalf("counts %+v: want 10 dropped of 11 packets", c.Up)
	}
	if err := px.Remove(id); err != nil {
		t.Fatal(err)
	}
	if got := send(10); len(got) != 10 {
		t.Fatalf("after removal: %d of 10", len(got))
	}
}
