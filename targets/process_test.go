package targets_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/targets"
)

func TestMain(m *testing.M) {
	// The process target runs this test binary as its broker child.
	targets.RunChild()
	os.Exit(m.Run())
}

func TestProcessLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tg := targets.NewProcess()
	defer tg.Close()
	lifecycle(t, tg, `"client_id":"tgt"`, "msg=listening name=tcp ")
	if c := tg.Capabilities(); !c.Kill || !c.Persistence || !c.Restartable {
		t.Errorf("capabilities %+v: want kill, persistence, restart", c)
	}
}

// publishRetained publishes one retained QoS 1 message and waits for its PUBACK.
func publishRetained(t *testing.T, tg targets.Target) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, ok := tg.Addr("tcp")
	if !ok {
		t.Fatal("no tcp address")
	}
	conn, err := client.DialConn(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := client.Connect(ctx, conn, client.Options{ClientID: "retainer", CleanSession: true, KeepAlive: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Publish(ctx, "state/valve", 1, true, []byte("open")); err != nil {
		t.Fatal(err)
	}
}

// TestProcessKillKeepsTheStore: a SIGKILLed child leaves its store behind,
// the next Start listens on the same address and reports what it
// recovered; with persistence off it recovers nothing; Close removes the
// temporary store.
func TestProcessKillKeepsTheStore(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, persist := range []bool{true, false} {
		t.Run(map[bool]string{true: "persistence on", false: "persistence off"}[persist], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tg := targets.NewProcess()
			tg.SetPersistence(persist)
			if err := tg.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			before, _ := tg.Addr("tcp")
			publishRetained(t, tg)
			if err := targets.RestartWith(ctx, tg, targets.Kill); err != nil {
				t.Fatal(err)
			}
			after, _ := tg.Addr("tcp")
			if after != before {
				t.Errorf("address after kill %s, want %s", after, before)
			}
			rec, ok := tg.Recovered()
			if persist && (!ok || rec.Retained != 1) {
				t.Errorf("recovered %+v %v after kill -9, want the retained message", rec, ok)
			}
			if !persist && (ok || rec.Retained != 0) {
				t.Errorf("recovered %+v %v with persistence off, want nothing known", rec, ok)
			}
			if err := targets.RestartWith(ctx, tg, targets.Graceful); err != nil {
				t.Fatal(err)
			}
			if rec, ok := tg.Recovered(); persist && rec.Retained != 1 {
				t.Errorf("recovered %+v %v after a graceful restart, want the retained message", rec, ok)
			}
			logs, _ := tg.Logs(ctx)
			if persist && !strings.Contains(string(logs), "persistence recovered") {
				t.Errorf("child logs lack the recovery line:\n%s", logs)
			}
			if err := tg.Close(); err != nil {
				t.Fatal(err)
			}
			if _, ok := tg.Addr("tcp"); ok {
				t.Error("Addr after Close: want none")
			}
		})
	}
}

// TestProcessRefusesToRecurse: a program started as a child that did not
// serve (no RunChild) does not start children of its own.
func TestProcessRefusesToRecurse(t *testing.T) {
	t.Setenv(targets.ChildEnv, "/nonexistent")
	err := targets.NewProcess().Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "RunChild") {
		t.Fatalf("Start as an unserved child: %v, want a refusal naming RunChild", err)
	}
}

// retainedOn subscribes to the retained topic and says whether the broker
// delivers the retained message within a second.
func retainedOn(t *testing.T, tg targets.Target) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, _ := tg.Addr("tcp")
	conn, err := client.DialConn(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 1)
	c, _, err := client.Connect(ctx, conn, client.Options{ClientID: "reader", CleanSession: true, KeepAlive: 30 * time.Second,
		OnMessage: func(m *packet.Publish) {
			if m.Retain && string(m.Payload) == "open" {
				select {
				case got <- struct{}{}:
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "state/valve", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
		return true
	case <-time.After(time.Second): // a retained message comes right after SUBACK; none came
		return false
	}
}

// TestMosquittoKillWithPersistence: the Mosquitto container with its own
// persistence on keeps a retained message across `docker kill` (SIGKILL:
// Mosquitto's "terminating" line is not printed) and across a graceful
// restart (SIGTERM: it is), on the same host port.
func TestMosquittoKillWithPersistence(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a container run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tg := targets.NewMosquitto()
	tg.SetPersistence(true)
	if err := tg.Start(ctx); err != nil {
		if errors.Is(err, targets.ErrUnavailable) {
			t.Skip(err.Error())
		}
		t.Fatal(err)
	}
	defer tg.Stop(context.Background())
	before, _ := tg.Addr("tcp")
	publishRetained(t, tg)
	terminating := func() int {
		logs, err := tg.Logs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(logs), " terminating")
	}
	if err := targets.RestartWith(ctx, tg, targets.Kill); err != nil {
		t.Fatal(err)
	}
	if n := terminating(); n != 0 {
		t.Errorf("%d terminating lines after a kill, want 0 (SIGKILL gives no shutdown)", n)
	}
	if after, _ := tg.Addr("tcp"); after != before {
		t.Errorf("address after kill %s, want %s", after, before)
	}
	if !retainedOn(t, tg) {
		t.Error("retained message lost by a kill with persistence on")
	}
	if err := targets.RestartWith(ctx, tg, targets.Graceful); err != nil {
		t.Fatal(err)
	}
	if n := terminating(); n != 1 {
		t.Errorf("%d terminating lines after a graceful restart, want 1", n)
	}
	if !retainedOn(t, tg) {
		t.Error("retained message lost by a graceful restart with persistence on")
	}
}
