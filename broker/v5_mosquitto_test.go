package broker

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// TestV5MosquittoClients round-trips QoS 0/1/2 messages with properties
// between Debian's mosquitto_pub and mosquitto_sub (libmosquitto, an
// independent MQTT 5.0 implementation) through this broker: user
// properties, content type, response topic, correlation data, payload
// format and message expiry arrive as sent.
func TestV5MosquittoClients(t *testing.T) {
	sub, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		t.Skip("mosquitto_sub not installed (Debian package mosquitto-clients); CI has it")
	}
	pubBin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (Debian package mosquitto-clients); CI has it")
	}
	tb := startBroker(t, nil)
	host, port, _ := strings.Cut(tb.tcp, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const n = 3
	// -F: topic|qos|user properties|content type|response topic|correlation data|payload format|expiry|payload
	cmd := exec.CommandContext(ctx, sub, "-V", "mqttv5", "-h", host, "-p", port, "-i", "mq-sub", "-q", "2",
		"-t", "mq/#", "-C", fmt.Sprint(n), "-F", "%t|%q|%P|%C|%R|%D|%F|%E|%p")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	// Publish once the subscription is in place.
	tb.wait(t, events.And(events.Is(events.Subscribed), events.ForClient("mq-sub")))
	for qos := 0; qos <= 2; qos++ {
		pub := exec.CommandContext(ctx, pubBin, "-V", "mqttv5", "-h", host, "-p", port, "-i", fmt.Sprint("mq-pub-", qos),
			"-q", fmt.Sprint(qos), "-t", fmt.Sprint("mq/", qos), "-m", fmt.Sprint("hello ", qos),
			"-D", "publish", "user-property", "site", "lab",
			"-D", "publish", "user-property", "qos", fmt.Sprint(qos),
			"-D", "publish", "content-type", "text/plain",
			"-D", "publish", "response-topic", "mq/reply",
			"-D", "publish", "correlation-data", "corr-7",
			"-D", "publish", "payload-format-indicator", "1",
			"-D", "publish", "message-expiry-interval", "120")
		if b, err := pub.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub QoS %d: %v\n%s", qos, err, b)
		}
	}
	sc := bufio.NewScanner(out)
	got := 0
	for sc.Scan() {
		line := sc.Text()
		t.Logf("mosquitto_sub: %s", line)
		f := strings.Split(line, "|")
		if len(f) != 9 {
			t.Fatalf("line %q has %d fields", line, len(f))
		}
		qos := f[1]
		want := []string{"mq/" + qos, qos, "site:lab qos:" + qos, "text/plain", "mq/reply", "corr-7", "1", "", "hello " + qos}
		for i, w := range want {
			if i == 7 {
				// Forwarded at once, so the interval is 120 or, rounded up, the same.
				if f[i] != "120" && f[i] != "119" {
					t.Errorf("QoS %s: message expiry %q, want 120", qos, f[i])
				}
				continue
			}
			if f[i] != w {
				t.Errorf("QoS %s: field %d = %q, want %q", qos, i, f[i], w)
			}
		}
		got++
	}
	if got != n {
		t.Fatalf("mosquitto_sub printed %d messages, want %d; stderr: %s", got, n, stderr.String())
	}
}
