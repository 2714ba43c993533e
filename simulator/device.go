package simulator

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/simulator/payload"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// device is one simulated device. It owns no goroutine: timers call into it
// and connect attempts run on short-lived goroutines. mu guards everything
// below it; it is never held across network I/O.
type device struct {
	f        *Fleet
	g        *groupRT
	idx      int
	clientID string
	topic    string
	subs     []string
	local    net.IP
	pub      *pubState
	recv     *recvState
	body     payload.Body
	sess     *client.Session // persistent sessions only: kept across this device's connections

	mu          sync.Mutex
	rng         *rand.Rand
	conn        Conn
	gen         uint32 // connection generation: stale callbacks compare it
	online      bool
	gone        bool // left for good: online time over, or retries exhausted
	everOnline  bool
	connectedAt time.Time
	attempts    int // failed attempts in a row
	backoff     int // step of the reconnect backoff (Reconnect.ResetAfter)
	published   int
	timer       *time.Timer // next publish
	life        *time.Timer // next churn roll, online end, or reconnect
	// early holds driver callbacks (Lost, Reconnected) that arrived for the
	// connection being set up, before connect recorded it: the link can
	// drop between the CONNACK and connect taking the lock. connect replays
	// them in order once the connection is recorded, so such a loss still
	// counts one disconnect and runs the reconnect policy once.
	early []earlyCall
}

// earlyCall is one driver callback that arrived before connect recorded the
// connection of its generation.
type earlyCall struct {
	lost bool // Lost (err); else Reconnected (lat)
	err  error
	lat  time.Duration
}

// maxEarly bounds the callbacks kept for a connection being set up; a
// driver alternates Lost and Reconnected, so a handful is plenty.
const maxEarly = 8

// deferLocked keeps c for replay when gen's connection is still being set
// up (connect has not recorded it yet) and reports whether it did.
func (d *device) deferLocked(gen uint32, c earlyCall) bool {
	if d.gen != gen || d.conn != nil || d.online || d.gone || len(d.early) >= maxEarly {
		return false
	}
	d.early = append(d.early, c)
	return true
}

// scheduleStart arms the device's first connect at its ramp-up offset.
func (d *device) scheduleStart() {
	off := StartOffset(d.g.g.Lifecycle, d.idx-d.g.base, d.rng)
	d.mu.Lock()
	d.life = time.AfterFunc(time.Until(d.f.start.Add(off)), d.connect)
	d.mu.Unlock()
}

// connect makes one connect attempt; it runs on a timer goroutine.
func (d *device) connect() {
	f := d.f
	if !f.enter() {
		return
	}
	defer f.wg.Done()
	d.mu.Lock()
	if d.gone || d.conn != nil {
		d.mu.Unlock()
		return
	}
	d.gen++
	gen := d.gen
	d.early = nil
	d.mu.Unlock()

	select {
	case f.connSem <- struct{}{}:
	case <-f.ctx.Done():
		return
	}
	h := &handler{d: d, gen: gen}
	params := d.params(h)
	start := time.Now()
	f.ids.attempt(d.clientID, d, start)
	f.emit(events.Event{Kind: events.Connect, ClientID: d.clientID, Device: d.idx + 1, Time: start,
		KeepAlive: int(params.KeepAlive / time.Second), Clean: params.Clean})
	conn, err := f.driver.Connect(f.ctx, params)
	lat := time.Since(start)
	<-f.connSem // the handshake is over; subscribing does not hold a slot
	if err != nil {
		code := -1 // no CONNACK at all: dial or I/O failure
		var ce *ConnackError
		if errors.As(err, &ce) {
			code = int(ce.Code)
			f.codes[ce.Code].Add(1)
		} else {
			f.codes[256].Add(1)
		}
		f.Live.ConnectFailures.Add(1)
		f.emit(events.Event{Kind: events.ConnAck, ClientID: d.clientID, Device: d.idx + 1, Code: code,
			Latency: lat, Detail: err.Error()})
		if f.ctx.Err() == nil {
			d.retry()
		}
		return
	}
	d.mu.Lock()
	early := d.early
	d.early = nil
	if d.gone || f.isClosing() || d.gen != gen {
		d.mu.Unlock()
		conn.Disconnect()
		return
	}
	d.conn, d.online, d.connectedAt, d.attempts = conn, true, time.Now(), 0
	if d.g.g.Reconnect.ResetAfter == 0 {
		d.backoff = 0
	}
	again := d.everOnline
	d.everOnline = true
	d.mu.Unlock()
	d.connected(lat, again)
	if len(early) > 0 {
		// The link already ended (and maybe came back through the
		// driver's own reconnect): account it as if the callbacks had come
		// now, which also arms the reconnect policy or the next session.
		for _, c := range early {
			if c.lost {
				d.lost(gen, c.err)
			} else {
				d.reconnected(gen, c.lat)
			}
		}
		return
	}
	d.subscribe(conn, gen)
	d.afterConnect(gen, !again)
}

