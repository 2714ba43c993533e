package broker

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 beside 3.1.1: the protocol level of the CONNECT decides, per
// connection, how packets are encoded and which rules apply. This file holds
// what only 5.0 has: CONNACK properties, reason codes, the server
// DISCONNECT and the session expiry interval. See docs/broker.md "MQTT 5.0".

// MQTT 5.0 reason codes the broker sends.
const (
	rcSuccess                byte   = 0x00
	rcContinueAuth           byte   = 0x18
	rcReauthenticate         byte   = 0x19
	rcDisconnectWithWill     byte   = 0x04
	rcNoMatchingSubs         byte   = 0x10
	rcNoSubscriptionExist    byte   = 0x11
	rcUnspecified            byte   = 0x80
	rcMalformed              byte   = 0x81
	rcProtocolError          byte   = 0x82
	rcUnsupportedVersion     byte   = 0x84
	rcClientIDInvalid        byte   = 0x85
	rcBadUserPass            byte   = 0x86
	rcNotAuthorized          byte   = 0x87
	rcServerUnavailable      byte   = 0x88
	rcServerBusy             byte   = 0x89
	rcShuttingDown           byte   = 0x8B
	rcBadAuthMethod          byte   = 0x8C
	rcKeepAliveTimeout       byte   = 0x8D
	rcSessionTakenOver       byte   = 0x8E
	rcTopicFilterInvalid     byte   = 0x8F
	rcPacketIDNotFound       byte   = 0x92
	rcReceiveMaxExceeded     byte   = 0x93
	rcTopicAliasInvalid      byte   = 0x94
	rcPacketTooLarge         byte   = 0x95
	rcQuotaExceeded          byte   = 0x97
	expiryNever              uint32 = 0xFFFFFFFF
	sharedSubscriptionPrefix        = "$share/"
)

// v5 reports whether the connection speaks MQTT 5.0. Only the reader
// goroutine calls it (the level is set in the handshake).
func (c *conn) v5() bool { return c.version == packet.V5 }

// connackCode turns a 3.1.1 CONNACK return code into the code sent to this
// connection: itself for 3.1.1, the 5.0 reason code for 5.0.
func (c *conn) connackCode(code byte) byte {
	if !c.v5() {
		return code
	}
	switch code {
	case packet.Accepted:
		return rcSuccess
	case packet.RefusedProtocolVersion:
		return rcUnsupportedVersion
	case packet.RefusedIdentifierRejected:
		return rcClientIDInvalid
	case packet.RefusedServerUnavailable:
		return rcServerBusy
	case packet.RefusedBadUsernamePassword:
		return rcBadUserPass
	case packet.RefusedNotAuthorized:
		return rcNotAuthorized
	}
	return rcUnspecified
}

// connackProps are the properties of a successful 5.0 CONNACK: what the
// broker supports [MQTT-3.2.2-9 and following], and the assigned client ID
// when the client sent none [MQTT-3.2.2-16].
func (c *conn) connackProps(assigned bool) *packet.Properties {
	b := c.b
	one := byte(1)
	rm := b.receiveMaximum()
	tam := uint16(b.cfg.TopicAliasMaximum)
	p := &packet.Properties{
		ReceiveMaximum:       &rm,
		RetainAvailable:      &one,
		WildcardSubAvailable: &one,
		SubIDAvailable:       &one, // subids.go
		SharedSubAvailable:   &one, // shared.go
		TopicAliasMaximum:    &tam,
	}
	if b.cfg.MaxPacketSize > 0 {
		mps := uint32(b.cfg.MaxPacketSize)
		p.MaximumPacketSize = &mps
	}
	if assigned {
		p.AssignedClientID, p.HasAssignedClientID = c.clientID, true
	}
	c.server5Props(p) // server5.go: Maximum QoS, Retain Available, Server Keep Alive, Response Information
	return p
}

// receiveMaximum is the Receive Maximum the broker advertises: max_inflight,
// at most 65535. A 5.0 client with more QoS 2 flows awaiting PUBREL than
// that is disconnected with 0x93 (handlePublish).
func (b *Broker) receiveMaximum() uint16 { return uint16(min(max(b.cfg.MaxInflight, 1), 65535)) }

