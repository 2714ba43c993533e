package bridge_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/broker"
	_ "github.com/mqttfleet/mqttfleet/broker/bridge" // registers the bridges
	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder keeps the broker events of one kind set, for waiting on them.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
	ch  chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) Emit(e events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// wait blocks until n events satisfy ok, or fails the test after d.
func (r *recorder) wait(t *testing.T, d time.Duration, n int, what string, ok func(events.Event) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		if got := r.count(ok); got >= n {
			return
		}
		select {
		case <-r.ch:
		case <-time.After(50 * time.Millisecond): // count also catches events emitted between checks
		case <-deadline:
			t.Fatalf("waiting for %d %s: got %d within %v", n, what, r.count(ok), d)
		}
	}
}

func (r *recorder) count(ok func(events.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.evs {
		if ok(e) {
			n++
		}
	}
	return n
}

func kind(k events.Kind) func(events.Event) bool {
	return func(e events.Event) bool { return e.Kind == k }
}

// startBroker starts a reference broker on 127.0.0.1 with the bridges
// given (their addresses already known) and returns it with its host:port.
func startBroker(t *testing.T, rec events.Sink, bridges ...bridgeconf.Config) (*broker.Broker, string) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Bridges = bridges
	cfg.Events = rec
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, strings.TrimPrefix(b.Addr("tcp"), "tcp://")
}

// listenAddr reserves a free port and returns its address (for a broker
// that starts later, such as a remote that comes up after its bridge).
func listenAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	_ = l.Close()
	return a
}

type sub struct {
	c    *client.Client
	mu   sync.Mutex
	msgs []*packet.Publish
	ch   chan struct{}
}

