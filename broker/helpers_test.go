package broker

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchBrokerEnv) != "" {
		os.Exit(runBenchBroker())
	}
	if os.Getenv(persistChildEnv) != "" {
		os.Exit(runPersistChild())
	}
	goleak.VerifyTestMain(m)
}

// testBroker is a broker on 127.0.0.1:0 with its event recorder.
type testBroker struct {
	*Broker
	rec *events.Recorder
	tcp string // host:port of the TCP listener
}

// startBroker starts a broker with one TCP listener (plus whatever edit
// adds) and closes it when the test ends.
func startBroker(t *testing.T, edit func(*Config)) *testBroker {
	t.Helper()
	rec := events.NewRecorder()
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Name: "tcp", Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Events = rec
	if edit != nil {
		edit(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return &testBroker{Broker: b, rec: rec, tcp: strings.TrimPrefix(b.Addr("tcp"), "tcp://")}
}

// dial opens a TCP connection to the broker, closed when the test ends.
func (tb *testBroker) dial(t *testing.T) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", tb.tcp, 5*time.Second)
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc
}

// raw connects a raw client with cp and checks the CONNACK code.
func (tb *testBroker) raw(t *testing.T, cp *packet.Connect, wantCode byte) (*client.Raw, *packet.Connack) {
	t.Helper()
	if cp.ProtocolName == "" {
		cp.ProtocolName, cp.ProtocolLevel = "MQTT", packet.V311
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, ack, err := client.RawConnect(ctx, tb.dial(t), cp)
	if err != nil {
		t.Fatalf("raw connect %q: %v", cp.ClientID, err)
	}
	if ack.ReturnCode != wantCode {
		t.Fatalf("raw connect %q: CONNACK code %d, want %d", cp.ClientID, ack.ReturnCode, wantCode)
	}
	return r, ack
}

// connect connects a raw client with a clean session.
func (tb *testBroker) connect(t *testing.T, id string) *client.Raw {
	t.Helper()
	r, _ := tb.raw(t, &packet.Connect{ClientID: id, CleanSession: true}, 0)
	return r
}

// subscribe sends SUBSCRIBE and returns the SUBACK codes.
func subscribe(t *testing.T, r *client.Raw, subs ...packet.Subscription) []byte {
	t.Helper()
	if err := r.WritePacket(&packet.Subscribe{PacketID: 1, Subscriptions: subs}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	p := expect[*packet.Suback](t, r)
	return p.ReturnCodes
}

// expect reads the next packet and fails unless it is a T.
func expect[T packet.Packet](t *testing.T, r *client.Raw) T {
	t.Helper()
	p, err := r.ReadPacket(5 * time.Second)
	if err != nil {
		t.Fatalf("read packet: %v", err)
	}
	v, ok := p.(T)
	if !ok {
		var zero T
		t.Fatalf("got %s, want %T", p.Type(), zero)
	}
	return v
}

// expectNothing checks that no packet arrives within d.
func expectNothing(t *testing.T, r *client.Raw, d time.Duration) {
	t.Helper()
	p, err := r.ReadPacket(d)
	if err == nil {
		t.Fatalf("got unexpected %s", p.Type())
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v", err)
	}
}

// publish sends a PUBLISH and completes its QoS flow.
func publish(t *testing.T, r *client.Raw, p *packet.Publish) {
	t.Helper()
	if err := r.WritePacket(p); err != nil {
		t.Fatalf("publish: %v", err)
	}
	switch p.QoS {
	case 1:
		expect[*packet.Puback](t, r)
	case 2:
		expect[*packet.Pubrec](t, r)
		if err := r.WritePacket(&packet.Pubrel{PacketID: p.PacketID}); err != nil {
			t.Fatalf("pubrel: %v", err)
		}
		expect[*packet.Pubcomp](t, r)
	}
}

// keepaliveOf returns the keepalive the broker applies to clientID's
// connection. The mutexes order this read after the handshake's write.
func (tb *testBroker) keepaliveOf(t *testing.T, clientID string) time.Duration {
	t.Helper()
	tb.mu.RLock()
	s := tb.sessions[clientID]
	tb.mu.RUnlock()
	if s == nil {
		t.Fatalf("no session %q", clientID)
	}
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		t.Fatalf("session %q has no connection", clientID)
	}
	return c.keepalive
}

// wait waits for an event matching m.
func (tb *testBroker) wait(t *testing.T, m events.Match) events.Event {
	t.Helper()
	e, err := tb.rec.WaitFor(10*time.Second, m)
	if err != nil {
		t.Fatalf("wait for broker event: %v", err)
	}
	return e
}

func sub(filter string, qos byte) packet.Subscription {
	return packet.Subscription{Filter: filter, QoS: qos}
}

func disconnectOf(id string) events.Match {
	return events.And(events.Is(events.Disconnect), events.ForClient(id))
}
