// Package store keeps the reference broker's durable state in one bbolt
// file: retained messages, persistent sessions with their subscriptions,
// their queued and in-flight outgoing QoS 1/2 messages, and the incoming
// QoS 2 packet IDs awaiting PUBREL.
//
// Writes are queued, not made, by the broker's goroutines (Put*, Delete*:
// an append under a mutex, no I/O), so callers may hold their own locks.
// One goroutine owned by the Store commits what is queued in one bbolt
// transaction per batch: with SyncEveryWrite as soon as there is anything
// (a group commit: every connection that queued something meanwhile shares
// the fsync), with SyncInterval once per interval. Wait blocks until what
// was queued before a point is durable, for an acknowledgement that
// promises it.
//
// Layout (bbolt buckets):
//
//	retained/<topic>                  -> retained record
//	sessions/<client id>/meta         -> session record
//	sessions/<client id>/msgs/<seq>   -> queued or in-flight message record
//	sessions/<client id>/flight/<seq> -> state and packet ID once sent
//	sessions/<client id>/in2/<id>     -> incoming QoS 2 ID awaiting PUBREL
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sync is when queued writes are committed.
type Sync int

const (
	// SyncEveryWrite commits as soon as anything is queued; Wait blocks
	// until then.
	SyncEveryWrite Sync = iota
	// SyncInterval commits once per interval; Wait does not block (a crash
	// loses up to one interval of acknowledged state).
	SyncInterval
)

// Options configure Open.
type Options struct {
	Path     string
	Sync     Sync
	Interval time.Duration // SyncInterval's period
	Logger   *slog.Logger
}

var (
	bktRetained = []byte("retained")
	bktSessions = []byte("sessions")
	bktMsgs     = []byte("msgs")
	bktFlight   = []byte("flight")
	bktIn2      = []byte("in2")
	keyMeta     = []byte("meta")
	bktInfo     = []byte("info")
	keyFormat   = []byte("format")
)

// formatVersion is written in info/format; a file with another is refused
// as not ours (or from a newer mqttfleet).
const formatVersion = 1

// ErrClosed is returned by Wait once the store is closed.
var ErrClosed = errors.New("store closed")

// opKind is what a queued write does.
type opKind byte

const (
	opPutRetained opKind = iota
	opDelRetained
	opPutSession
	opDelSession
	opPutMsg
	opPutFlight
	opDelMsg
	opPutIn2
	opDelIn2
)

// op is one queued write; its values are encoded when queued, so nothing
// of the caller's is read later.
type op struct {
	kind opKind
	id   string // client ID or retained topic
	key  uint64 // message seq or packet ID
	val  []byte
}

// Store is an open store file.
type Store struct {
	db   *bolt.DB
	path string
	sync Sync
	log  *slog.Logger

	queued atomic.Uint64 // ops queued so far (the last op's number)

	mu        sync.Mutex // guards the fields below
	pending   []op
	committed uint64        // ops committed so far
	commitCh  chan struct{} // closed (and replaced) after each commit
	kick      chan struct{} // wakes the committer (capacity 1)
	err       error         // the first commit error: every later Wait fails with it
	closed    bool

	stop chan struct{}
	done chan struct{} // closed when the committer goroutine returned
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// start runs the committer goroutine; Close stops it after a last commit.
func (s *Store) start(interval time.Duration) {
	s.commitCh = make(chan struct{})
	s.kick = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.commitLoop(interval)
}

// commitLoop commits queued writes until Close. With SyncEveryWrite it
// commits whenever kicked; with SyncInterval on every tick.
func (s *Store) commitLoop(interval time.Duration) {
	defer close(s.done)
	var tick <-chan time.Time
	if s.sync == SyncInterval {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.stop:
			s.commit()
			return
		case <-s.kick:
			if s.sync == SyncEveryWrite {
				s.commit()
			}
		case <-tick:
			s.commit()
		}
	}
}

// commit writes every queued op in one transaction and wakes the waiters.
func (s *Store) commit() {
	s.mu.Lock()
	batch := s.pending
	s.pending = nil
	upto := s.committed + uint64(len(batch))
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range batch {
			if err := apply(tx, &batch[i]); err != nil {
				return err
			}
		}
		return nil
	})
	s.mu.Lock()
	if err != nil && s.err == nil {
		s.err = fmt.Errorf("store %s: write: %w", s.path, err)
		s.log.Error("persistence write failed", "path", s.path, "err", err)
	}
	s.committed = upto
	close(s.commitCh)
	s.commitCh = make(chan struct{})
	s.mu.Unlock()
}

