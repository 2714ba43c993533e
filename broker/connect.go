package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// takeoverWait bounds how long a new connection waits for the connection it
// replaces to finish its cleanup (will, session detach).
const takeoverWait = 5 * time.Second

// testHookAdmitted, when set by a test, runs after a connection passed the
// max_connections check and before it attaches, to widen that window.
var testHookAdmitted func()

// handshake reads CONNECT, applies the connection rules and sends CONNACK.
// It reports whether the connection was accepted.
//
//go:noinline
func (c *conn) handshake() bool {
	b := c.b
	_ = c.rd.nc.SetReadDeadline(time.Now().Add(b.cfg.ConnectTimeout))
	// Before CONNECT nobody is known: the first packet may be no larger than
	// a legal CONNECT (max_connect_size), whatever max_packet_size allows.
	p, err := c.readPacket(b.cfg.connectLimit())
	if err != nil {
		if errors.Is(err, packet.ErrUnsupportedProtocolLevel) {
			// A valid name with an unknown level: CONNACK 1, then close [MQTT-3.1.2-2].
			c.refuse(packet.RefusedProtocolVersion, "MQTT-3.1.2-2", err.Error())
			return false
		}
		c.readFailed(err)
		return false
	}
	cp, ok := p.(*packet.Connect)
	if !ok {
		c.violation("MQTT-3.1.0-1", "first packet is "+p.Type().String()+", not CONNECT")
		return false
	}
	c.lastRead = b.since()
	ev := events.Event{Kind: events.Connect, ClientID: cp.ClientID, Remote: c.remote, KeepAlive: int(cp.KeepAlive), Clean: cp.CleanSession}
	if cp.Bridge {
		ev.Detail = "bridge (protocol level with the try_private bit)"
	}
	b.emit(ev)

	if cp.ProtocolLevel == packet.V5 {
		// Every answer, refusals included, is in the 5.0 form from here on.
		c.version = packet.V5
	}
	switch {
	case cp.ProtocolName == "MQTT" && cp.ProtocolLevel == packet.V311, cp.ProtocolName == "MQIsdp" && cp.ProtocolLevel == packet.V31,
		cp.ProtocolName == "MQTT" && cp.ProtocolLevel == packet.V5:
	case cp.ProtocolName != "MQTT" && cp.ProtocolName != "MQIsdp":
		// Not MQTT at all: close without answering [MQTT-3.1.2-1].
		c.violation("MQTT-3.1.2-1", fmt.Sprintf("protocol name %q", cp.ProtocolName))
		return false
	default:
		// A name that does not go with the level: 0x01 (3.1.1), 0x84 (5.0).
		c.refuse(packet.RefusedProtocolVersion, "MQTT-3.1.2-2", fmt.Sprintf("protocol %q level %d", cp.ProtocolName, cp.ProtocolLevel))
		return false
	}
	c.version = cp.ProtocolLevel
	c.bridge = cp.Bridge
	c.keepalive = time.Duration(cp.KeepAlive) * time.Second
	c.username = cp.Username
	c.connectExpiry = connectExpiry(cp)
	if c.v5() {
		c.noteConnect5(cp) // Server Keep Alive, Response Information, outgoing aliases
	}

	id, assigned := cp.ClientID, false
	if id == "" {
		if !cp.CleanSession && !c.v5() {
			c.refuse(packet.RefusedIdentifierRejected, "MQTT-3.1.3-8", "empty client ID with clean session 0")
			return false
		}
		// [MQTT-3.1.3-6] [MQTT-3.2.2-16] assign a unique ID; the prefix keeps it apart from chosen IDs.
		id = "mqttfleet-auto-" + strconv.FormatUint(b.nextAnon.Add(1), 36)
		assigned = true
	}
	c.clientID = id
	if !assigned && !b.admitsClientID(id) {
		c.refuse(packet.RefusedIdentifierRejected, "MQTT-3.1.3-8", "client ID matches none of client_id_prefixes")
		return false
	}
	if c.v5() && cp.Props != nil && cp.Props.HasAuthMethod {
		// Enhanced authentication (enhanced_auth.go) replaces the password check.
		if !c.authenticateEnhanced(cp) {
			return false
		}
	} else if code := b.auth.Authenticate(cp.Username, cp.Password, cp.UsernameFlag, cp.PasswordFlag); code != packet.Accepted {
		c.refuse(code, "", "authentication refused")
		return false
	}
	if c.v5() {
		if code, stmt, why := c.refuseConnect5(cp); code != 0 {
			c.refuse(code, stmt, why) // a will beyond Maximum QoS or Retain Available
			return false
		}
	}
	if max := b.cfg.MaxConnections; max > 0 {
		// Reserve the slot before CONNACK: a check of the connected count
		// alone lets concurrent handshakes all pass it. finish frees it.
		if b.slots.Add(1) > int64(max) {
			b.slots.Add(-1)
			c.refuse(packet.RefusedServerUnavailable, "", fmt.Sprintf("max_connections %d reached", max))
			return false
		}
		c.slot = true
	}
	if testHookAdmitted != nil {
		testHookAdmitted()
	}
	c.will = cp.Will
	// This goroutine writes CONNACK (and a resumed session's resends) itself
	// instead of starting a writer: one goroutine less per connect.
	c.omu.Lock()
	c.writing = true
	c.omu.Unlock()
	mark := b.durableMark()
	if !c.attach(cp, assigned) {
		return false
	}
	// CONNACK is queued, not written yet (this goroutine writes it below):
	// a persistent session is on disk before the client hears it exists.
	if !c.durableWait(mark) {
		return false
	}
	b.wg.Add(1)
	c.writeLoop()
	return true
}