func (f *Fleet) isClosing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closing
}

// connected counts an accepted connection.
func (d *device) connected(lat time.Duration, again bool) {
	f := d.f
	f.codes[0].Add(1)
	f.Live.Connected.Add(1)
	f.Live.Connects.Add(1)
	if again {
		f.Live.Reconnects.Add(1)
	} else {
		// The last first-connect marks the end of the ramp-up.
		f.lastFirstConnect.Store(time.Now().UnixNano())
	}
	f.emit(events.Event{Kind: events.ConnAck, ClientID: d.clientID, Device: d.idx + 1, Latency: lat})
}

// subscribe sends the device's subscriptions and opens its expected ranges.
func (d *device) subscribe(conn Conn, gen uint32) {
	if len(d.subs) == 0 {
		return
	}
	f := d.f
	subs := make([]profile.Subscription, len(d.subs))
	for i, s := range d.g.g.Subscriptions {
		subs[i] = profile.Subscription{Filter: d.subs[i], QoS: s.QoS}
	}
	start := time.Now()
	granted, err := conn.Subscribe(f.ctx, subs)
	lat := time.Since(start)
	if err != nil {
		f.log.Debug("subscribe failed", "device", d.idx, "err", err)
		return
	}
	for i, s := range subs {
		q := byte(s.QoS)
		if i < len(granted) {
			q = granted[i]
		}
		f.emit(events.Event{Kind: events.Subscribed, ClientID: d.clientID, Device: d.idx + 1, Topic: s.Filter,
			QoS: q, Latency: lat})
	}
	d.mu.Lock()
	live := d.gen == gen && d.online
	d.mu.Unlock()
	if live {
		f.tr.listen(d.recv, d.g.persistent)
	}
}

// afterConnect arms the publish timer and the lifecycle timer. The first
// publish of a device lands at a seeded point of its first interval, so a
// fleet that connected at once does not publish in lockstep.
func (d *device) afterConnect(gen uint32, first bool) {
	g := d.g.g
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gen != gen || !d.online {
		return
	}
	if g.Publish != nil {
		wait := jittered(g.Publish.Interval, g.Publish.Jitter, d.rng)
		if first {
			wait = time.Duration(d.rng.Int64N(int64(g.Publish.Interval))) + 1
		}
		d.timer = time.AfterFunc(wait, func() { d.publish(gen) })
	}
	l := g.Lifecycle
	switch {
	case l.Online > 0 && (l.Churn == nil || l.Online <= l.Churn.Every):
		d.life = time.AfterFunc(l.Online, func() { d.leave(gen, profile.ChurnClean, true) })
	case l.Churn != nil && l.Churn.Probability > 0:
		d.life = time.AfterFunc(l.Churn.Every, func() { d.roll(gen) })
	}
}

