package broker

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
)

// TestV5SharedMosquittoClients shares a subscription between two
// `mosquitto_sub -V mqttv5` processes (libmosquitto, an independent 5.0
// client, subscribing with a Subscription Identifier) and publishes ten
// QoS 1 messages with `mosquitto_pub -l`: with both members connected and
// free, round robin gives each member every other message.
func TestV5SharedMosquittoClients(t *testing.T) {
	subBin, pubBin := mosquittoClientBins(t)
	tb := startBroker(t, nil)
	host, port, _ := strings.Cut(tb.tcp, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const n = 10
	got := make([][]string, 2)
	var wg sync.WaitGroup
	var cmds []*exec.Cmd
	for i := range got {
		id := fmt.Sprint("mq-share-", i)
		// -F %p: the payload; -C: exit after this many messages.
		cmd := exec.CommandContext(ctx, subBin, "-V", "mqttv5", "-h", host, "-p", port, "-i", id, "-q", "1",
			"-t", "$share/grp/mqs/#", "-D", "subscribe", "subscription-identifier", fmt.Sprint(i+1),
			"-C", fmt.Sprint(n/2), "-F", "%p")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				got[i] = append(got[i], sc.Text())
			}
		}()
		tb.wait(t, events.And(events.Is(events.Subscribed), events.ForClient(id)))
	}
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprint("job-", i)
	}
	pub := exec.CommandContext(ctx, pubBin, "-V", "mqttv5", "-h", host, "-p", port, "-i", "mq-share-pub",
		"-q", "1", "-t", "mqs/jobs", "-l")
	pub.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if b, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, b)
	}
	wg.Wait() // each mosquitto_sub exits after n/2 messages, or at the deadline
	for _, cmd := range cmds {
		_ = cmd.Wait()
	}
	all := slices.Concat(got[0], got[1])
	slices.Sort(all)
	want := slices.Clone(lines)
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("members got %v and %v; want every job once across the group", got[0], got[1])
	}
	if len(got[0]) != n/2 || len(got[1]) != n/2 {
		t.Errorf("members got %d and %d messages, want %d each (round robin)", len(got[0]), len(got[1]), n/2)
	}
}
