package conformance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync/atomic"
	"time"

	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/targets"
)

// Timeouts of the probes. wait bounds anything the broker must do promptly;
// quiet is how long "nothing arrives" is watched for where no later packet
// can serve as a barrier. Both leave margin for a loaded 2-core machine.
const (
	wait  = 5 * time.Second
	quiet = 400 * time.Millisecond
)

// runID keeps client IDs and topics of concurrent runs against one broker apart.
var runID = func() string {
	n, err := rand.Int(rand.Reader, big.NewInt(36*36*36*36))
	if err != nil {
		return "0000"
	}
	return fmt.Sprintf("%04s", n.Text(36))
}()

var specSeq atomic.Int64

// env is what a spec body works with: one target, unique names, probes on
// raw connections, and a packet trace of everything they exchanged.
type env struct {
	ctx    context.Context
	target targets.Target
	v5     bool // a 5.0 spec: connections speak protocol level 5
	n      int64
	trace  *trace
	conns  []*client.Raw
	pid    uint16
	// pending holds packets read while awaiting another one (a broker may
	// interleave PUBLISHes with the acknowledgements of a flow).
	pending map[*client.Raw][]packet.Packet
	// retained topics this spec set, cleared at the end so later wildcard
	// subscriptions on a shared broker do not receive them.
	retained []string
}

func newEnv(ctx context.Context, t targets.Target) *env {
	return &env{ctx: ctx, target: t, n: specSeq.Add(1), trace: newTrace(), pending: map[*client.Raw][]packet.Packet{}}
}

// close closes every connection the spec opened and clears the retained
// messages it left (best effort: the verdict is already made).
func (e *env) close() {
	for _, c := range e.conns {
		_ = c.Close()
	}
	if len(e.retained) == 0 {
		return
	}
	u, ok := e.target.Addr("tcp")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), wait)
	defer cancel()
	nc, err := client.DialConn(ctx, u, nil)
	if err != nil {
		return
	}
	defer nc.Close()
	r, ack, err := client.RawConnect(ctx, nc, connectPacket(e.id("clean")))
	if err != nil || ack.ReturnCode != packet.Accepted {
		return
	}
	for _, t := range e.retained {
		_ = r.WritePacket(&packet.Publish{Topic: t, Retain: true})
	}
	_ = r.WritePacket(&packet.Disconnect{})
}

// pubRetained publishes a retained message and remembers the topic for cleanup.
func (e *env) pubRetained(r *client.Raw, topic, payload string, qos byte) {
	e.retained = append(e.retained, topic)
	e.pub(r, topic, payload, qos, true)
}

// id returns a ClientId unique to this spec: tag + run + sequence, at most
// 23 ASCII letters and digits, so every broker must accept it [MQTT-3.1.3-5].
func (e *env) id(tag string) string {
	s := fmt.Sprintf("%.8s%s%d", tag, runID, e.n)
	if len(s) > 23 {
		s = s[len(s)-23:]
	}
	return s
}

// topic returns a topic name unique to this spec.
func (e *env) topic(suffix string) string {
	return fmt.Sprintf("mqf/%s/%d/%s", runID, e.n, suffix)
}

// prefix is the root every topic of this spec lives under.
func (e *env) prefix() string { return fmt.Sprintf("mqf/%s/%d", runID, e.n) }

// nextID returns a fresh non-zero packet identifier.
func (e *env) nextID() uint16 {
	e.pid++
	if e.pid == 0 {
		e.pid = 1
	}
	return e.pid
}

// addr returns the target's URL for a transport, failing when it has none.
func (e *env) addr(transport string) string {
	u, ok := e.target.Addr(transport)
	Expect(ok).To(BeTrue(), "target %s has no %s listener", e.target.Name(), transport)
	return u
}

// dialOn opens a traced connection to the target without sending anything.
func (e *env) dialOn(transport, name string) *client.Raw {
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	nc, err := client.DialConn(ctx, e.addr(transport), nil)
	Expect(err).NotTo(HaveOccurred(), "dial %s", transport)
	r := client.NewRaw(e.trace.wrap(nc, name), e.version())
	e.conns = append(e.conns, r)
	return r
}

// dial opens a traced TCP connection without sending anything.
func (e *env) dial(name string) *client.Raw { return e.dialOn("tcp", name) }

// version is the protocol level of the spec's connections.
func (e *env) version() byte {
	if e.v5 {
		return packet.V5
	}
	return packet.V311
}