// roll is a churn roll: leave with the configured probability.
func (d *device) roll(gen uint32) {
	l := d.g.g.Lifecycle
	d.mu.Lock()
	if d.gen != gen || !d.online {
		d.mu.Unlock()
		return
	}
	leave := d.rng.Float64() < l.Churn.Probability
	online := time.Since(d.connectedAt)
	if !leave {
		if l.Online > 0 && online+l.Churn.Every >= l.Online {
			d.life = time.AfterFunc(l.Online-online, func() { d.leave(gen, profile.ChurnClean, true) })
		} else {
			d.life = time.AfterFunc(l.Churn.Every, func() { d.roll(gen) })
		}
	}
	d.mu.Unlock()
	if leave {
		d.leave(gen, l.Churn.Mode, false)
	}
}

// leave ends the connection on purpose: DISCONNECT (clean) or a dropped
// link (drop). forGood devices never come back; churned ones return after
// the churn's offline time.
func (d *device) leave(gen uint32, mode string, forGood bool) {
	f := d.f
	d.mu.Lock()
	if d.gen != gen || d.conn == nil {
		d.mu.Unlock()
		return
	}
	conn, wasOnline := d.conn, d.online
	d.conn, d.online = nil, false
	d.gen++
	d.gone = d.gone || forGood
	d.stopTimersLocked()
	d.mu.Unlock()
	cause := events.CauseClientDisconnect
	if mode == profile.ChurnDrop {
		cause = events.Cause("dropped")
		conn.Drop()
	} else {
		conn.Disconnect()
	}
	if wasOnline {
		f.Live.Connected.Add(-1)
	}
	f.Live.Disconnects.Add(1)
	f.emit(events.Event{Kind: events.Disconnect, ClientID: d.clientID, Device: d.idx + 1, Cause: cause})
	if d.recv != nil {
		f.tr.pause(d.recv, time.Now(), forGood)
	}
	if forGood {
		return
	}
	off := time.Duration(0)
	if c := d.g.g.Lifecycle.Churn; c != nil {
		off = c.Offline
	}
	d.mu.Lock()
	if !d.gone {
		d.life = time.AfterFunc(off, d.connect)
	}
	d.mu.Unlock()
}

// lost handles a link that ended without the device asking.
func (d *device) lost(gen uint32, err error) {
	f := d.f
	now := time.Now()
	d.mu.Lock()
	if d.gen != gen || !d.online {
		d.deferLocked(gen, earlyCall{lost: true, err: err})
		d.mu.Unlock()
		return
	}
	connectedAt := d.connectedAt
	d.online = false
	if ra := d.g.g.Reconnect.ResetAfter; ra > 0 && now.Sub(connectedAt) >= ra {
		d.backoff = 0 // the link lasted: the next outage starts from Delay
	}
	if !d.g.autoReconnect {
		d.conn = nil
		d.gen++
	}
	d.stopTimersLocked()
	d.mu.Unlock()
	f.Live.Connected.Add(-1)
	f.Live.Disconnects.Add(1)
	cause := events.CauseIOError
	if other, ok := f.ids.takenOver(d.clientID, d, connectedAt); ok {
		cause = events.CauseTakeover
		f.Live.Takeovers.Add(1)
		f.emit(events.Event{Kind: events.Takeover, ClientID: d.clientID, Device: d.idx + 1,
			Detail: "client ID reconnected by device " + itoa(other.idx)})
	}
	detail, code := "", 0
	if err != nil {
		detail = err.Error()
	}
	// An MQTT 5 server said why it dropped us: keep its reason code.
	if re := (*client.ReasonError)(nil); errors.As(err, &re) && re.Packet == "DISCONNECT" {
		code = int(re.Code)
		if cause == events.CauseIOError {
			cause = events.CauseServerDisconnect
		}
	}
	f.emit(events.Event{Kind: events.Disconnect, ClientID: d.clientID, Device: d.idx + 1, Cause: cause, Code: code, Detail: detail})
	if d.recv != nil {
		f.tr.pause(d.recv, now, false)
	}
	if !d.g.autoReconnect {
		d.retry()
	}
}