// connectExpiry is the session expiry interval a CONNECT asks for. 3.1.1
// maps onto it: a clean session ends with its connection (0), a persistent
// one never expires.
func connectExpiry(cp *packet.Connect) uint32 {
	if cp.ProtocolLevel != packet.V5 {
		if cp.CleanSession {
			return 0
		}
		return expiryNever
	}
	if cp.Props != nil && cp.Props.SessionExpiry != nil {
		return *cp.Props.SessionExpiry
	}
	return 0
}

// disconnectCode is the reason code of the DISCONNECT the server sends a
// 5.0 client before closing for cause, or 0 when none is sent (the client
// left, or the socket failed). code, when not 0, is the codec's reason for a
// violation (0x81 malformed, 0x82 protocol error, ...).
func disconnectCode(cause events.Cause, code byte) byte {
	switch cause {
	case events.CauseTakeover:
		return rcSessionTakenOver
	case events.CauseKeepalive:
		return rcKeepAliveTimeout
	case events.CauseShutdown:
		return rcShuttingDown
	case events.CauseTooLarge:
		return rcPacketTooLarge
	case events.CauseNotAuthorized:
		return rcNotAuthorized // a failed re-authentication [MQTT-4.12.1-2]
	case events.CauseViolation:
		if code >= 0x80 {
			return code
		}
		return rcProtocolError
	}
	return 0
}

// disconnectV5 writes DISCONNECT with the reason code for cause straight
// to the socket of an MQTT 5 connection that is ending, once its CONNACK
// went out [MQTT-3.14.0-1]: after any batch the writer is writing and
// before the socket closes; the writer writes nothing after it
// [MQTT-3.14.4-1]. A client that does not read delays it by at most
// disconnectWait. shutdown calls it once, before closing the socket.
func (c *conn) disconnectV5(cause events.Cause, code byte) {
	rc := disconnectCode(cause, code)
	if rc == 0 || !c.connacked.Load() {
		return // 3.1.1, before CONNACK, or the client left: nothing to send
	}
	buf, err := packet.Append(nil, &packet.Disconnect{ReasonCode: rc}, packet.V5)
	if err != nil {
		return
	}
	// The deadline also frees a writer blocked on a client that does not read.
	_ = c.rd.nc.SetWriteDeadline(time.Now().Add(disconnectWait))
	c.wmu.Lock()
	sent := false
	if !c.sealed {
		if n, err := c.rd.nc.Write(buf); err == nil {
			c.b.bytesOut.Add(uint64(n))
			sent = true
		}
	}
	c.sealed = true
	c.wmu.Unlock()
	if sent {
		c.endMu.Lock()
		c.reason.code = rc
		c.endMu.Unlock()
	}
}

// disconnectWait bounds the write of a server DISCONNECT.
const disconnectWait = 250 * time.Millisecond

// handleDisconnect acts on a client DISCONNECT. In 5.0 reason 0x00 discards
// the will [MQTT-3.14.4-3] and any other code publishes it (0x04 asks for
// it); a Session Expiry Interval replaces the one of CONNECT, except that a
// session that had 0 cannot get a non-zero one (a Protocol Error, MQTT 5.0
// section 3.14.2.2.2).
func (c *conn) handleDisconnect(p *packet.Disconnect) {
	if c.v5() {
		if p.Props != nil && p.Props.SessionExpiry != nil {
			if c.connectExpiry == 0 && *p.Props.SessionExpiry != 0 {
				c.violationCode(rcProtocolError, "", "DISCONNECT sets a Session Expiry Interval after CONNECT had 0")
				return
			}
			c.b.setExpiry(c.sess, *p.Props.SessionExpiry)
		}
		// Any code but 0x00 keeps the will: finish publishes it, after its
		// Will Delay Interval if it has one.
		c.willOnEnd = p.ReasonCode != rcSuccess
	}
	if !c.willOnEnd {
		// [MQTT-3.1.2-10] DISCONNECT discards the will (3.1.1, or 5.0 with 0x00).
		c.will = nil
	}
	c.shutdown(events.CauseClientDisconnect, "", "")
}

// subFailure is the SUBACK code for a refused subscription: 0x80 in 3.1.1,
// the 5.0 reason otherwise.
func (c *conn) subFailure(v5code byte) byte {
	if c.v5() {
		return v5code
	}
	return packet.SubackFailure
}

// ackCode is the reason code of a PUBACK/PUBREC/PUBCOMP/UNSUBACK entry: the
// 5.0 code, or 0 for 3.1.1 (whose encoding has no code).
func (c *conn) ackCode(v5code byte) byte {
	if c.v5() {
		return v5code
	}
	return 0
}

