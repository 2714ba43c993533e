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
	sub, pubBin := mosquittoClientBins(t)
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

// TestV5MosquittoTopicAliases: Topic Aliases between libmosquitto and this
// broker, with the broker's own aliases on (the default). mosquitto_pub -l
// with a Topic Alias sends the topic once and the alias alone for the later
// lines; the broker resolves them. mosquitto_sub, which gives no Topic
// Alias Maximum, gets every topic in full [MQTT-3.1.2-27], while a client
// that gives one gets the broker's aliases for the same messages.
// (libmosquitto 2.0.11 cannot resolve aliases it receives, though
// mosquitto_sub -D connect topic-alias-maximum lets it ask for them: see
// docs/broker.md.)
func TestV5MosquittoTopicAliases(t *testing.T) {
	subBin, pubBin := mosquittoClientBins(t)
	tb := startBroker(t, nil)
	host, port, _ := strings.Cut(tb.tcp, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	lines := []string{"l1", "l2", "l3"}
	cmd := exec.CommandContext(ctx, subBin, "-V", "mqttv5", "-h", host, "-p", port, "-i", "al-sub",
		"-t", "al/#", "-C", fmt.Sprint(len(lines)), "-F", "%t|%p")
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
	tb.wait(t, events.And(events.Is(events.Subscribed), events.ForClient("al-sub")))
	aliased := tb.aliasClient(t, "al-raw", u16(5), "al/#", 0)

	pub := exec.CommandContext(ctx, pubBin, "-V", "mqttv5", "-h", host, "-p", port, "-i", "al-pub",
		"-t", "al/lines", "-l", "-D", "publish", "topic-alias", "1")
	pub.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if b, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub -l: %v\n%s", err, b)
	}

	sc := bufio.NewScanner(out)
	got := 0
	for sc.Scan() {
		if want := "al/lines|" + lines[got]; sc.Text() != want {
			t.Errorf("mosquitto_sub line %d: %q, want %q", got, sc.Text(), want)
		}
		got++
	}
	if got != len(lines) {
		t.Fatalf("mosquitto_sub printed %d messages, want %d; stderr: %s", got, len(lines), stderr.String())
	}
	for i, want := range []struct {
		topic string
		alias uint16
	}{{"al/lines", 1}, {"", 1}, {"", 1}} {
		if topic, alias := wireTopic(t, aliased); topic != want.topic || alias != want.alias {
			t.Errorf("aliasing client, message %d: topic %q alias %d, want %q alias %d", i, topic, alias, want.topic, want.alias)
		}
	}
}

// mosquittoClientBins finds Debian's mosquitto_sub and mosquitto_pub, or
// skips the test: `make test` installs them (scripts/deps.sh).
func mosquittoClientBins(t *testing.T) (sub, pub string) {
	t.Helper()
	sub, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		t.Skip("mosquitto_sub not installed (Debian package mosquitto-clients); CI has it")
	}
	pub, err = exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (Debian package mosquitto-clients); CI has it")
	}
	return sub, pub
}
