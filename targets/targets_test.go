package targets_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/targets"
)

func TestByName(t *testing.T) {
	cases := []struct {
		name, want, tcp, ws string
		wantErr             bool
	}{
		{name: "inprocess", want: "inprocess"},
		{name: "process", want: "process"},
		{name: "mosquitto", want: "mosquitto"},
		{name: "emqx", want: "emqx"},
		{name: "tcp://127.0.0.1:1883", want: "tcp://127.0.0.1:1883", tcp: "tcp://127.0.0.1:1883"},
		{name: "mqtt://127.0.0.1:1883", want: "tcp://127.0.0.1:1883", tcp: "tcp://127.0.0.1:1883"},
		{name: "ws://127.0.0.1:8080/mqtt", want: "ws://127.0.0.1:8080/mqtt", ws: "ws://127.0.0.1:8080/mqtt"},
		{name: "hivemq", wantErr: true},
		{name: "tcp://127.0.0.1", wantErr: true},
		{name: "http://127.0.0.1:80", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg, err := targets.ByName(c.name)
			if c.wantErr {
				if err == nil {
					t.Fatalf("ByName(%q) = %v, want an error", c.name, tg.Name())
				}
				return
			}
			if err != nil {
				t.Fatalf("ByName(%q): %v", c.name, err)
			}
			if tg.Name() != c.want {
				t.Errorf("Name() = %q, want %q", tg.Name(), c.want)
			}
			for transport, want := range map[string]string{"tcp": c.tcp, "ws": c.ws} {
				if want == "" {
					continue
				}
				if got, ok := tg.Addr(transport); !ok || got != want {
					t.Errorf("Addr(%q) = %q, %v; want %q", transport, got, ok, want)
				}
			}
		})
	}
	if _, err := targets.List(" , "); err == nil {
		t.Error("List of no names: want an error")
	}
	ts, err := targets.List("inprocess, tcp://127.0.0.1:1")
	if err != nil || len(ts) != 2 {
		t.Fatalf("List = %d targets, %v; want 2", len(ts), err)
	}
}

func TestCapabilitiesHas(t *testing.T) {
	c := targets.Capabilities{MaxQoS: 1, Retain: true, Variants: true}
	for feature, want := range map[string]bool{"qos1": true, "qos2": false, "retain": true, "wildcards": false, "variants": true, "nonsense": false} {
		if got := c.Has(feature); got != want {
			t.Errorf("Has(%q) = %v, want %v", feature, got, want)
		}
	}
}

// connack dials a target's TCP URL, sends a minimal 3.1.1 CONNECT as client
// "tgt" and returns the four bytes of the answer.
func connack(t *testing.T, rawURL string) []byte {
	t.Helper()
	c, b := session(t, rawURL, "tgt")
	c.Close()
	return b
}

// session dials a target's TCP URL, sends a minimal 3.1.1 CONNECT as client
// id and returns the open connection and the four bytes of the answer. The
// connection has a 5 s deadline; the caller closes it.
func session(t *testing.T, rawURL, id string) (net.Conn, []byte) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse %q: %v", rawURL, err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		c.Close()
		t.Fatal(err)
	}
	// Variable header: protocol name, level 4, clean session, keepalive 60.
	connect := append([]byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, byte(len(id))}, id...)
	if _, err := c.Write(connect); err != nil {
		c.Close()
		t.Fatalf("write CONNECT: %v", err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil {
		c.Close()
		t.Fatalf("read CONNACK: %v", err)
	}
	return c, b
}

var accepted = []byte{0x20, 0x02, 0x00, 0x00}

// lifecycle starts, restarts and stops a target, checking it answers CONNECT
// each time it runs and keeps its logs. A Restart must really restart: a
// session opened before it is ended by it, and the logs hold startMarker
// (a line the broker prints once per start) twice.
func lifecycle(t *testing.T, tg targets.Target, wantLog, startMarker string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := tg.Start(ctx); err != nil {
		if errors.Is(err, targets.ErrUnavailable) {
			t.Skip(err.Error())
		}
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = tg.Stop(context.Background()) })
	addr, ok := tg.Addr("tcp")
	if !ok {
		t.Fatal("no tcp address")
	}
	if got := connack(t, addr); !bytes.Equal(got, accepted) {
		t.Fatalf("CONNACK = % x, want % x", got, accepted)
	}
	// Its own client ID, so the CONNECT after the restart does not take
	// this session over and close it whether or not the broker restarted.
	held, got := session(t, addr, "held")
	defer held.Close()
	if !bytes.Equal(got, accepted) {
		t.Fatalf("CONNACK of the held session = % x, want % x", got, accepted)
	}
	if err := tg.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	// A stopped broker closes the session; one left running keeps it open
	// and the read runs into its deadline.
	if err := held.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := held.Read(make([]byte, 1)); err == nil {
		t.Fatalf("held session read %d bytes after Restart; want it closed", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("session opened before Restart is still open after it: the broker did not restart")
	}
	addr, _ = tg.Addr("tcp")
	if got := connack(t, addr); !bytes.Equal(got, accepted) {
		t.Fatalf("CONNACK after restart = % x, want % x", got, accepted)
	}
	if err := tg.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, ok := tg.Addr("tcp"); ok {
		t.Error("Addr after Stop: want none")
	}
	logs, err := tg.Logs(ctx)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if !bytes.Contains(logs, []byte(wantLog)) {
		t.Errorf("logs after Stop lack %q:\n%s", wantLog, logs)
	}
	if n := bytes.Count(logs, []byte(startMarker)); n != 2 {
		t.Errorf("logs after Stop hold %q %d times, want 2 (a start and a restart):\n%s", startMarker, n, logs)
	}
}

func TestInProcessLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tg := targets.NewInProcess()
	lifecycle(t, tg, `"client_id":"tgt"`, "msg=listening name=tcp ")
	if !tg.Capabilities().WebSocket {
		t.Error("in-process broker should declare WebSocket")
	}
}