// checkPublishV5 resolves the Topic Alias of a PUBLISH from a 5.0 client
// and refuses what it may not send the broker: an alias above the Topic
// Alias Maximum the broker advertised
// [MQTT-3.3.2-9] [MQTT-3.2.2-17], or unknown with an empty topic
// (DISCONNECT 0x94); a Subscription Identifier [MQTT-3.3.4-6]. It reports
// whether the connection goes on. Aliases are per connection
// [MQTT-3.3.2-7]; every one from 1 to the maximum is accepted
// [MQTT-3.3.2-12]. The alias is taken off p: the broker forwards topics,
// never its client's aliases.
func (c *conn) checkPublishV5(p *packet.Publish) bool {
	if !c.v5() || p.Props == nil {
		return true
	}
	if len(p.Props.SubscriptionIDs) > 0 {
		c.violationCode(rcProtocolError, "MQTT-3.3.4-6", "PUBLISH from a client carries a Subscription Identifier")
		return false
	}
	if p.Props.TopicAlias == nil {
		return true
	}
	alias := *p.Props.TopicAlias
	// Alias 0 never gets here: the codec refuses it with 0x94
	// (MQTT-3.3.2-8). 3.3.4 gives 0x94 to an alias of 0 or over the maximum
	// and makes an unset alias with an empty topic a Protocol Error (0x82).
	if max := c.b.cfg.TopicAliasMaximum; int(alias) > max {
		c.violationCode(rcTopicAliasInvalid, "MQTT-3.3.2-9", fmt.Sprintf("Topic Alias %d, over the broker's Topic Alias Maximum %d", alias, max))
		return false
	}
	if p.Topic == "" {
		topic, ok := c.aliases[alias]
		if !ok {
			c.violationCode(rcProtocolError, "", fmt.Sprintf("Topic Alias %d with an empty topic, but no topic was set for it on this connection", alias))
			return false
		}
		p.Topic = topic
	} else {
		if c.aliases == nil {
			c.aliases = make(map[uint16]string)
		}
		c.aliases[alias] = p.Topic
	}
	p.Props.TopicAlias = nil
	return true
}

// checkSubscribeV5 refuses No Local on a shared subscription, a Protocol
// Error [MQTT-3.8.3-4]. It reports whether the connection goes on.
func (c *conn) checkSubscribeV5(p *packet.Subscribe) bool {
	if !c.v5() {
		return true
	}
	for _, sub := range p.Subscriptions {
		if sub.NoLocal && strings.HasPrefix(sub.Filter, sharedSubscriptionPrefix) {
			c.violationCode(rcProtocolError, "MQTT-3.8.3-4", "No Local set on shared subscription "+strconv.Quote(sub.Filter))
			return false
		}
	}
	return true
}

// willDelay is the Will Delay Interval of w in seconds (0 for 3.1.1 or
// none): the will is published that long after its connection closed.
func willDelay(w *packet.Will) uint32 {
	if w.Props == nil || w.Props.WillDelay == nil {
		return 0
	}
	return *w.Props.WillDelay
}

// willPublishProps are the properties a will is published with: the will
// properties but the Will Delay Interval, which a PUBLISH may not carry
// [MQTT-2.2.2-2]. The rest (user properties in order [MQTT-3.1.3-10],
// content type, expiry, ...) goes on as the client sent it.
func willPublishProps(p *packet.Properties) *packet.Properties {
	if p == nil || p.WillDelay == nil {
		return p
	}
	cp := *p
	cp.WillDelay = nil
	return &cp
}

// withExpiry returns m with its Message Expiry Interval set to what is left
// of it, rounded up to a second: the interval forwarded is the one received
// less the time the message waited in the broker [MQTT-3.3.2-6]. m's
// properties are shared by every subscriber, so they are copied.
func withExpiry(m *packet.Publish, left time.Duration) *packet.Publish {
	secs := uint32((left + time.Second - 1) / time.Second)
	props := *m.Props
	props.MessageExpiry = &secs
	cp := *m
	cp.Props = &props
	return &cp
}

