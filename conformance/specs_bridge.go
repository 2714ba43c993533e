package conformance

import (
	"context"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/targets"
)

// A server that bridges to another is that server's client, and must
// conform as one [MQTT-7.0.0-1]. The remote here is a reference broker in
// this process, strict about what clients send (it closes and reports a
// violation for any breach), and the target, started again with a bridge
// to it, must carry QoS 2 both ways with no violation reported.

// brokerEvents keeps a broker's events for the spec to look at.
type brokerEvents struct {
	mu  sync.Mutex
	evs []events.Event
}

func (b *brokerEvents) Emit(e events.Event) {
	b.mu.Lock()
	b.evs = append(b.evs, e)
	b.mu.Unlock()
}

func (b *brokerEvents) find(ok func(events.Event) bool) []events.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []events.Event
	for _, e := range b.evs {
		if ok(e) {
			out = append(out, e)
		}
	}
	return out
}

var _ = register(specDef{
	Area: "bridge", Text: "bridges to another server as a conforming client: a strict server accepts its CONNECT, SUBSCRIBE and QoS 2 flows, and messages cross both ways at QoS 2",
	Statements: []string{"MQTT-7.0.0-1"},
	Needs:      []string{"bridges"},
	Body: func(e *env) {
		rec := &brokerEvents{}
		cfg := broker.DefaultConfig()
		cfg.Listeners = []broker.ListenerConfig{{Type: "tcp", Addr: "127.0.0.1:0"}}
		cfg.Events = rec
		remote, err := broker.New(cfg)
		Expect(err).NotTo(HaveOccurred())
		Expect(remote.Start()).To(Succeed())
		DeferCleanup(func() { _ = remote.Close() })
		raddr := strings.TrimPrefix(remote.Addr("tcp"), "tcp://")

		p := e.prefix()
		clean := true
		bc := bridgeconf.Config{Name: "mqf" + runID, Addresses: []string{raddr}, CleanSession: &clean,
			RemoteClientID: e.id("bridge"), Topics: []bridgeconf.Topic{
				{Pattern: "#", Direction: bridgeconf.Out, QoS: 2, LocalPrefix: p + "/out/", RemotePrefix: p + "/cloud/out/"},
				{Pattern: "#", Direction: bridgeconf.In, QoS: 2, LocalPrefix: p + "/in/", RemotePrefix: p + "/cloud/in/"},
			}}
		ctx, cancel := context.WithTimeout(e.ctx, startTimeout)
		defer cancel()
		bt, err := targets.WithBridge(ctx, e.target, bc)
		Expect(err).NotTo(HaveOccurred(), "start %s with a bridge", e.target.Name())
		DeferCleanup(func(ctx SpecContext) {
			if CurrentSpecReport().Failed() {
				if b, err := bt.Logs(ctx); err == nil {
					AddReportEntry(EntryLogs+" (bridging broker)", string(b), ReportEntryVisibilityFailureOrVerbose)
				}
			}
			Expect(bt.Stop(ctx)).To(Succeed())
		})
		e.target = bt
		bridgeID := bc.RemoteClientID
		Eventually(func() int {
			return len(rec.find(func(ev events.Event) bool {
				return ev.Kind == events.Subscribed && ev.ClientID == bridgeID && ev.Topic == p+"/cloud/in/#"
			}))
		}).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).Should(BeNumerically(">=", 1),
			"the bridge's CONNECT accepted and its SUBSCRIBE granted by the remote")

		msgs := make(chan *packet.Publish, 16)
		rc, _, err := client.Dial(e.ctx, "tcp://"+raddr, client.Options{ClientID: e.id("cloud"), CleanSession: true,
			OnMessage: func(m *packet.Publish) { msgs <- m }})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = rc.Close() })
		_, err = rc.Subscribe(e.ctx, packet.Subscription{Filter: p + "/cloud/out/#", QoS: 2})
		Expect(err).NotTo(HaveOccurred())

		// Out: published here at QoS 2, it reaches the remote at QoS 2.
		sub := e.client("sub")
		e.subOK(sub, 2, p+"/in/#")
		e.pub(e.client("pub"), p+"/out/t", "up", 2, false)
		var got *packet.Publish
		Eventually(msgs).WithTimeout(20*time.Second).Should(Receive(&got), "the out message at the remote")
		Expect(got.Topic).To(Equal(p+"/cloud/out/t"), "the remote topic: local prefix replaced by the remote one")
		Expect(got.QoS).To(Equal(byte(2)))
		Expect(string(got.Payload)).To(Equal("up"))

		// In: published at the remote at QoS 2, it arrives here at QoS 2.
		Expect(rc.Publish(e.ctx, p+"/cloud/in/c", 2, false, []byte("down"))).To(Succeed())
		in := e.recvOn(sub, p+"/in/c")
		Expect(in.QoS).To(Equal(byte(2)))
		Expect(string(in.Payload)).To(Equal("down"))

		Expect(rec.find(func(ev events.Event) bool {
			return ev.ClientID == bridgeID && (ev.Kind == events.Violation || (ev.Kind == events.Disconnect && ev.Cause == events.CauseViolation))
		})).To(BeEmpty(), "the remote found no protocol violation in the bridge's packets")
	},
})
