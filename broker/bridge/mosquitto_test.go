package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/targets"
)

// The interop tests run Mosquitto 2.0.11 in its container (the image in
// $MQTTFLEET_MOSQUITTO_IMAGE; `make deps` builds one) on each side of a
// bridge: our bridge into Mosquitto, and Mosquitto's own bridge (a
// `connection` block in its config) into the reference broker.

// mosquitto starts the Mosquitto target, skipping the test where it cannot run.
func mosquitto(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts a Mosquitto container")
	}
	m := targets.NewMosquitto()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		if errors.Is(err, targets.ErrUnavailable) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	u, _ := m.Addr("tcp")
	return strings.TrimPrefix(u, "tcp://")
}

// TestToMosquitto: the reference broker's bridge carries both ways to
// Mosquitto with prefixes and QoS, and Mosquitto honours the try_private
// mark: a '#' both-ways bridge does not loop.
func TestToMosquitto(t *testing.T) {
	mq := mosquitto(t)
	rec := newRecorder()
	edgeB, edge := startBroker(t, rec, bridgeconf.Config{Name: "mq", Addresses: []string{mq},
		Topics: rules(t, "sensors/# out 1 edge/ fleet/e1/", "cmd/# in 2 edge/ fleet/e1/", "loop/# both 1")})
	rec.wait(t, 30*time.Second, 1, "bridge up", up(rec))

	app := subscribe(t, mq, "mq-app", "fleet/#", 2)
	dev := subscribe(t, edge, "edge-dev", "edge/cmd/#", 2)
	publish(t, edge, "sensor", "edge/sensors/t", 2, false, "7")
	if got := app.waitFor(t, 10*time.Second, 1, "fleet/e1/sensors/t"); got[0].QoS != 1 || string(got[0].Payload) != "7" {
		t.Errorf("out to Mosquitto: %v, want payload 7 at QoS 1", topics(got))
	}
	publish(t, mq, "operator", "fleet/e1/cmd/reboot", 2, false, "now")
	if got := dev.waitFor(t, 10*time.Second, 1, "edge/cmd/reboot"); got[0].QoS != 2 || string(got[0].Payload) != "now" {
		t.Errorf("in from Mosquitto: %v, want payload now at QoS 2", topics(got))
	}

	// Loop check: Mosquitto knows the bridge mark, so it does not send the
	// bridge its own message back; the marker proves any echo would be here.
	ml := subscribe(t, mq, "mq-loop", "loop/#", 1)
	el := subscribe(t, edge, "edge-loop", "loop/#", 1)
	before := edgeB.Bridges()[0]
	publish(t, edge, "dev", "loop/1", 1, false, "once")
	ml.waitFor(t, 10*time.Second, 1, "loop/1")
	publish(t, mq, "mdev", "loop/marker", 1, false, "m")
	el.waitFor(t, 10*time.Second, 1, "loop/marker")
	if n := len(el.waitFor(t, time.Second, 1, "loop/1")); n != 1 {
		t.Errorf("edge got loop/1 %d times, want 1", n)
	}
	after := edgeB.Bridges()[0]
	if in := after.ForwardedIn - before.ForwardedIn; in != 1 {
		t.Errorf("came in over the bridge: %d, want 1 (the marker only; an echo of loop/1 would be 2)", in)
	}
}