// unexpired checks a queued message leaving the queue: one whose Message
// Expiry Interval passed is dropped, not delivered [MQTT-3.3.2-5]; one that
// waited goes on with the time left [MQTT-3.3.2-6]. s.mu is held.
func (s *session) unexpired(b *Broker, m *packet.Publish) bool {
	at, ok := s.expires[m]
	if !ok {
		return true
	}
	delete(s.expires, m)
	if len(s.expires) == 0 {
		s.expires = nil
	}
	left := at - b.since()
	if left <= 0 {
		b.drop(s.id, m.Topic, m.QoS, events.CauseExpired, "Message Expiry Interval passed while queued")
		return false
	}
	if want := uint32((left + time.Second - 1) / time.Second); want != *m.Props.MessageExpiry {
		*m = *withExpiry(m, left) // m is this session's own copy
	}
	return true
}

// retainedExpiry is when a retained message with a Message Expiry
// Interval expires; kept per topic beside the retained store.
type retainedExpiry struct {
	m  *packet.Publish
	at time.Duration // broker clock
}

// noteRetainedExpiry records when a retained message with a Message Expiry
// Interval expires, and forgets the message it replaced. b.retMu is held.
func (b *Broker) noteRetainedExpiry(r *packet.Publish) {
	// r may have been refused by a limit (the old message stays) or be an
	// empty payload that cleared the topic: ask the store what it holds.
	cur := b.retained.Get(r.Topic)
	if e, ok := b.retExpiry[r.Topic]; ok && e.m != cur {
		delete(b.retExpiry, r.Topic)
	}
	if cur == r && r.Props != nil && r.Props.MessageExpiry != nil {
		if b.retExpiry == nil {
			b.retExpiry = map[string]retainedExpiry{}
		}
		b.retExpiry[r.Topic] = retainedExpiry{m: r, at: b.since() + time.Duration(*r.Props.MessageExpiry)*time.Second}
	}
}

// retainedLeft returns a retained message as it is sent now: nil once its
// Message Expiry Interval passed [MQTT-3.3.2-5], else with the time left
// [MQTT-3.3.2-6]. b.retMu is held.
func (b *Broker) retainedLeft(m *packet.Publish) *packet.Publish {
	e, ok := b.retExpiry[m.Topic]
	if !ok || e.m != m {
		return m
	}
	left := e.at - b.since()
	if left <= 0 {
		return nil
	}
	return withExpiry(m, left)
}

// violationEventCode is the reason code a violation event names: the one
// an MQTT 5 connection is sent; 3.1.1 events keep no code.
func (c *conn) violationEventCode(code byte) int {
	if !c.v5() {
		return 0
	}
	return int(disconnectCode(events.CauseViolation, code))
}

// clientLimits are the inflight window and the largest packet the broker
// may send the client of cp: the window is max_inflight, lowered to the
// client's Receive Maximum [MQTT-3.3.4-9]; the packet size is the client's
// Maximum Packet Size [MQTT-3.1.2-24] (0: no limit).
func clientLimits(cp *packet.Connect, maxInflight int) (window, maxOut int) {
	window = maxInflight
	if cp.ProtocolLevel != packet.V5 || cp.Props == nil {
		return window, 0
	}
	if rm := cp.Props.ReceiveMaximum; rm != nil && *rm > 0 && int(*rm) < window {
		window = int(*rm)
	}
	if mps := cp.Props.MaximumPacketSize; mps != nil && uint64(*mps) < packet.MaxRemainingLength+5 {
		maxOut = int(*mps)
	}
	return window, maxOut
}

// fits reports whether m, encoded for the attached client, is within its
// Maximum Packet Size. One that is not is discarded as if it had been sent
// [MQTT-3.1.2-24]. Only clients that set a maximum pay for the encoding.
// s.mu is held.
func (s *session) fits(b *Broker, m *packet.Publish) bool {
	if s.maxOut == 0 {
		return true
	}
	// Without properties the size is known: header, topic, ID, payload.
	if m.Props == nil && 5+2+len(m.Topic)+2+len(m.Payload) <= s.maxOut {
		return true
	}
	bp := writeBufs.Get().(*[]byte)
	buf, err := packet.Append((*bp)[:0], m, packet.V5)
	n := len(buf)
	*bp = buf[:0]
	writeBufs.Put(bp)
	if err == nil && n <= s.maxOut {
		return true
	}
	b.drop(s.id, m.Topic, m.QoS, events.CauseTooLarge, fmt.Sprintf("%d bytes, over the client's Maximum Packet Size %d", n, s.maxOut))
	return false
}
