package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/packet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, path string, sync Sync) (*Store, *State) {
	t.Helper()
	s, st, err := Open(Options{Path: path, Sync: sync, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// Everything a session holds reads back as written: subscriptions with
// their options and identifiers, messages in order with their flight
// state, incoming QoS 2 IDs; deleted things stay deleted.
func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, st := open(t, path, SyncEveryWrite)
	if len(st.Retained)+len(st.Sessions) != 0 {
		t.Fatalf("new store holds %+v", st)
	}
	exp := uint32(30)
	off := time.Unix(1700000000, 123)
	sess := Session{Expiry: 600, OfflineAt: off, User: "u", Subs: []Sub{
		{Subscription: packet.Subscription{Filter: "a/#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 1}, ID: 7},
		{Subscription: packet.Subscription{Filter: "$share/g/b", QoS: 1}, Shared: true},
	}}
	s.PutSession("c1", sess)
	for i := range 3 {
		s.PutMessage("c1", uint64(i+1), Message{Pub: &packet.Publish{Topic: fmt.Sprintf("a/%d", i), QoS: 1, Payload: []byte{byte(i)},
			Props: &packet.Properties{MessageExpiry: &exp, ContentType: "text/plain", HasContentType: true}}, ExpireAt: off})
	}
	s.PutFlight("c1", 1, 41, byte(packet.PUBACK))
	s.PutFlight("c1", 2, 42, byte(packet.PUBREC))
	s.PutFlight("c1", 2, 42, byte(packet.PUBCOMP))
	s.DeleteMessage("c1", 3)
	s.PutIncomingQoS2("c1", 9)
	s.PutIncomingQoS2("c1", 10)
	s.DeleteIncomingQoS2("c1", 10)
	s.PutSession("gone", Session{Expiry: 1})
	s.PutMessage("gone", 1, Message{Pub: &packet.Publish{Topic: "x", QoS: 1}})
	s.DeleteSession("gone")
	s.PutRetained("r", Retained{Pub: &packet.Publish{Topic: "r", QoS: 1, Retain: true, Payload: []byte("v")}})
	s.PutRetained("r2", Retained{Pub: &packet.Publish{Topic: "r2", Retain: true, Payload: []byte("w")}})
	if err := s.Wait(s.DeleteRetained("r2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, st = open(t, path, SyncEveryWrite)
	defer s.Close()
	if len(st.Retained) != 1 || st.Retained[0].Topic != "r" || string(st.Retained[0].Pub.Payload) != "v" || st.Retained[0].Pub.QoS != 1 {
		t.Fatalf("retained %+v", st.Retained)
	}
	if len(st.Sessions) != 1 {
		t.Fatalf("sessions %+v", st.Sessions)
	}
	got := st.Sessions[0]
	if got.ClientID != "c1" || got.Expiry != 600 || !got.OfflineAt.Equal(off) || got.User != "u" || !reflect.DeepEqual(got.Subs, sess.Subs) {
		t.Fatalf("session %+v, want %+v", got.Session, sess)
	}
	if len(got.Messages) != 2 {
		t.Fatalf("messages %+v", got.Messages)
	}
	m0, m1 := got.Messages[0], got.Messages[1]
	if m0.Seq != 1 || m0.Awaiting != byte(packet.PUBACK) || m0.PacketID != 41 || m0.Pub.Topic != "a/0" ||
		m1.Seq != 2 || m1.Awaiting != byte(packet.PUBCOMP) || m1.PacketID != 42 || !m1.ExpireAt.Equal(off) {
		t.Fatalf("messages %+v %+v", m0, m1)
	}
	if p := m0.Pub.Props; p == nil || p.MessageExpiry == nil || *p.MessageExpiry != 30 || p.ContentType != "text/plain" {
		t.Fatalf("properties %+v", p)
	}
	if !reflect.DeepEqual(got.InQoS2, []uint16{9}) {
		t.Fatalf("incoming QoS 2 %v", got.InQoS2)
	}
}

// Writers on many goroutines share commits (every_write) and each Wait
// returns only once its own write is in the file.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := open(t, path, SyncEveryWrite)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				topic := fmt.Sprintf("t/%d/%d", g, i)
				if err := s.Wait(s.PutRetained(topic, Retained{Pub: &packet.Publish{Topic: topic, Retain: true, Payload: []byte("x")}})); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Not closed: what Wait promised is readable by another reader of the
	// file only after Close releases the lock, so check the committed count.
	s.mu.Lock()
	committed := s.committed
	s.mu.Unlock()
	if committed != 400 {
		t.Fatalf("committed %d writes, want 400", committed)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, st := open(t, path, SyncEveryWrite)
	defer s.Close()
	if len(st.Retained) != 400 {
		t.Fatalf("%d retained after reopening, want 400", len(st.Retained))
	}
}

// With sync interval nothing waits, and Close commits what is queued.
func TestIntervalCloseCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := open(t, path, SyncInterval)
	n := s.PutSession("c", Session{Expiry: 0xFFFFFFFF})
	if err := s.Wait(n); err != nil { // returns at once: the interval is an hour
		t.Fatal(err)
	}
	s.mu.Lock()
	committed := s.committed
	s.mu.Unlock()
	if committed != 0 {
		t.Fatalf("committed %d before the interval", committed)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, st := open(t, path, SyncInterval)
	defer s.Close()
	if len(st.Sessions) != 1 {
		t.Fatalf("sessions %+v after Close", st.Sessions)
	}
}

// A commit that fails (here: the file closed under the store) fails every
// Wait from then on, so no acknowledgement claims a write that was lost.
func TestWriteErrorFailsWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := open(t, path, SyncEveryWrite)
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.Wait(s.PutSession("c", Session{Expiry: 1}))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Wait after a failed commit: %v, want an error naming %s", err, path)
	}
	if err := s.Wait(s.PutSession("d", Session{Expiry: 1})); err == nil {
		t.Fatal("a later Wait succeeded after a failed commit")
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close hid the write error")
	}
}

// A file held by another open store (another broker on the same path) is
// an error naming the lock, not a corrupt file.
func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, _ := open(t, path, SyncEveryWrite)
	defer s.Close()
	_, _, err := Open(Options{Path: path})
	var ce *CorruptError
	if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v, want a lock error naming %s", err, path)
	}
}