func TestInProcessWebSocketAddr(t *testing.T) {
	tg := targets.NewInProcess()
	if err := tg.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer tg.Stop(context.Background())
	u, ok := tg.Addr("ws")
	if !ok {
		t.Fatal("no ws address")
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "ws" || p.Path != "/mqtt" {
		t.Fatalf("ws address %q: want ws://host:port/mqtt (%v)", u, err)
	}
}

func TestMosquittoContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a container")
	}
	lifecycle(t, targets.NewMosquitto(), "mosquitto version", " running")
}

func TestMissingImageIsUnavailable(t *testing.T) {
	tg := &targets.Container{TargetName: "nothing", Image: "mqttfleet/does-not-exist:0", Ports: map[string]targets.ContainerPort{"tcp": {Port: "1883/tcp"}}}
	err := tg.Start(context.Background())
	if err == nil {
		_ = tg.Stop(context.Background())
		t.Fatal("Start of a missing image succeeded")
	}
	if !errors.Is(err, targets.ErrUnavailable) {
		t.Fatalf("Start of a missing image: %v; want ErrUnavailable", err)
	}
}

func TestExternalLifecycleIsNotOwned(t *testing.T) {
	tg, err := targets.NewExternal("tcp://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Restart(context.Background()); !errors.Is(err, targets.ErrNotSupported) {
		t.Errorf("Restart = %v, want ErrNotSupported", err)
	}
	if logs, err := tg.Logs(context.Background()); logs != nil || err != nil {
		t.Errorf("Logs = %q, %v; want nil, nil", logs, err)
	}
}

// TestInProcessVariant: a variant is a second broker on its own ports with
// the changed configuration, declared in its capabilities; the original
// keeps its own and outlives the variant.
func TestInProcessVariant(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	tg := targets.NewInProcess()
	if !tg.Capabilities().Has("variants") {
		t.Fatal("in-process target should declare variants")
	}
	if err := tg.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer tg.Stop(ctx)
	v, err := tg.Variant(ctx, func(c *broker.Config) {
		one, off := 1, false
		c.MaximumQoS, c.RetainAvailable = &one, &off
	})
	if err != nil {
		t.Fatalf("Variant: %v", err)
	}
	orig, _ := tg.Addr("tcp")
	addr, ok := v.Addr("tcp")
	if !ok || addr == orig {
		t.Fatalf("variant tcp address %q (%v), original %q: want its own", addr, ok, orig)
	}
	if c := v.Capabilities(); c.Has("qos2") || !c.Has("qos1") || c.Has("retain") {
		t.Errorf("variant capabilities %+v: want QoS 1, no retain", c)
	}
	if c := tg.Capabilities(); !c.Has("qos2") || !c.Has("retain") {
		t.Errorf("original capabilities changed: %+v", c)
	}
	if b := connack(t, addr); !bytes.Equal(b, []byte{0x20, 2, 0, 0}) {
		t.Errorf("variant CONNACK % x", b)
	}
	if err := v.Stop(ctx); err != nil {
		t.Fatalf("stop variant: %v", err)
	}
	if b := connack(t, orig); !bytes.Equal(b, []byte{0x20, 2, 0, 0}) {
		t.Errorf("original CONNACK % x after the variant stopped", b)
	}
}