// retry schedules the next connect attempt by the reconnect policy.
func (d *device) retry() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return
	}
	d.attempts++
	d.backoff++
	r := d.g.g.Reconnect
	if r.MaxAttempts > 0 && d.attempts > r.MaxAttempts {
		d.gone = true
		return
	}
	r.MaxAttempts = 0 // counted above, on failures only; the wait follows the backoff step
	wait, ok := ReconnectDelay(r, d.backoff, d.rng)
	if !ok {
		d.gone = true
		return
	}
	d.life = time.AfterFunc(wait, d.connect)
}

// reconnected is a driver's own reconnect succeeding (paho auto-reconnect).
func (d *device) reconnected(gen uint32, lat time.Duration) {
	d.mu.Lock()
	if d.gen != gen || d.online || d.conn == nil || d.gone {
		d.deferLocked(gen, earlyCall{lat: lat})
		d.mu.Unlock()
		return
	}
	d.online, d.connectedAt = true, time.Now()
	conn := d.conn
	d.mu.Unlock()
	d.connected(lat, true)
	if !d.f.enter() {
		return
	}
	// The library calls us on its own goroutine, which must not block on a
	// SUBACK; subscribing takes a goroutine of its own.
	go func() {
		defer d.f.wg.Done()
		d.subscribe(conn, gen)
		d.afterConnect(gen, false)
	}()
}

// publish sends one message and arms the next.
func (d *device) publish(gen uint32) {
	f := d.f
	f.pubMu.RLock()
	defer f.pubMu.RUnlock()
	if !f.publishing {
		return
	}
	pub := d.g.g.Publish
	now := time.Now()
	d.mu.Lock()
	if d.gen != gen || !d.online || (pub.Count > 0 && d.published >= pub.Count) {
		d.mu.Unlock()
		return
	}
	conn := d.conn
	d.published++
	last := pub.Count > 0 && d.published == pub.Count
	seq := d.pub.send(now.UnixNano())
	var msg []byte
	if !pub.NoHeader {
		msg = payload.AppendHeader(make([]byte, 0, payload.HeaderSize+64), payload.Header{
			Run: f.run, Device: uint32(d.idx), Seq: seq, Sent: now})
	}
	msg = d.body.Append(msg, seq, now)
	d.mu.Unlock()

	action := Send
	if f.cfg.Tamper != nil {
		action = f.cfg.Tamper(d.idx, seq)
	}
	sends := 1
	switch action {
	case Skip:
		sends = 0
		f.Live.Sent.Add(1) // it counts as sent and lost on the way
	case Repeat:
		sends = 2
	}
	for i := 0; i < sends; i++ {
		if err := conn.Publish(f.ctx, d.topic, byte(pub.QoS), pub.Retain, msg); err != nil {
			f.log.Debug("publish failed", "device", d.idx, "err", err)
			break
		}
		f.Live.Sent.Add(1)
		f.emit(events.Event{Kind: events.PublishSent, ClientID: d.clientID, Device: d.idx + 1, Topic: d.topic,
			QoS: byte(pub.QoS), Retain: pub.Retain, Size: len(msg), Seq: seq, Time: now})
	}
	if last {
		f.publisherDone()
	}
	d.mu.Lock()
	if d.gen == gen && d.online && (pub.Count == 0 || d.published < pub.Count) {
		d.timer = time.AfterFunc(jittered(pub.Interval, pub.Jitter, d.rng), func() { d.publish(gen) })
	}
	d.mu.Unlock()
}

// message accounts one delivered PUBLISH.
func (d *device) message(topic string, b []byte, qos byte, dup, retain bool) {
	f := d.f
	now := time.Now()
	f.Live.Received.Add(1)
	e := events.Event{Kind: events.PublishReceived, ClientID: d.clientID, Device: d.idx + 1, Topic: topic,
		QoS: qos, Dup: dup, Retain: retain, Size: len(b), Time: now}
	if h, err := payload.ParseHeader(b); err == nil {
		if h.Run != f.run {
			f.tr.foreign.Add(1)
		} else {
			e.Seq = h.Seq
			e.Latency = now.Sub(h.Sent)
			if d.recv != nil && f.tr.receive(d.recv, int32(h.Device), h.Seq) {
				f.Live.Duplicates.Add(1)
			}
		}
	}
	f.emit(e)
}