// TestFromMosquitto: Mosquitto's own bridge, configured the way its users
// write it, into the reference broker: both directions with prefixes and
// QoS, the reference broker seeing the try_private mark.
func TestFromMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a Mosquitto container")
	}
	image := os.Getenv(targets.MosquittoImageEnv)
	if image == "" {
		image = targets.DefaultMosquittoImage
	}
	if cli, err := testcontainers.NewDockerClientWithOpts(context.Background()); err != nil {
		t.Skipf("no Docker engine: %v", err)
	} else {
		_, err := cli.ImageInspect(context.Background(), image)
		_ = cli.Close()
		if err != nil {
			t.Skipf("image %s is not present (make deps builds mqttfleet/mosquitto:2.0.11; point %s at it): %v", image, targets.MosquittoImageEnv, err)
		}
	}
	rec := newRecorder()
	_, ref := startBroker(t, rec)
	mqPort := strings.Split(listenAddr(t), ":")[1]
	// Host networking: the container reaches the reference broker on
	// 127.0.0.1, the only address tests may use, and listens there too.
	conf := fmt.Sprintf(`listener %s 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type all
connection ref
address %s
topic sensors/# out 1 site/ fleet/site/
topic cmd/# in 2 site/ fleet/site/
topic loop/# both 1
cleansession true
remote_clientid mq-edge
try_private true
restart_timeout 1 2
`, mqPort, ref)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithFiles(testcontainers.ContainerFile{Reader: strings.NewReader(conf), ContainerFilePath: "/mosquitto/config/mosquitto.conf", FileMode: 0o644}),
		testcontainers.WithEntrypoint("/usr/sbin/mosquitto"),
		testcontainers.WithCmd("-c", "/mosquitto/config/mosquitto.conf"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
		testcontainers.WithWaitStrategy(wait.ForLog(" running").WithStartupTimeout(time.Minute)),
	)
	if c != nil {
		t.Cleanup(func() {
			if t.Failed() {
				if r, err := c.Logs(context.Background()); err == nil {
					b := make([]byte, 64<<10)
					n, _ := r.Read(b)
					t.Logf("mosquitto logs:\n%s", b[:n])
				}
			}
			_ = c.Terminate(context.Background())
		})
	}
	if err != nil {
		if strings.Contains(err.Error(), "No such image") || strings.Contains(err.Error(), "Cannot connect to the Docker daemon") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	// Mosquitto's bridge connects as a client of ours, with the mark.
	rec.wait(t, 30*time.Second, 1, "Mosquitto's bridge CONNECT", func(e events.Event) bool {
		return e.Kind == events.ConnAck && e.ClientID == "mq-edge" && e.Code == 0
	})
	if n := rec.count(func(e events.Event) bool {
		return e.Kind == events.Connect && e.ClientID == "mq-edge" && strings.Contains(e.Detail, "bridge")
	}); n == 0 {
		t.Error("Mosquitto's bridge CONNECT did not carry the try_private mark")
	}
	mq := "127.0.0.1:" + mqPort
	cloudApp := subscribe(t, ref, "cloud-app", "fleet/#", 2)
	edgeDev := subscribe(t, mq, "edge-dev", "site/cmd/#", 2)
	publish(t, mq, "sensor", "site/sensors/t", 2, false, "9")
	if got := cloudApp.waitFor(t, 10*time.Second, 1, "fleet/site/sensors/t"); got[0].QoS != 1 || string(got[0].Payload) != "9" {
		t.Errorf("out from Mosquitto: %v, want payload 9 at QoS 1", topics(got))
	}
	// Mosquitto subscribes on its connect; publish until its subscription
	// is in place (the first command may precede it), then check the copy.
	deadline := time.Now().Add(15 * time.Second)
	for len(edgeDev.got()) == 0 && time.Now().Before(deadline) {
		publish(t, ref, "operator", "fleet/site/cmd/x", 2, false, "go")
		select {
		case <-edgeDev.ch:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if got := edgeDev.waitFor(t, 10*time.Second, 1, "site/cmd/x"); got[0].QoS != 2 || string(got[0].Payload) != "go" {
		t.Errorf("in to Mosquitto: %v, want payload go at QoS 2", topics(got))
	}

	// Loop check from this side: the reference broker does not send
	// Mosquitto's bridge its own message back (it would reappear on
	// Mosquitto after the marker that follows it on the same link).
	ml := subscribe(t, mq, "mq-loop", "loop/#", 1)
	rl := subscribe(t, ref, "ref-loop", "loop/#", 1)
	deadline = time.Now().Add(15 * time.Second)
	for len(rl.got()) == 0 && time.Now().Before(deadline) { // until Mosquitto's loop/# subscription is in place
		publish(t, ref, "probe", "loop/probe", 1, false, "p")
		select {
		case <-rl.ch:
		case <-time.After(200 * time.Millisecond):
		}
	}
	ml.waitFor(t, 10*time.Second, 1, "loop/probe")
	publish(t, mq, "mdev", "loop/1", 1, false, "once")
	rl.waitFor(t, 10*time.Second, 1, "loop/1")
	publish(t, ref, "rdev", "loop/marker", 1, false, "m")
	ml.waitFor(t, 10*time.Second, 1, "loop/marker")
	if n := len(ml.waitFor(t, time.Second, 1, "loop/1")); n != 1 {
		t.Errorf("Mosquitto got loop/1 %d times, want 1 (the reference broker echoed it to the bridge)", n)
	}
}
