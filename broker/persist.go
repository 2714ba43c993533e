package broker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/store"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Persistence (docs/broker.md "Persistence"): with persistence on, every
// change to durable state is queued on the store (broker/store) where it
// happens, under the lock that orders it (session.mu for a session's state,
// Broker.retMu for retained messages, Broker.mu for a session's end): a
// queued write is an append, no I/O, so no lock is held across a disk
// write. The store's goroutine commits what is queued in batches; an
// acknowledgement that promises state (PUBACK, PUBREC, PUBCOMP, SUBACK,
// UNSUBACK, CONNACK) is sent only once what its packet queued is committed
// (Store.Wait, with no lock held), when sync is every_write; the PUBACKs
// and PUBRECs of a burst of PUBLISH packets read together are held in
// order and sent after one wait (ackAfterStore, releaseHeld).
//
// Durable state is that of persistent sessions (a Session Expiry Interval
// other than 0): their record (expiry, user, subscriptions), their QoS 1/2
// messages, queued and in flight, and their incoming QoS 2 IDs; and
// retained messages. Sessions that end with their connection and QoS 0
// messages write nothing: with persistence off, or for them, the only cost
// is a nil check.

// durable is the persistence state of a persistent session; nil for every
// other session and whenever persistence is off. Guarded by session.mu.
type durable struct {
	st     *store.Store
	expiry uint32                     // the session's expiry, as stored
	seq    uint64                     // the last message seq used
	seqs   map[*packet.Publish]uint64 // queued messages' seqs (a flight keeps its own)
	subIDs map[string]uint32          // Subscription Identifiers by filter
}

// RecoveryStats is what the broker read back from its store at start.
type RecoveryStats struct {
	Path            string
	Retained        int    // retained messages restored
	Sessions        int    // sessions restored
	Queued          int    // queued messages restored
	Inflight        int    // outgoing QoS 1/2 messages restored in flight
	IncomingQoS2    int    // incoming QoS 2 IDs awaiting PUBREL restored
	ExpiredSessions int    // sessions whose expiry passed while the broker was down: not restored
	ExpiredRetained int    // retained messages whose Message Expiry passed: not restored
	MovedAside      string // start_empty: where the unreadable file was moved; "" otherwise
}

// Recovered returns what the broker restored from its store; zero when
// persistence is off.
func (b *Broker) Recovered() RecoveryStats { return b.recovered }

// openStore opens the store file, or handles it being unreadable as
// on_corrupt says, and restores its state. Called by New, before anything
// else runs.
func (b *Broker) openStore() error {
	pc := b.cfg.Persistence
	opts := store.Options{Path: pc.Path, Sync: store.SyncEveryWrite, Logger: b.log}
	if pc.Sync == SyncInterval {
		opts.Sync, opts.Interval = store.SyncInterval, pc.Interval
		if opts.Interval == 0 {
			opts.Interval = DefaultSyncInterval
		}
	}
	st, state, err := store.Open(opts)
	var ce *store.CorruptError
	moved := ""
	if errors.As(err, &ce) {
		if pc.OnCorrupt != OnCorruptStartEmpty {
			return fmt.Errorf("%w (persistence.on_corrupt is %s: not starting; move the file aside or set on_corrupt: %s)", err, OnCorruptRefuse, OnCorruptStartEmpty)
		}
		to, merr := store.Move(pc.Path, time.Now())
		if merr != nil {
			return fmt.Errorf("%w; moving it aside failed: %v", err, merr)
		}
		moved = to
		b.log.Error("persistence store unreadable: moved aside, starting empty", "path", pc.Path, "moved_to", to, "problem", ce.Problem)
		b.emit(events.Event{Kind: events.Log, Detail: fmt.Sprintf("%v; moved to %s, starting empty", err, to)})
		st, state, err = store.Open(opts)
	}
	if err != nil {
		return err
	}
	b.store = st
	b.restore(state)
	b.recovered.Path, b.recovered.MovedAside = pc.Path, moved
	r := b.recovered
	policy := SyncEveryWrite
	if opts.Sync == store.SyncInterval {
		policy = SyncInterval
	}
	b.log.Info("persistence recovered", "path", r.Path, "sync", policy,
		"retained", r.Retained, "sessions", r.Sessions, "queued", r.Queued, "inflight", r.Inflight,
		"incoming_qos2", r.IncomingQoS2, "expired_sessions", r.ExpiredSessions)
	return nil
}