// apply makes one op in tx.
func apply(tx *bolt.Tx, o *op) error {
	switch o.kind {
	case opPutRetained:
		return tx.Bucket(bktRetained).Put([]byte(o.id), o.val)
	case opDelRetained:
		return tx.Bucket(bktRetained).Delete([]byte(o.id))
	case opDelSession:
		err := tx.Bucket(bktSessions).DeleteBucket([]byte(o.id))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
	}
	sb, err := tx.Bucket(bktSessions).CreateBucketIfNotExists([]byte(o.id))
	if err != nil {
		return err
	}
	switch o.kind {
	case opPutSession:
		return sb.Put(keyMeta, o.val)
	case opPutMsg:
		return put(sb, bktMsgs, u64(o.key), o.val)
	case opPutFlight:
		return put(sb, bktFlight, u64(o.key), o.val)
	case opDelMsg:
		if err := del(sb, bktMsgs, u64(o.key)); err != nil {
			return err
		}
		return del(sb, bktFlight, u64(o.key))
	case opPutIn2:
		return put(sb, bktIn2, u16(uint16(o.key)), nil)
	case opDelIn2:
		return del(sb, bktIn2, u16(uint16(o.key)))
	}
	return fmt.Errorf("unknown op %d", o.kind)
}

func put(sb *bolt.Bucket, name, key, val []byte) error {
	b, err := sb.CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	if val == nil {
		val = []byte{}
	}
	return b.Put(key, val)
}

func del(sb *bolt.Bucket, name, key []byte) error {
	if b := sb.Bucket(name); b != nil {
		return b.Delete(key)
	}
	return nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// enqueue queues o and returns its number (for Wait).
func (s *Store) enqueue(o op) uint64 {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0
	}
	s.pending = append(s.pending, o)
	n := s.queued.Add(1)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return n
}

// Queued returns the number of the last op queued: a caller compares it
// before and after its work to learn whether it queued anything, and
// Waits for the later one.
func (s *Store) Queued() uint64 { return s.queued.Load() }

// Wait blocks until every op numbered up to n is committed (SyncEveryWrite)
// and returns the store's write error, if any. With SyncInterval it returns
// at once.
func (s *Store) Wait(n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sync == SyncInterval {
		return s.err
	}
	for s.committed < n && s.err == nil && !s.closed {
		ch := s.commitCh
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	if s.err != nil {
		return s.err
	}
	if s.committed < n {
		return ErrClosed
	}
	return nil
}

// Close commits what is queued, stops the committer and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	s.closed = true
	close(s.commitCh) // wake any waiter: it sees closed
	s.commitCh = make(chan struct{})
	werr := s.err
	s.mu.Unlock()
	return errors.Join(werr, s.db.Close())
}

// PutRetained stores rec as the retained message of topic.
func (s *Store) PutRetained(topic string, rec Retained) uint64 {
	return s.enqueue(op{kind: opPutRetained, id: topic, val: rec.encode()})
}

// DeleteRetained forgets the retained message of topic.
func (s *Store) DeleteRetained(topic string) uint64 {
	return s.enqueue(op{kind: opDelRetained, id: topic})
}

// PutSession stores (replaces) the record of a session.
func (s *Store) PutSession(clientID string, rec Session) uint64 {
	return s.enqueue(op{kind: opPutSession, id: clientID, val: rec.encode()})
}

// DeleteSession forgets a session and everything it holds.
func (s *Store) DeleteSession(clientID string) uint64 {
	return s.enqueue(op{kind: opDelSession, id: clientID})
}

// PutMessage stores a queued message of a session under its seq.
func (s *Store) PutMessage(clientID string, seq uint64, m Message) uint64 {
	return s.enqueue(op{kind: opPutMsg, id: clientID, key: seq, val: m.encode()})
}

// PutFlight records that message seq was sent as packetID and now awaits
// state (the packet type code of PUBACK, PUBREC or PUBCOMP).
func (s *Store) PutFlight(clientID string, seq uint64, packetID uint16, state byte) uint64 {
	return s.enqueue(op{kind: opPutFlight, id: clientID, key: seq, val: []byte{state, byte(packetID >> 8), byte(packetID)}})
}

// DeleteMessage forgets message seq of a session (acknowledged, dropped).
func (s *Store) DeleteMessage(clientID string, seq uint64) uint64 {
	return s.enqueue(op{kind: opDelMsg, id: clientID, key: seq})
}

// PutIncomingQoS2 records an incoming QoS 2 packet ID awaiting PUBREL.
func (s *Store) PutIncomingQoS2(clientID string, id uint16) uint64 {
	return s.enqueue(op{kind: opPutIn2, id: clientID, key: uint64(id)})
}

// DeleteIncomingQoS2 forgets an incoming QoS 2 packet ID (PUBREL came).
func (s *Store) DeleteIncomingQoS2(clientID string, id uint16) uint64 {
	return s.enqueue(op{kind: opDelIn2, id: clientID, key: uint64(id)})
}

// Move renames a store file aside so a fresh one can start; the new name
// is returned. The bad file is kept for whoever investigates it.
func Move(path string, now time.Time) (string, error) {
	to := fmt.Sprintf("%s.corrupt-%s", path, now.UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	return to, nil
}