// connectFor is connectPacket at the spec's protocol level: a 5.0 CONNECT
// has Clean Start=1 and no properties (Session Expiry Interval 0).
func (e *env) connectFor(id string) *packet.Connect {
	cp := connectPacket(id)
	cp.ProtocolLevel = e.version()
	return cp
}

// connectPacket is a well-formed 3.1.1 CONNECT with CleanSession=1 and a
// keepalive long enough never to matter.
func connectPacket(id string) *packet.Connect {
	return &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanSession: true, KeepAlive: 60, ClientID: id}
}

// connect sends cp on a new connection and returns the CONNACK.
func (e *env) connect(cp *packet.Connect) (*client.Raw, *packet.Connack) {
	nc := e.dial(cp.ClientID).Conn()
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	// RawConnect's Raw holds whatever arrived behind the CONNACK (queued
	// messages of a resumed session), so it replaces the one dial made.
	r, ack, err := client.RawConnect(ctx, nc, cp)
	e.conns = append(e.conns, r)
	Expect(err).NotTo(HaveOccurred(), "CONNECT %s", cp.ClientID)
	return r, ack
}

// connectOK connects cp and requires return code 0.
func (e *env) connectOK(cp *packet.Connect) (*client.Raw, *packet.Connack) {
	r, ack := e.connect(cp)
	Expect(ack.ReturnCode).To(Equal(packet.Accepted), "CONNACK return code for %s", cp.ClientID)
	return r, ack
}

// client connects a clean-session client with the given tag.
func (e *env) client(tag string) *client.Raw {
	r, _ := e.connectOK(e.connectFor(e.id(tag)))
	return r
}

// session connects with CleanSession=0 and returns the session-present flag.
func (e *env) session(id string) (*client.Raw, bool) {
	cp := connectPacket(id)
	cp.CleanSession = false
	r, ack := e.connectOK(cp)
	return r, ack.SessionPresent
}

// send writes a packet, failing the spec on a write error.
func (e *env) send(r *client.Raw, p packet.Packet) {
	Expect(r.WritePacket(p)).To(Succeed(), "write %s", p.Type())
}

// sendBytes writes raw bytes, failing the spec on a write error.
func (e *env) sendBytes(r *client.Raw, b []byte) {
	Expect(r.WriteBytes(b)).To(Succeed(), "write % x", b)
}

// next returns the next packet: one set aside by await, or one that must
// arrive within wait.
func (e *env) next(r *client.Raw) packet.Packet {
	if q := e.pending[r]; len(q) > 0 {
		e.pending[r] = q[1:]
		return q[0]
	}
	p, err := r.ReadPacket(wait)
	Expect(err).NotTo(HaveOccurred(), "read the next packet")
	return p
}

// await reads until a packet of type T with packet identifier id arrives,
// setting other packets aside for next: acknowledgements of a flow may be
// interleaved with deliveries on the same connection.
func await[T packet.Packet](e *env, r *client.Raw, id uint16) T {
	v := setAside[T](e, r, fmt.Sprintf("%T with packet identifier %d", *new(T), id))
	Expect(packetID(v)).To(Equal(id), "packet identifier of %s [MQTT-2.3.1-6]", v.Type())
	return v
}

// setAside reads until a packet of type T arrives, keeping the PUBLISHes
// read before it for next; any other packet fails the spec.
func setAside[T packet.Packet](e *env, r *client.Raw, what string) T {
	for range 1000 {
		p, err := r.ReadPacket(wait)
		Expect(err).NotTo(HaveOccurred(), "waiting for %s", what)
		if v, ok := p.(T); ok {
			return v
		}
		Expect(p.Type()).To(Equal(packet.PUBLISH), "expected %s or a PUBLISH, got %s", what, p.Type())
		e.pending[r] = append(e.pending[r], p)
	}
	Expect(false).To(BeTrue(), "no %s among 1000 packets", what)
	return *new(T)
}

// packetID returns the packet identifier of an acknowledgement.
func packetID(p packet.Packet) uint16 {
	switch v := p.(type) {
	case *packet.Puback:
		return v.PacketID
	case *packet.Pubrec:
		return v.PacketID
	case *packet.Pubrel:
		return v.PacketID
	case *packet.Pubcomp:
		return v.PacketID
	case *packet.Suback:
		return v.PacketID
	case *packet.Unsuback:
		return v.PacketID
	}
	return 0
}

// expect reads the next packet and requires its type.
func expect[T packet.Packet](e *env, r *client.Raw) T {
	p := e.next(r)
	v, ok := p.(T)
	Expect(ok).To(BeTrue(), "expected %T, got %s %+v", *new(T), p.Type(), p)
	return v
}

