package broker

import (
	"fmt"
	"strings"
	"sync"

	"github.com/mqttfleet/mqttfleet/broker/topictree"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// handle acts on one packet from a connected client and reports whether the
// connection goes on.
//
//go:noinline
func (c *conn) handle(p packet.Packet) bool {
	b, s := c.b, c.sess
	if c.held != nil {
		// Acknowledgements held for the store go first: whatever this
		// packet is answered with comes after them.
		switch p.(type) {
		case *packet.Publish, *packet.Puback, *packet.Pubcomp:
		default:
			if !c.releaseHeld() {
				return false
			}
		}
	}
	switch p := p.(type) {
	case *packet.Publish:
		if !c.checkPublishV5(p) || !c.checkPublishLimits(p) {
			return false
		}
		if !c.handlePublish(p) {
			return false
		}
	case *packet.Puback:
		if stmt, why := s.acked(b, p.PacketID, packet.PUBACK, p.ReasonCode); stmt != "" {
			c.violation(stmt, why)
			return false
		}
	case *packet.Pubrec:
		if stmt, why := s.received(b, p.PacketID, p.ReasonCode); stmt != "" {
			c.violation(stmt, why)
			return false
		}
	case *packet.Pubcomp:
		if stmt, why := s.acked(b, p.PacketID, packet.PUBCOMP, p.ReasonCode); stmt != "" {
			c.violation(stmt, why)
			return false
		}
	case *packet.Pubrel:
		// The ID is free again; PUBCOMP even for an unknown ID lets a client
		// that resends PUBREL after reconnecting finish [MQTT-4.3.3-2].
		var code byte
		mark := b.durableMark()
		if !s.release(p.PacketID) {
			code = c.ackCode(rcPacketIDNotFound) // 5.0 names the unknown ID
		}
		if !c.durableWait(mark) {
			return false
		}
		c.send(&packet.Pubcomp{PacketID: p.PacketID, ReasonCode: code}, false)
	case *packet.Subscribe:
		if !c.checkSubscribeV5(p) {
			return false
		}
		if !c.handleSubscribe(p) {
			return false
		}
	case *packet.Unsubscribe:
		if !c.handleUnsubscribe(p) {
			return false
		}
	case *packet.Pingreq:
		c.send(&packet.Pingresp{}, false)
		b.emit(events.Event{Kind: events.Ping, ClientID: c.clientID})
	case *packet.Disconnect:
		c.handleDisconnect(p) // the will and session expiry rules (v5.go)
		return false
	case *packet.Auth:
		return c.handleAuth(p) // re-authentication (enhanced_auth.go)
	case *packet.Connect:
		c.violation("MQTT-3.1.0-2", "second CONNECT")
		return false
	default:
		c.violation("MQTT-4.8.0-1", "unexpected "+p.Type().String()+" from a client")
		return false
	}
	return true
}

// handlePublish routes an incoming PUBLISH and acknowledges it. It
// reports false when the connection ends (a broken Receive Maximum, a
// failed store).
func (c *conn) handlePublish(p *packet.Publish) bool {
	b := c.b
	b.msgIn.Add(1)
	var mark uint64
	if p.QoS > 0 {
		mark = b.durableMark()
	}
	route := true
	if p.QoS == 2 {
		fresh, over := c.sess.holdQoS2(p.PacketID, c.rxLimit)
		if over {
			// QoS 1 is acknowledged at once, so only QoS 2 flows between
			// PUBREC and PUBREL count against the Receive Maximum.
			c.violationCode(rcReceiveMaxExceeded, "MQTT-3.3.4-7",
				fmt.Sprintf("QoS 2 PUBLISH %d while %d await PUBREL, over the broker's Receive Maximum", p.PacketID, c.rxLimit))
			return false
		}
		route = fresh // a resent QoS 2 message was routed once already
	}
	var code byte // 5.0 reason code of the acknowledgement
	if route {
		if l, why, ok := b.checkTopic(p.Topic); !ok {
			// Like an ACL refusal: the flow completes and the message goes nowhere.
			b.dropForLimit(l, c.clientID, p.Topic, p.QoS, why)
			code = rcQuotaExceeded
		} else if b.auth.CanPublish(c.username, c.clientID, p.Topic) {
			if b.publish(p, c.clientID) == 0 {
				code = rcNoMatchingSubs
			}
		} else {
			// 3.1.1 has no negative acknowledgement: the flow completes and the message goes nowhere.
			b.drop(c.clientID, p.Topic, p.QoS, events.CauseNotAuthorized, "publish denied by ACL")
			code = rcNotAuthorized
		}
	}
	code = c.ackCode(code)
	if p.QoS == 2 && code >= 0x80 {
		c.sess.release(p.PacketID) // a failed PUBREC ends the flow: no PUBREL comes
	}
	// What the message changed (queued for persistent sessions, retained)
	// is on disk before the acknowledgement (persist.go).
	switch p.QoS {
	case 1:
		return c.ackAfterStore(mark, &packet.Puback{PacketID: p.PacketID, ReasonCode: code})
	case 2:
		return c.ackAfterStore(mark, &packet.Pubrec{PacketID: p.PacketID, ReasonCode: code})
	}
	return true
}

var subBufs = sync.Pool{New: func() any { s := make([]topictree.Sub, 0, 64); return &s }}

// publish stores a retained message and routes p to every matching
// subscription; from is the publishing client ("" for the broker itself).
// It returns how many sessions it was routed to.
func (b *Broker) publish(p *packet.Publish, from string) int {
	if p.Retain && !b.retainAvailable() {
		// Retain Available 0: a 3.1.1 message, a will or a $SYS topic is
		// forwarded, not kept (a 5.0 client was refused: server5.go).
		cp := *p
		cp.Retain = false
		p = &cp
	}
	if p.Retain {
		// [MQTT-3.3.1-5] keep it; [MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty payload clears it.
		r := &packet.Publish{Topic: p.Topic, QoS: p.QoS, Retain: true, Payload: p.Payload, Props: p.Props}
		b.retMu.Lock()
		b.retainWithin(r, from)
		b.noteRetainedExpiry(r)
		if b.store != nil {
			b.persistRetained(r)
		}
		b.retMu.Unlock()
	}
	bp := subBufs.Get().(*[]topictree.Sub)
	b.subMu.RLock()
	subs := b.tree.Match(p.Topic, (*bp)[:0])
	shared := b.tree.HasShared()
	b.subMu.RUnlock()
	n := 0
	if len(subs) > 0 {
		var copy0 *packet.Publish
		b.mu.RLock()
		for _, sub := range subs {
			s := b.sessions[sub.ClientID]
			if s == nil || (sub.NoLocal && sub.ClientID == from) { // 5.0 No Local [MQTT-3.8.3-3]
				continue
			}
			n++
			// [MQTT-3.3.1-9] (3.1.1) forwarded with RETAIN 0, in 5.0 unless Retain As
			// Published [MQTT-3.3.1-12] [MQTT-3.3.1-13]; [MQTT-3.3.5-1] the tree gives
			// one match per client with its highest QoS, and every matching
			// Subscription Identifier [MQTT-3.3.4-2] [MQTT-3.3.4-4].
			s.deliver(b, p, min(p.QoS, sub.QoS), sub.RetainAsPublished && p.Retain, sub.IDs, nil, &copy0)
		}
		b.mu.RUnlock()
	}
	clear(subs)
	if cap(subs) <= 4096 {
		*bp = subs[:0]
		subBufs.Put(bp)
	}
	if shared {
		// Each shared subscription is a subscription of its own: its
		// member gets a copy beside any of its ordinary matches.
		n += b.publishShared(p)
	}
	return n
}

// handleSubscribe adds subscriptions, answers SUBACK with one code per
// filter [MQTT-3.8.4-5] and then sends matching retained messages. It
// reports false when the store failed (the connection ends).
func (c *conn) handleSubscribe(p *packet.Subscribe) bool {
	b, s := c.b, c.sess
	mark := b.durableMark()
	codes := make([]byte, len(p.Subscriptions))
	var granted []packet.Subscription
	subID := subscriptionID(p) // 5.0: stored with each subscription [MQTT-3.3.4-3]
	for i, sub := range p.Subscriptions {
		code, detail := packet.SubackFailure, ""
		// 5.0 also checks the "$share/{ShareName}/" form [MQTT-4.8.2-1] [MQTT-4.8.2-2].
		shared := c.v5() && strings.HasPrefix(sub.Filter, sharedSubscriptionPrefix)
		if err := packet.CheckTopicFilter(sub.Filter, c.version); err != nil {
			code, detail = c.subFailure(rcTopicFilterInvalid), err.Error()
		} else if l, why, ok := b.checkTopic(aclFilter(sub.Filter, shared)); !ok {
			code, detail = c.subFailure(rcQuotaExceeded), b.hitLimit(l, why)
		} else if n, full := s.subscriptionsFull(sub.Filter, b.cfg.MaxSubscriptions); full {
			code, detail = c.subFailure(rcQuotaExceeded), b.hitLimit(limitSubscriptions, fmt.Sprintf("session holds %d subscriptions", n))
		} else if ok, filtered := b.auth.Subscribe(c.username, c.clientID, aclFilter(sub.Filter, shared)); !ok {
			code, detail = c.subFailure(rcNotAuthorized), "subscribe denied by ACL"
		} else {
			if filtered {
				user := c.username
				s.mu.Lock()
				s.readAs = &user
				s.mu.Unlock()
				detail = "granted; messages a deny rule names are withheld"
			}
			// Granted as requested: the codec closes on a requested QoS 3
			// or reserved bits [MQTT-3.8.3-4], so QoS is 0, 1 or 2 here.
			// A QoS above Maximum QoS is granted at it [MQTT-3.2.2-10].
			sub.QoS = min(sub.QoS, b.maxQoS())
			code = sub.QoS
			if c.bridge && !shared {
				sub.NoLocal, sub.RetainAsPublished = true, true
			}
			if shared {
				b.subscribeShared(c.clientID, sub, subID)
			} else {
				b.subMu.Lock()
				b.tree.SubscribeID(c.clientID, sub, subID)
				b.subMu.Unlock()
			}
			s.mu.Lock()
			if s.subs == nil {
				s.subs = map[string]packet.Subscription{}
			}
			_, existed := s.subs[sub.Filter]
			s.subs[sub.Filter] = sub
			if shared {
				if s.sharedSubs == nil {
					s.sharedSubs = map[string]struct{}{}
				}
				s.sharedSubs[sub.Filter] = struct{}{}
			}
			if s.ds != nil {
				if subID != 0 {
					if s.ds.subIDs == nil {
						s.ds.subIDs = map[string]uint32{}
					}
					s.ds.subIDs[sub.Filter] = subID
				} else {
					delete(s.ds.subIDs, sub.Filter)
				}
			}
			s.mu.Unlock()
			// 5.0 Retain Handling: 0 sends retained messages [MQTT-3.3.1-9], 1 only
			// for a new subscription [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11]. A
			// shared subscription gets none (MQTT 5.0 section 4.8.2).
			if !shared && (sub.RetainHandling == 0 || (sub.RetainHandling == 1 && !existed)) {
				granted = append(granted, sub)
			}
		}
		codes[i] = code
		b.emit(events.Event{Kind: events.Subscribed, ClientID: c.clientID, Topic: sub.Filter, QoS: code, Detail: detail})
	}
	if s.ds != nil {
		s.mu.Lock()
		s.persistSession(false)
		s.mu.Unlock()
	}
	if !c.durableWait(mark) {
		return false
	}
	c.send(&packet.Suback{PacketID: p.PacketID, ReturnCodes: codes}, false)
	var ids []uint32
	if subID != 0 {
		ids = []uint32{subID} // retained messages carry it too [MQTT-3.3.4-3]
	}
	for _, sub := range granted {
		b.retMu.Lock()
		b.retained.Match(sub.Filter, func(m *packet.Publish) {
			if m = b.retainedLeft(m); m == nil {
				return // its Message Expiry Interval passed [MQTT-3.3.2-5]
			}
			// [MQTT-3.3.1-8] sent because of a new subscription: RETAIN 1.
			s.deliver(b, m, min(m.QoS, sub.QoS), true, ids, nil, nil)
		})
		b.retMu.Unlock()
	}
	return true
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK; false when
// the store failed (the connection ends).
func (c *conn) handleUnsubscribe(p *packet.Unsubscribe) bool {
	b, s := c.b, c.sess
	mark := b.durableMark()
	var codes []byte // 5.0: one per filter, in order [MQTT-3.11.3-1] [MQTT-3.11.3-2]
	if c.v5() {
		codes = make([]byte, len(p.Filters))
	}
	for i, f := range p.Filters {
		s.mu.Lock()
		_, had := s.subs[f]
		_, shared := s.sharedSubs[f]
		delete(s.subs, f)
		delete(s.sharedSubs, f)
		if s.ds != nil {
			delete(s.ds.subIDs, f)
		}
		s.mu.Unlock()
		b.subMu.Lock()
		b.unsubscribeTree(c.clientID, f, shared)
		b.subMu.Unlock()
		if codes != nil && !had {
			codes[i] = rcNoSubscriptionExist
		}
		b.emit(events.Event{Kind: events.Unsubscribed, ClientID: c.clientID, Topic: f})
	}
	if s.ds != nil {
		s.mu.Lock()
		s.persistSession(false)
		s.mu.Unlock()
	}
	if !c.durableWait(mark) {
		return false
	}
	c.send(&packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes}, false)
	return true
}