// subscribe connects a client to addr subscribed to filter at qos.
func subscribe(t *testing.T, addr, id, filter string, qos byte) *sub {
	t.Helper()
	s := &sub{ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := client.Dial(ctx, "tcp://"+addr, client.Options{ClientID: id, CleanSession: true, OnMessage: func(p *packet.Publish) {
		s.mu.Lock()
		s.msgs = append(s.msgs, p)
		s.mu.Unlock()
		select {
		case s.ch <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Subscribe(ctx, packet.Subscription{Filter: filter, QoS: qos}); err != nil {
		t.Fatal(err)
	}
	s.c = c
	return s
}

func (s *sub) got() []*packet.Publish {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*packet.Publish(nil), s.msgs...)
}

// waitFor blocks until the subscriber holds n messages with topic (any
// topic when ""), or fails after d.
func (s *sub) waitFor(t *testing.T, d time.Duration, n int, topic string) []*packet.Publish {
	t.Helper()
	deadline := time.After(d)
	for {
		var m []*packet.Publish
		for _, p := range s.got() {
			if topic == "" || p.Topic == topic {
				m = append(m, p)
			}
		}
		if len(m) >= n {
			return m
		}
		select {
		case <-s.ch:
		case <-deadline:
			t.Fatalf("waiting for %d messages on %q: got %d within %v (all: %v)", n, topic, len(m), d, topics(s.got()))
		}
	}
}

func topics(ps []*packet.Publish) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprintf("%s(q%d r%v %q)", p.Topic, p.QoS, p.Retain, p.Payload)
	}
	return out
}

func publish(t *testing.T, addr, id, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := client.Dial(ctx, "tcp://"+addr, client.Options{ClientID: id, CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Publish(ctx, topic, qos, retain, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
}

func rules(t *testing.T, lines ...string) []bridgeconf.Topic {
	t.Helper()
	var out []bridgeconf.Topic
	for _, l := range lines {
		r, err := bridgeconf.ParseTopic(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func up(r *recorder) func(events.Event) bool {
	return func(e events.Event) bool { return e.Kind == events.LinkOpened && e.Link != "" }
}

// TestForwardBothWays: an edge broker bridged to a cloud broker carries
// sensors out and commands in, with the prefixes swapped and the QoS of
// each rule capping the message's.
func TestForwardBothWays(t *testing.T) {
	_, cloud := startBroker(t, nil)
	rec := newRecorder()
	_, edge := startBroker(t, rec, bridgeconf.Config{Name: "cloud", Addresses: []string{cloud},
		Topics: rules(t, "sensors/# out 1 edge/ fleet/site1/", "cmd/# in 2 edge/ fleet/site1/", "log/# out 0 \"\" \"\"")})
	rec.wait(t, 10*time.Second, 1, "bridge up", up(rec))

	cloudSub := subscribe(t, cloud, "cloud-app", "fleet/#", 2)
	cloudLog := subscribe(t, cloud, "cloud-log", "log/#", 2)
	edgeSub := subscribe(t, edge, "edge-dev", "edge/cmd/#", 2)

	publish(t, edge, "sensor", "edge/sensors/t1", 2, false, "21.5")
	got := cloudSub.waitFor(t, 10*time.Second, 1, "fleet/site1/sensors/t1")
	if string(got[0].Payload) != "21.5" || got[0].QoS != 1 {
		t.Errorf("out: got %v, want payload 21.5 at QoS 1 (the rule's QoS caps QoS 2)", topics(got))
	}
	publish(t, edge, "logger", "log/x", 1, false, "l")
	if got := cloudLog.waitFor(t, 10*time.Second, 1, "log/x"); got[0].QoS != 0 {
		t.Errorf("log rule QoS 0: got %v", topics(got))
	}
	publish(t, cloud, "operator", "fleet/site1/cmd/valve", 2, false, "open")
	got = edgeSub.waitFor(t, 10*time.Second, 1, "edge/cmd/valve")
	if string(got[0].Payload) != "open" || got[0].QoS != 2 {
		t.Errorf("in: got %v, want payload open at QoS 2", topics(got))
	}
	// A topic outside every rule does not cross.
	publish(t, edge, "sensor", "edge/other/x", 1, false, "no")
	publish(t, edge, "sensor", "edge/sensors/t2", 1, false, "marker")
	cloudSub.waitFor(t, 10*time.Second, 1, "fleet/site1/sensors/t2")
	for _, p := range cloudSub.got() {
		if strings.Contains(p.Topic, "other") {
			t.Errorf("a topic outside the rules crossed: %s", p.Topic)
		}
	}
}

// TestStateTopic: the retained state topic is 1 while the link is up, on
// both brokers, and 0 here once the remote is gone (the remote gets 0 from
// the bridge's will).
func TestStateTopic(t *testing.T) {
	cloudB, cloud := startBroker(t, nil)
	rec := newRecorder()
	_, edge := startBroker(t, rec, bridgeconf.Config{Name: "c1", Addresses: []string{cloud}, Topics: rules(t, "x out 0"),
		RestartTimeout: bridgeconf.Duration(time.Hour)})
	rec.wait(t, 10*time.Second, 1, "bridge up", up(rec))
	st := subscribe(t, edge, "watch", "$SYS/broker/connection/c1/state", 1)
	if got := st.waitFor(t, 10*time.Second, 1, ""); string(got[0].Payload) != "1" || !got[0].Retain {
		t.Fatalf("local state: %v, want retained 1", topics(got))
	}
	rst := subscribe(t, cloud, "rwatch", "$SYS/broker/connection/c1/state", 1)
	if got := rst.waitFor(t, 10*time.Second, 1, ""); string(got[0].Payload) != "1" {
		t.Fatalf("remote state: %v, want 1", topics(got))
	}
	_ = cloudB.Close()
	rec.wait(t, 10*time.Second, 1, "bridge down", func(e events.Event) bool {
		return e.Kind == events.LinkClosed && strings.Contains(e.Detail, "link down")
	})
	if got := st.waitFor(t, 10*time.Second, 2, ""); string(got[1].Payload) != "0" {
		t.Fatalf("local state after the remote closed: %v, want 0", topics(got))
	}
}

// TestQueueWhileDown: messages published while the remote is down wait on
// the bounded queue and arrive once, in order, when it comes up; past
// max_queued the oldest are dropped and counted.
func TestQueueWhileDown(t *testing.T) {
	cloud := listenAddr(t) // nothing listens yet
	rec := newRecorder()
	edgeB, edge := startBroker(t, rec, bridgeconf.Config{Name: "c", Addresses: []string{cloud}, Topics: rules(t, "d/# out 1"),
		RestartTimeout: bridgeconf.Duration(50 * time.Millisecond), RestartMax: bridgeconf.Duration(200 * time.Millisecond), MaxQueued: 20})
	rec.wait(t, 10*time.Second, 1, "a failed connect", func(e events.Event) bool {
		return e.Kind == events.LinkClosed && strings.Contains(e.Detail, "connect failed")
	})
	for i := range 25 {
		publish(t, edge, "dev", fmt.Sprintf("d/%02d", i), 1, false, "m")
	}
	rec.wait(t, 10*time.Second, 25, "queued events", kind("bridge_queued"))
	if s := edgeB.Bridges()[0]; s.Queued != 20 || s.Dropped != 5 || s.Up {
		t.Fatalf("while down: %+v, want 20 queued, 5 dropped, down", s)
	}
	if n := rec.count(func(e events.Event) bool { return e.Kind == events.Drop && e.Cause == events.CauseQueueFull }); n != 5 {
		t.Errorf("drop events: %d, want 5", n)
	}
	// The remote comes up on the address the bridge keeps trying.
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Type: "tcp", Addr: cloud}}
	cloudB, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Subscribe before the bridge can connect: the broker starts, a
	// subscriber connects, then the bridge finds it on its next try.
	if err := cloudB.Start(); err != nil {
		t.Fatal(err)
	}
	defer cloudB.Close()
	s := subscribe(t, cloud, "app", "d/#", 1)
	// Whatever the bridge forwarded before the subscriber was there is
	// lost to it; count from the bridge's own events instead of racing it.
	rec.wait(t, 10*time.Second, 20, "forwarded", kind("bridge_forwarded"))
	if st := edgeB.Bridges()[0]; st.ForwardedOut != 20 || st.Queued != 0 || !st.Up {
		t.Errorf("after the remote came up: %+v, want 20 forwarded, none queued, up", st)
	}
	// Order: forwarded events in publish order, the 5 oldest missing.
	var order []string
	rec.mu.Lock()
	for _, e := range rec.evs {
		if e.Kind == "bridge_forwarded" {
			order = append(order, e.Topic)
		}
	}
	rec.mu.Unlock()
	for i, tp := range order {
		if want := fmt.Sprintf("d/%02d", i+5); tp != want {
			t.Fatalf("forwarded[%d] = %s, want %s (in order, oldest 5 dropped): %v", i, tp, want, order)
		}
	}
	_ = s
}

// TestFailover: with the primary address down the bridge connects to the
// second; without round_robin it goes back to the primary first after a
// break.
func TestFailover(t *testing.T) {
	dead := listenAddr(t)
	_, second := startBroker(t, nil)
	rec := newRecorder()
	edgeB, edge := startBroker(t, rec, bridgeconf.Config{Name: "f", Addresses: []string{dead, second}, Topics: rules(t, "f/# out 1"),
		RestartTimeout: bridgeconf.Duration(50 * time.Millisecond)})
	rec.wait(t, 10*time.Second, 1, "bridge up", up(rec))
	if s := edgeB.Bridges()[0]; s.Address != second || s.Failures < 1 {
		t.Fatalf("stats %+v: want connected to the second address %s after a failure", s, second)
	}
	sub := subscribe(t, second, "app", "f/#", 1)
	publish(t, edge, "dev", "f/1", 1, false, "x")
	sub.waitFor(t, 10*time.Second, 1, "f/1")
}

// TestLoop: two brokers bridged both ways on '#' by one bridge. With
// try_private (the default) each message crosses once; with it off the
// message comes back and goes out again for ever (stopped after 50 turns).
func TestLoop(t *testing.T) {
	t.Run("try_private", func(t *testing.T) {
		_, cloud := startBroker(t, nil)
		rec := newRecorder()
		edgeB, edge := startBroker(t, rec, bridgeconf.Config{Name: "l", Addresses: []string{cloud}, Topics: rules(t, "# both 1")})
		rec.wait(t, 10*time.Second, 1, "bridge up", up(rec))
		cs := subscribe(t, cloud, "capp", "m/#", 1)
		es := subscribe(t, edge, "eapp", "m/#", 1)
		publish(t, edge, "dev", "m/1", 1, false, "once")
		cs.waitFor(t, 10*time.Second, 1, "m/1")
		// A marker published on the cloud after m/1 arrived there comes
		// back on the same remote connection as any echo of m/1 would, and
		// after it: once the marker is here, an echo would be too.
		publish(t, cloud, "cdev", "m/marker", 1, false, "marker")
		es.waitFor(t, 10*time.Second, 1, "m/marker")
		cs.waitFor(t, 10*time.Second, 1, "m/marker")
		if n := len(cs.waitFor(t, time.Second, 1, "m/1")); n != 1 {
			t.Errorf("cloud got m/1 %d times, want 1", n)
		}
		if n := len(es.waitFor(t, time.Second, 1, "m/1")); n != 1 {
			t.Errorf("edge got m/1 %d times, want 1", n)
		}
		if s := edgeB.Bridges()[0]; s.ForwardedOut != 1 || s.ForwardedIn != 1 {
			t.Errorf("bridge stats %+v: want 1 out (m/1), 1 in (the marker)", s)
		}
	})
	t.Run("no_try_private", func(t *testing.T) {
		_, cloud := startBroker(t, nil)
		rec := newRecorder()
		off := false
		edgeB, edge := startBroker(t, rec, bridgeconf.Config{Name: "l", Addresses: []string{cloud}, Topics: rules(t, "# both 1"), TryPrivate: &off, Notifications: &off})
		rec.wait(t, 10*time.Second, 1, "bridge up", up(rec))
		cs := subscribe(t, cloud, "capp", "m/#", 1)
		publish(t, edge, "dev", "m/1", 1, false, "loops")
		got := cs.waitFor(t, 20*time.Second, 50, "m/1")
		edgeB.Bridges() // the flood goes on until the brokers close (Cleanup)
		if len(got) < 50 {
			t.Fatalf("want a flood of m/1 on the cloud, got %d", len(got))
		}
		_ = edgeB.Close() // stop the flood before the subscribers' cleanup
	})
}

// TestMosquittoConf: a mosquitto.conf connection block carries over.
func TestMosquittoConf(t *testing.T) {
	conf := `# edge broker
listener 1883
persistence false
connection cloud
address 10.0.0.1:1883 10.0.0.2
topic sensors/# out 1 edge/ fleet/
topic cmd/# in 2
cleansession true
remote_clientid edge-1
try_private false
restart_timeout 2 20
keepalive_interval 30
bridge_protocol_version mqttv50
connection backup
address 10.0.0.3:1884
topic # both 0
`
	cs, err := bridgeconf.ParseMosquitto("edge.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("got %d bridges, want 2", len(cs))
	}
	c := cs[0]
	if c.Name != "cloud" || len(c.Addresses) != 2 || c.Addresses[1] != "10.0.0.2:1883" || !c.Clean() || c.Private() ||
		c.RemoteClientID != "edge-1" || c.RestartTimeout.D() != 2*time.Second || c.RestartMax.D() != 20*time.Second ||
		c.KeepAlive.D() != 30*time.Second || c.Protocol != bridgeconf.MQTTv50 || len(c.Topics) != 2 {
		t.Errorf("cloud: %+v", c)
	}
	if r := c.Topics[0]; r.Pattern != "sensors/#" || r.Direction != "out" || r.QoS != 1 || r.LocalPrefix != "edge/" || r.RemotePrefix != "fleet/" {
		t.Errorf("topic 0: %+v", r)
	}
	if r := c.Topics[1]; r.Direction != "in" || r.QoS != 2 || r.LocalPrefix != "" {
		t.Errorf("topic 1: %+v", r)
	}
	if b := cs[1]; b.Clean() || !b.Private() || b.RemoteClientID != "bridge.backup" || b.NotificationTopic != "$SYS/broker/connection/backup/state" {
		t.Errorf("backup defaults: %+v", b)
	}
}

// TestMosquittoConfErrors: bad lines are reported with file:line.
func TestMosquittoConfErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"address 1.2.3.4\n", "b.conf:1: address: a bridge option before any `connection <name>` line"},
		{"connection x\naddress h\ntopic a/# sideways 1\n", "b.conf:3: topic: topic \"a/# sideways 1\": direction \"sideways\""},
		{"connection x\naddress h\ntopic a/# out 3\n", "b.conf:3: topic: topic \"a/# out 3\": QoS \"3\""},
		{"connection x\naddress h\ntopic a/# out 1 pre/\n", "b.conf:3: topic"},
		{"connection x\naddress h\ntopic a/#\nbridge_psk abc\n", "b.conf:4: bridge_psk: not supported"},
		{"connection x\naddress h\ntopic a/#\ncleansession maybe\n", "b.conf:4: cleansession: \"maybe\": want true or false"},
		{"connection x\ntopic a/#\n", "addresses: none"},
		{"connection x\naddress h:99999\ntopic a/#\n", "port"},
	} {
		_, err := bridgeconf.ParseMosquitto("b.conf", strings.NewReader(tc.conf))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.conf, err, tc.want)
		}
	}
}

// TestConfigValidation: a bad bridge stops the broker from starting, naming the field.
func TestConfigValidation(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Bridges = []bridgeconf.Config{{Name: "a/b", Addresses: []string{"x:1"}, Topics: rules(t, "t out 0")}}
	if _, err := broker.New(cfg); err == nil || !strings.Contains(err.Error(), `bridge "a/b": name`) {
		t.Errorf("error %v, want the name named", err)
	}
	cfg.Bridges = []bridgeconf.Config{{Name: "a", Addresses: []string{"x:1"}}}
	if _, err := broker.New(cfg); err == nil || !strings.Contains(err.Error(), "topics: none") {
		t.Errorf("error %v, want topics named", err)
	}
}

// TestRemoteRestart: the remote broker (persistence on) restarts. The
// bridge's persistent session resumes (Session Present), the messages
// published here meanwhile wait on the bridge's queue, those published
// there for the bridge wait in its session, and each arrives once.
func TestRemoteRestart(t *testing.T) {
	dir := t.TempDir()
	cloudCfg := func(addr string) broker.Config {
		cfg := broker.DefaultConfig()
		cfg.Listeners = []broker.ListenerConfig{{Type: "tcp", Addr: addr}}
		cfg.Persistence = broker.PersistenceConfig{Enabled: true, Path: dir + "/cloud.db"}
		return cfg
	}
	cloudB, err := broker.New(cloudCfg("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cloudB.Start(); err != nil {
		t.Fatal(err)
	}
	cloud := strings.TrimPrefix(cloudB.Addr("tcp"), "tcp://")
	rec := newRecorder()
	edgeB, edge := startBroker(t, rec, bridgeconf.Config{Name: "r", Addresses: []string{cloud}, Topics: rules(t, "up/# out 1", "down/# in 1"),
		RestartTimeout: bridgeconf.Duration(300 * time.Millisecond), RestartMax: bridgeconf.Duration(time.Second)})
	rec.wait(t, 10*time.Second, 1, "bridge up", up(rec))
	// A persistent subscriber on the cloud, offline during the restart.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	persistentSub := func() (*client.Client, chan *packet.Publish) {
		ch := make(chan *packet.Publish, 200)
		c, _, err := client.Dial(ctx, "tcp://"+cloud, client.Options{ClientID: "cloud-app", OnMessage: func(p *packet.Publish) { ch <- p }})
		if err != nil {
			t.Fatal(err)
		}
		return c, ch
	}
	app, _ := persistentSub()
	if _, err := app.Subscribe(ctx, packet.Subscription{Filter: "up/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	_ = app.Disconnect(ctx)
	dev := subscribe(t, edge, "edge-dev", "down/#", 1)

	_ = cloudB.Close()
	rec.wait(t, 10*time.Second, 1, "bridge down", func(e events.Event) bool {
		return e.Kind == events.LinkClosed && strings.Contains(e.Detail, "link down")
	})
	for i := range 50 {
		publish(t, edge, "sensor", fmt.Sprintf("up/%02d", i), 1, false, "u")
	}
	cloudB, err = broker.New(cloudCfg(cloud))
	if err != nil {
		t.Fatal(err)
	}
	if err := cloudB.Start(); err != nil {
		t.Fatal(err)
	}
	defer cloudB.Close()
	for i := range 50 {
		publish(t, cloud, "operator", fmt.Sprintf("down/%02d", i), 1, false, "d")
	}
	rec.wait(t, 20*time.Second, 2, "bridge up again", up(rec))
	if n := rec.count(func(e events.Event) bool { return e.Kind == events.LinkOpened && e.SessionPresent }); n != 1 {
		t.Errorf("reconnections with Session Present: %d, want 1 (the bridge's persistent session resumed)", n)
	}
	got := dev.waitFor(t, 20*time.Second, 50, "")
	rec.wait(t, 20*time.Second, 50, "forwarded out", func(e events.Event) bool {
		return e.Kind == "bridge_forwarded" && e.Direction == "out"
	})
	app, ch := persistentSub()
	defer app.Close()
	seen := map[string]int{}
	for len(seen) < 50 {
		select {
		case p := <-ch:
			seen[p.Topic]++
		case <-ctx.Done():
			t.Fatalf("cloud app got %d of 50 up/ topics", len(seen))
		}
	}
	// A marker behind them on the same path: a duplicate would come first.
	publish(t, edge, "sensor", "up/zz", 1, false, "marker")
	for seen["up/zz"] == 0 {
		select {
		case p := <-ch:
			seen[p.Topic]++
		case <-ctx.Done():
			t.Fatal("no marker at the cloud")
		}
	}
	// Nothing twice: each down/ message once here, each up/ once there.
	downSeen := map[string]int{}
	for _, p := range got {
		downSeen[p.Topic]++
	}
	for tp, n := range downSeen {
		if n != 1 {
			t.Errorf("%s arrived %d times at the edge", tp, n)
		}
	}
	for tp, n := range seen {
		if n != 1 {
			t.Errorf("%s arrived %d times at the cloud", tp, n)
		}
	}
	if s := edgeB.Bridges()[0]; s.Queued != 0 || s.Dropped != 0 {
		t.Errorf("bridge %+v: want nothing queued or dropped", s)
	}
}

// TestMosquittoConfRoundTrip: a bridge written as a connection block reads
// back the same.
func TestMosquittoConfRoundTrip(t *testing.T) {
	off := false
	c := bridgeconf.Config{Name: "rt", Addresses: []string{"127.0.0.1:1"}, Topics: rules(t, "a/# both 2 l/ r/", "b out 0"),
		TryPrivate: &off, KeepAlive: bridgeconf.Duration(7 * time.Second), MaxQueued: 5}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := bridgeconf.ParseMosquitto("gen.conf", strings.NewReader(c.MosquittoConf()))
	if err != nil {
		t.Fatalf("%v\n%s", err, c.MosquittoConf())
	}
	g := got[0]
	if g.Name != c.Name || g.Private() || g.KeepAlive != c.KeepAlive || len(g.Topics) != 2 || g.Topics[0] != c.Topics[0] ||
		g.Topics[1] != c.Topics[1] || g.NotificationTopic != c.NotificationTopic || g.RemoteClientID != c.RemoteClientID {
		t.Errorf("round trip:\n%+v\n%+v\n%s", c, g, c.MosquittoConf())
	}
}