// stop ends the device at the end of the run: timers off, clean DISCONNECT.
func (d *device) stop() {
	d.mu.Lock()
	d.gone = true
	d.gen++
	conn, online := d.conn, d.online
	d.conn, d.online = nil, false
	d.stopTimersLocked()
	if d.life != nil {
		d.life.Stop()
	}
	d.mu.Unlock()
	if conn == nil {
		return
	}
	conn.Disconnect()
	if online {
		d.f.Live.Connected.Add(-1)
		d.f.Live.Disconnects.Add(1)
		d.f.emit(events.Event{Kind: events.Disconnect, ClientID: d.clientID, Device: d.idx + 1, Cause: events.CauseShutdown})
	}
}

func (d *device) stopTimersLocked() {
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.life != nil {
		d.life.Stop()
	}
}

// params builds what the driver needs for one attempt.
func (d *device) params(h *handler) *ConnectParams {
	g := d.g.g
	v := d.f.vars(d.g, d.idx)
	v.ClientID = d.clientID
	p := &ConnectParams{
		Addr: d.f.addr, Transport: g.Transport, TLS: d.f.cfg.TLS, LocalAddr: d.local, Device: d.idx,
		ClientID: d.clientID, Username: d.g.user.Render(v), Password: d.g.pass.Render(v),
		Clean: g.IsClean(), KeepAlive: g.KeepAliveOrDefault(), Protocol: g.Protocol,
		Reconnect: g.Reconnect, Handler: h, Session: d.sess,
	}
	if n := g.Netem; n != nil {
		switch {
		case n.Proxy != "":
			p.Addr = n.Proxy
		case d.f.cfg.Netem != nil:
			px, group := d.f.cfg.Netem, n.Group
			p.Dial = func(ctx context.Context) (net.Conn, error) { return px.Dial(ctx, group) }
		}
	}
	if g.Protocol == 5 {
		p.Props, p.PublishProps = d.g.v5Props(v)
		p.TopicAliases = g.TopicAlias
	}
	if g.Will != nil {
		p.Will = &profile.Will{Topic: d.g.willTopic.Render(v), Payload: d.g.willBody.Render(v), QoS: g.Will.QoS, Retain: g.Will.Retain}
	}
	return p
}

// handler binds driver callbacks to one connection generation of a device.
type handler struct {
	d   *device
	gen uint32
}

func (h *handler) Message(topic string, b []byte, qos byte, dup, retain bool) {
	h.d.message(topic, b, qos, dup, retain)
}

func (h *handler) Acked(qos, code byte, lat time.Duration) {
	d := h.d
	d.f.Live.Acked.Add(1)
	d.f.emit(events.Event{Kind: events.PublishAcked, ClientID: d.clientID, Device: d.idx + 1, QoS: qos, Code: int(code), Latency: lat})
}

func (h *handler) Refused(qos, code byte, pkt string) {
	d := h.d
	d.f.emit(events.Event{Kind: events.PublishFailed, ClientID: d.clientID, Device: d.idx + 1, QoS: qos, Code: int(code), Detail: pkt})
}

func (h *handler) Lost(err error) { h.d.lost(h.gen, err) }

// AliasSent counts a PUBLISH sent with a Topic Alias in the device's group.
func (h *handler) AliasSent(fresh bool) {
	if fresh {
		h.d.g.aliasesSet.Add(1)
	} else {
		h.d.g.aliasOnly.Add(1)
	}
}

func (h *handler) Reconnecting() { h.d.f.ids.attempt(h.d.clientID, h.d, time.Now()) }

func (h *handler) Reconnected(lat time.Duration, _ bool) { h.d.reconnected(h.gen, lat) }

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	if i == 0 {
		return "0"
	}
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