// refuse writes a CONNACK with a non-zero code and closes the connection.
// Nothing else is queued on a refused connection, so it is written directly.
// code is a 3.1.1 return code, sent to a 5.0 client as its 5.0 reason code,
// or a 5.0 reason code (0x80 or more) for a 5.0 client.
func (c *conn) refuse(code byte, statement, detail string) {
	if code < 0x80 {
		code = c.connackCode(code)
	}
	_ = c.rd.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = packet.Encode(c.rd.nc, &packet.Connack{ReturnCode: code}, c.version)
	c.b.emit(events.Event{Kind: events.ConnAck, ClientID: c.clientID, Remote: c.remote, Code: int(code), Statement: statement, Detail: detail})
	c.b.log.Debug("connection refused", "client", c.clientID, "remote", c.remote, "code", code, "statement", statement, "detail", detail)
	c.shutdown(events.CauseRefused, statement, detail)
}

// attach takes over any connection holding the client ID [MQTT-3.1.4-2],
// resumes or creates the session [MQTT-3.1.2-4] [MQTT-3.1.2-6], queues
// CONNACK and resends unacknowledged messages [MQTT-4.4.0-1].
func (c *conn) attach(cp *packet.Connect, assigned bool) bool {
	b, clean := c.b, cp.CleanSession
	for try := 0; try < 100; try++ {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			c.shutdown(events.CauseShutdown, "", "broker closing")
			return false
		}
		s := b.sessions[c.clientID]
		var old *conn
		if s != nil {
			s.mu.Lock()
			old = s.conn
			s.mu.Unlock()
		}
		if old == nil {
			// A new connection for the client ID before the Will Delay
			// Interval passed: the will is not sent [MQTT-3.1.3-9].
			var cancelled *pendingWill
			if s != nil {
				cancelled = b.takeWill(s)
			}
			// A session that ends with its connection (expiry 0) is not
			// resumed, even by a takeover [MQTT-3.1.2-4] [MQTT-3.1.2-5].
			present := s != nil && !clean && s.expiry != 0
			if s != nil && !present {
				b.dropSession(s)
				s = nil
			}
			if s == nil {
				s = newSession(c.clientID, c.connectExpiry)
				b.sessions[c.clientID] = s
			}
			// The interval of this CONNECT applies from now on; a session
			// waiting to expire is kept.
			s.expiry = c.connectExpiry
			b.unscheduleExpiry(s)
			c.sess = s
			b.connected.Add(1)
			s.mu.Lock()
			s.conn = c
			if present && s.user != c.username {
				// Subscriptions granted to another user name: check every
				// message against this user's ACL from now on.
				u := c.username
				s.readAs = &u
			} else if s.readAs != nil {
				*s.readAs = c.username
			}
			s.user = c.username
			b.persistAttach(s)
			s.window, s.maxOut = clientLimits(cp, b.cfg.MaxInflight)
			if c.v5() {
				c.rxLimit = int(b.receiveMaximum()) + len(s.inQoS2)
			}
			// CONNACK goes first: deliveries to s queue behind it since they take s.mu.
			// [MQTT-3.2.2-1] [MQTT-3.2.2-2] [MQTT-3.2.2-3]
			ack := &packet.Connack{SessionPresent: present, ReturnCode: packet.Accepted}
			if c.v5() {
				ack.Props = c.connackProps(assigned)
				c.addAuthProps(ack.Props)
			}
			c.send(ack, false)
			s.resend(b)
			s.mu.Unlock()
			b.mu.Unlock()
			if cancelled != nil {
				w := cancelled.w
				b.emit(events.Event{Kind: events.WillCancelled, ClientID: c.clientID, Topic: w.Topic, QoS: w.QoS, Retain: w.Retain,
					Statement: "MQTT-3.1.3-9", Detail: "new connection from " + c.remote + " before the Will Delay Interval passed"})
			}
			b.emit(events.Event{Kind: events.ConnAck, ClientID: c.clientID, Remote: c.remote, SessionPresent: present, KeepAlive: int(c.keepalive / time.Second)})
			b.log.Debug("connect", "client", c.clientID, "remote", c.remote, "clean", clean, "session_present", present)
			return true
		}
		b.mu.Unlock()
		b.emit(events.Event{Kind: events.Takeover, ClientID: c.clientID, Remote: c.remote, Detail: "replaces " + old.remote})
		old.shutdown(events.CauseTakeover, "MQTT-3.1.4-2", "client ID taken over by "+c.remote)
		select {
		case <-old.finishedCh():
		case <-time.After(takeoverWait):
			c.shutdown(events.CauseShutdown, "", "previous connection did not finish in time")
			return false
		}
	}
	c.shutdown(events.CauseShutdown, "", "client ID contended by too many connections")
	return false
}