// restore rebuilds retained messages and sessions from the store's state.
// Nothing else runs yet; the locks are taken for the functions that expect
// them.
func (b *Broker) restore(state *store.State) {
	now := time.Now()
	clock := func(t time.Time) time.Duration { return t.Sub(b.start) } // wall time to the broker clock
	b.retMu.Lock()
	for _, e := range state.Retained {
		r := e.Pub
		r.Retain = true
		if !e.ExpireAt.IsZero() && !e.ExpireAt.After(now) {
			b.recovered.ExpiredRetained++
			b.store.DeleteRetained(e.Topic)
			continue
		}
		b.retained.Set(r)
		if !e.ExpireAt.IsZero() {
			if b.retExpiry == nil {
				b.retExpiry = map[string]retainedExpiry{}
			}
			b.retExpiry[r.Topic] = retainedExpiry{m: r, at: clock(e.ExpireAt)}
		}
		b.recovered.Retained++
	}
	b.retMu.Unlock()

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ss := range state.Sessions {
		// A session online when the broker stopped (kill -9) counts as
		// offline from now.
		var deadline time.Time
		if ss.Expiry != expiryNever {
			off := ss.OfflineAt
			if off.IsZero() {
				off = now
			}
			deadline = off.Add(time.Duration(ss.Expiry) * time.Second)
			if !deadline.After(now) || ss.Expiry == 0 {
				b.recovered.ExpiredSessions++
				b.store.DeleteSession(ss.ClientID)
				continue
			}
		}
		s := newSession(ss.ClientID, ss.Expiry)
		s.user = ss.User
		if b.cfg.Auth.ACLFile != "" {
			// Whether a deny rule overlapped a subscription was decided
			// when it was granted; check every message instead.
			u := ss.User
			s.readAs = &u
		}
		ds := &durable{st: b.store, expiry: ss.Expiry}
		s.ds = ds
		for _, sub := range ss.Subs {
			if s.subs == nil {
				s.subs = map[string]packet.Subscription{}
			}
			s.subs[sub.Filter] = sub.Subscription
			if sub.ID != 0 {
				if ds.subIDs == nil {
					ds.subIDs = map[string]uint32{}
				}
				ds.subIDs[sub.Filter] = sub.ID
			}
			if sub.Shared {
				if s.sharedSubs == nil {
					s.sharedSubs = map[string]struct{}{}
				}
				s.sharedSubs[sub.Filter] = struct{}{}
				b.subscribeShared(s.id, sub.Subscription, sub.ID)
			} else {
				b.subMu.Lock()
				b.tree.SubscribeID(s.id, sub.Subscription, sub.ID)
				b.subMu.Unlock()
			}
		}
		for _, m := range ss.Messages {
			ds.seq = max(ds.seq, m.Seq)
			p := m.Pub
			if m.Awaiting != 0 {
				p.PacketID = m.PacketID
				s.nextID = max(s.nextID, m.PacketID)
				s.inflight = append(s.inflight, &flight{pub: p, state: packet.Type(m.Awaiting), seq: m.Seq})
				b.recovered.Inflight++
				continue
			}
			if ds.seqs == nil {
				ds.seqs = map[*packet.Publish]uint64{}
			}
			ds.seqs[p] = m.Seq
			if !m.ExpireAt.IsZero() {
				if s.expires == nil {
					s.expires = map[*packet.Publish]time.Duration{}
				}
				s.expires[p] = clock(m.ExpireAt)
			}
			s.queuedBytes += len(p.Topic) + len(p.Payload)
			s.queue = append(s.queue, p)
			b.recovered.Queued++
		}
		for _, id := range ss.InQoS2 {
			if s.inQoS2 == nil {
				s.inQoS2 = map[uint16]struct{}{}
			}
			s.inQoS2[id] = struct{}{}
			b.recovered.IncomingQoS2++
		}
		b.sessions[s.id] = s
		if ss.Expiry != expiryNever {
			b.scheduleExpiry(s, clock(deadline))
		}
		b.recovered.Sessions++
	}
}

// closeStore commits what is queued and closes the store (Broker.Close,
// once every goroutine that queues writes has returned).
func (b *Broker) closeStore() error {
	if b.store == nil {
		return nil
	}
	return b.store.Close()
}

// durableMark returns the store's count of queued writes before a packet
// is handled (0 with persistence off), for durableWait.
func (b *Broker) durableMark() uint64 {
	if b.store == nil {
		return 0
	}
	return b.store.Queued()
}

// durableWait blocks, with no lock held, until the writes queued since
// mark are on disk (sync every_write), and reports false if the store
// failed: the connection is then ended without the acknowledgement, since
// the state it would promise is not kept.
func (c *conn) durableWait(mark uint64) bool {
	st := c.b.store
	if st == nil {
		return true
	}
	n := st.Queued()
	if n == mark {
		return true // this packet changed no durable state
	}
	if err := st.Wait(n); err != nil {
		c.shutdown(events.CauseShutdown, "", "persistence: "+err.Error())
		return false
	}
	return true
}

// maxHeld bounds the acknowledgements a burst holds for the store before
// it waits for them anyway: a client that never pauses still gets answers.
const maxHeld = 256