// nothing requires that no packet arrives within quiet.
func (e *env) nothing(r *client.Raw) {
	Expect(e.pending[r]).To(BeEmpty(), "expected nothing, got packets")
	p, err := r.ReadPacket(quiet)
	if err == nil {
		Expect(p).To(BeNil(), "expected nothing, got %s %+v", p.Type(), p)
	}
	Expect(errors.Is(err, os.ErrDeadlineExceeded)).To(BeTrue(), "expected nothing, got error %v", err)
}

// closed requires the broker to close the connection within wait without
// sending anything more.
func (e *env) closed(r *client.Raw) {
	Expect(e.pending[r]).To(BeEmpty(), "expected the connection closed, got packets")
	Expect(r.ExpectClosed(wait)).To(Succeed(), "the broker must close the connection")
}

// ping sends PINGREQ and requires PINGRESP as the next packet: a barrier
// proving the broker sent nothing else before it on this connection.
func (e *env) ping(r *client.Raw) {
	e.send(r, &packet.Pingreq{})
	p := e.next(r)
	Expect(p.Type()).To(Equal(packet.PINGRESP), "expected PINGRESP, got %s %+v", p.Type(), p)
}

// sub subscribes to filters at QoS qos and returns the SUBACK return codes.
func (e *env) sub(r *client.Raw, qos byte, filters ...string) []byte {
	s := &packet.Subscribe{PacketID: e.nextID()}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, packet.Subscription{Filter: f, QoS: qos})
	}
	e.send(r, s)
	ack := expect[*packet.Suback](e, r)
	Expect(ack.PacketID).To(Equal(s.PacketID), "SUBACK packet identifier [MQTT-2.3.1-7]")
	Expect(ack.ReturnCodes).To(HaveLen(len(filters)), "one SUBACK return code per filter [MQTT-3.8.4-5]")
	return ack.ReturnCodes
}

// subOK subscribes and requires the requested QoS to be granted.
func (e *env) subOK(r *client.Raw, qos byte, filters ...string) {
	codes := e.sub(r, qos, filters...)
	for i, c := range codes {
		Expect(c).To(Equal(qos), "granted QoS for %s", filters[i])
	}
}

// pub publishes and completes the QoS flow as the sender.
func (e *env) pub(r *client.Raw, topic string, payload string, qos byte, retain bool) {
	p := &packet.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	if qos > 0 {
		p.PacketID = e.nextID()
	}
	e.send(r, p)
	switch qos {
	case 0:
		e.handled(r)
	case 1:
		await[*packet.Puback](e, r, p.PacketID)
	case 2:
		await[*packet.Pubrec](e, r, p.PacketID)
		e.send(r, &packet.Pubrel{PacketID: p.PacketID})
		await[*packet.Pubcomp](e, r, p.PacketID)
	}
}

// handled returns once the broker has handled everything r sent before it:
// a PINGREQ's PINGRESP comes after the packets before it on the connection.
// A QoS 0 PUBLISH has no acknowledgement, and without this a spec's next step
// on another connection (a SUBSCRIBE expecting the retained message it set)
// could reach the broker first. PUBLISHes read meanwhile are kept for next.
func (e *env) handled(r *client.Raw) {
	e.send(r, &packet.Pingreq{})
	setAside[*packet.Pingresp](e, r, "PINGRESP after a QoS 0 PUBLISH")
}

// recv reads the next PUBLISH and acknowledges it as its QoS requires.
func (e *env) recv(r *client.Raw) *packet.Publish {
	p := expect[*packet.Publish](e, r)
	e.ack(r, p)
	return p
}

// ack completes the receiver's side of p's QoS flow.
func (e *env) ack(r *client.Raw, p *packet.Publish) {
	switch p.QoS {
	case 1:
		e.send(r, &packet.Puback{PacketID: p.PacketID})
	case 2:
		e.send(r, &packet.Pubrec{PacketID: p.PacketID})
		await[*packet.Pubrel](e, r, p.PacketID)
		e.send(r, &packet.Pubcomp{PacketID: p.PacketID})
	}
}

// recvOn reads PUBLISHes until one on topic arrives (others are acknowledged
// and dropped: wildcard subscriptions may see other specs' traffic).
func (e *env) recvOn(r *client.Raw, topic string) *packet.Publish {
	for range 1000 {
		p := e.recv(r)
		if p.Topic == topic {
			return p
		}
	}
	Expect(false).To(BeTrue(), "no PUBLISH on %s among 1000 packets", topic)
	return nil
}