// detach separates a finished connection from its session; a session with
// expiry 0 (3.1.1: clean) ends with its connection [MQTT-3.1.2-6], one with
// a finite expiry is queued to end that long after [MQTT-3.1.2-23]. pw, when
// not nil, is the connection's will with a Will Delay Interval of delay
// seconds (> 0): it waits in the session unless the session ends now.
// detach returns the will to publish now, if any.
func (b *Broker) detach(s *session, c *conn, pw *pendingWill, delay uint32) *pendingWill {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.mu.Lock()
	mine := s.conn == c
	if mine {
		s.conn = nil
		if s.expiry != 0 {
			s.persistSession(true) // offline from now: its expiry runs from here after a restart
		}
	}
	s.mu.Unlock()
	if !mine || b.sessions[s.id] != s {
		return pw
	}
	switch s.expiry {
	case 0:
		b.dropSession(s)
		return pw // the session ends before any delay [MQTT-3.1.2-8]
	case expiryNever:
	default:
		b.scheduleExpiry(s, b.since()+time.Duration(s.expiry)*time.Second)
	}
	b.handOffQueued(s) // shared subscriptions: others take what it was not sent
	if pw != nil && delay > 0 && b.deferWill(s, pw, delay) {
		return nil
	}
	return pw
}

// dropSession forgets a session and its subscriptions, and returns its
// pending will, which the caller publishes: the session ended
// [MQTT-3.1.2-8]. b.mu is held.
func (b *Broker) dropSession(s *session) *pendingWill {
	delete(b.sessions, s.id)
	b.unscheduleExpiry(s)
	pw := b.takeWill(s)
	s.mu.Lock()
	subs, shared := s.subs, s.sharedSubs
	var queued []queuedTag
	var flights []*flight // the unfinished flows share groups gave it
	if s.tags != nil {
		queued = s.takeTagged()
	}
	for _, f := range s.inflight {
		if f.tag != nil {
			flights = append(flights, f)
		}
	}
	s.persistDrop()
	s.subs, s.sharedSubs, s.tags = nil, nil, nil
	s.queue, s.inflight, s.queuedBytes, s.expires = nil, nil, 0, nil
	s.mu.Unlock()
	b.subMu.Lock()
	for f := range subs {
		_, sh := shared[f]
		b.unsubscribeTree(s.id, f, sh)
	}
	b.subMu.Unlock()
	if len(queued) > 0 || len(flights) > 0 {
		// Out of its groups now, so another member is chosen.
		b.handOffEnded(s, queued, flights)
	}
	return pw
}

// admitsClientID reports whether a Client Identifier the client chose is
// allowed by client_id_prefixes (all are when it is empty).
func (b *Broker) admitsClientID(id string) bool {
	if len(b.cfg.ClientIDPrefixes) == 0 {
		return true
	}
	for _, p := range b.cfg.ClientIDPrefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}