// ackAfterStore sends the acknowledgement of a PUBLISH once what handling
// it queued on the store (since mark) is durable. Within a burst of
// buffered packets the acknowledgements are held and sent together after
// one wait (burst, releaseHeld): a publisher with many messages in flight
// gets one commit per burst, not one per message. Once one is held, the
// ones after it are too, so they stay in order. Reports false if the
// store failed (the connection ends).
func (c *conn) ackAfterStore(mark uint64, ack packet.Packet) bool {
	st := c.b.store
	if st == nil || (c.held == nil && st.Queued() == mark) {
		c.send(ack, false)
		return true
	}
	c.held = append(c.held, ack)
	if len(c.held) >= maxHeld {
		return c.releaseHeld()
	}
	return true
}

// releaseHeld waits until everything queued on the store so far is
// durable and sends the held acknowledgements, in order. Reports false
// (the connection is ended, the acknowledgements never sent) if the store
// failed.
func (c *conn) releaseHeld() bool {
	held := c.held
	c.held = nil
	st := c.b.store
	if err := st.Wait(st.Queued()); err != nil {
		c.shutdown(events.CauseShutdown, "", "persistence: "+err.Error())
		return false
	}
	for _, a := range held {
		c.send(a, false)
	}
	return true
}

// sessionRecord is what the store keeps of s. s.mu is held.
func (s *session) sessionRecord(offline bool) store.Session {
	rec := store.Session{Expiry: s.ds.expiry, User: s.user}
	if offline {
		rec.OfflineAt = time.Now()
	}
	for f, sub := range s.subs {
		_, sh := s.sharedSubs[f]
		rec.Subs = append(rec.Subs, store.Sub{Subscription: sub, Shared: sh, ID: s.ds.subIDs[f]})
	}
	return rec
}

// persistSession stores the record of s if it is durable. s.mu is held.
func (s *session) persistSession(offline bool) {
	if s.ds != nil {
		s.ds.st.PutSession(s.id, s.sessionRecord(offline))
	}
}

// persistAttach makes s durable or not as the expiry of the connection
// attaching it says, and stores its record. b.mu and s.mu are held.
func (b *Broker) persistAttach(s *session) {
	if b.store == nil {
		return
	}
	switch {
	case s.expiry == 0 && s.ds != nil:
		// Resumed by a connection whose session ends with it: the session
		// is no longer kept across a restart.
		s.ds = nil
		b.store.DeleteSession(s.id)
		return
	case s.expiry == 0:
		return
	case s.ds == nil:
		s.ds = &durable{st: b.store}
	}
	s.ds.expiry = s.expiry
	s.persistSession(false)
}

// persistSetExpiry stores a changed Session Expiry Interval (5.0
// DISCONNECT); 0 ends the session at detach, which deletes it.
func (s *session) persistSetExpiry(expiry uint32) {
	s.mu.Lock()
	if s.ds != nil && expiry != 0 {
		s.ds.expiry = expiry
		s.persistSession(false)
	}
	s.mu.Unlock()
}

// persistDrop forgets a session that ended. b.mu and s.mu are held.
func (s *session) persistDrop() {
	if s.ds != nil {
		s.ds.st.DeleteSession(s.id)
		s.ds = nil
	}
}

// persistQueued stores a message queued for s. s.mu is held, s.ds != nil.
func (s *session) persistQueued(b *Broker, m *packet.Publish) {
	ds := s.ds
	ds.seq++
	if ds.seqs == nil {
		ds.seqs = map[*packet.Publish]uint64{}
	}
	ds.seqs[m] = ds.seq
	var exp time.Time
	if at, ok := s.expires[m]; ok {
		exp = b.start.Add(at)
	}
	ds.st.PutMessage(s.id, ds.seq, store.Message{Pub: m, ExpireAt: exp})
}

// takeSeq returns and forgets the seq of a queued message. s.ds != nil.
func (ds *durable) takeSeq(m *packet.Publish) uint64 {
	seq := ds.seqs[m]
	delete(ds.seqs, m)
	if len(ds.seqs) == 0 {
		ds.seqs = nil
	}
	return seq
}

// persistRetained stores or forgets the retained message of r's topic as
// the retained store now holds it. b.retMu is held. $SYS topics are the
// broker's own, published again after a start: not stored.
func (b *Broker) persistRetained(r *packet.Publish) {
	if strings.HasPrefix(r.Topic, "$SYS/") {
		return
	}
	switch cur := b.retained.Get(r.Topic); {
	case cur == nil:
		b.store.DeleteRetained(r.Topic)
	case cur == r:
		var exp time.Time
		if e, ok := b.retExpiry[r.Topic]; ok && e.m == r {
			exp = b.start.Add(e.at)
		}
		b.store.PutRetained(r.Topic, store.Retained{Pub: r, ExpireAt: exp})
	}
	// Otherwise a limit refused r and the old message stays, as stored.
}
