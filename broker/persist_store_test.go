package broker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mqttfleet/mqttfleet/broker/store"
	"github.com/mqttfleet/mqttfleet/packet"
)

// persistBroker starts an in-process broker with persistence on the store
// file (sync every_write) and on_corrupt as given.
func persistBroker(t *testing.T, path, onCorrupt string) (*testBroker, error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Name: "tcp", Type: "tcp", Addr: "127.0.0.1:0"}}
	cfg.Persistence = PersistenceConfig{Enabled: true, Path: path, Sync: SyncEveryWrite, OnCorrupt: onCorrupt}
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return &testBroker{Broker: b, tcp: strings.TrimPrefix(b.Addr("tcp"), "tcp://")}, nil
}

// writeStore makes a store file holding n retained messages of 1 KiB.
func writeStore(t *testing.T, path string, n int) {
	t.Helper()
	st, _, err := store.Open(store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range n {
		topic := "r/" + string(rune('a'+i%26)) + "/" + time.Duration(i).String()
		last = st.PutRetained(topic, store.Retained{Pub: &packet.Publish{Topic: topic, Retain: true, Payload: bytes.Repeat([]byte{'x'}, 1024)}})
	}
	if err := st.Wait(last); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPersistCorruptStore: a store file that is truncated, is not a store,
// or holds an undecodable record is reported naming the file and the
// problem; on_corrupt refuse does not start and leaves the file alone,
// start_empty moves it aside (kept, byte for byte) and starts empty with a
// working store.
func TestPersistCorruptStore(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, path string)
		problem string
	}{
		{"truncated", func(t *testing.T, path string) {
			writeStore(t, path, 200)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/3); err != nil {
				t.Fatal(err)
			}
		}, "truncated: the file has"},
		{"empty", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "the file is empty"},
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a store "), 8000), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "no valid header page"},
		{"damaged pages", func(t *testing.T, path string) {
			writeStore(t, path, 200)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Every page after the two headers and the first data pages.
			fi, _ := f.Stat()
			junk := bytes.Repeat([]byte{0xA5}, int(fi.Size())-4*os.Getpagesize())
			_, err = f.WriteAt(junk, int64(4*os.Getpagesize()))
			if err := errors.Join(err, f.Close()); err != nil {
				t.Fatal(err)
			}
		}, "reading it failed"},
		{"bad record", func(t *testing.T, path string) {
			writeStore(t, path, 3)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("retained")).Put([]byte("r/bad"), []byte{1, 0, 0})
			})
			if err := errors.Join(err, db.Close()); err != nil {
				t.Fatal(err)
			}
		}, `retained message "r/bad": record ends early`},
	}
	for _, tc := range cases {
		for _, on := range []string{OnCorruptRefuse, OnCorruptStartEmpty} {
			t.Run(tc.name+"/"+on, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "broker.db")
				tc.damage(t, path)
				before, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				tb, err := persistBroker(t, path, on)
				if on == OnCorruptRefuse {
					if err == nil {
						t.Fatal("the broker started on a damaged store")
					}
					var ce *store.CorruptError
					if !errors.As(err, &ce) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.problem) || !strings.Contains(err.Error(), "on_corrupt") {
						t.Fatalf("error %q: want a CorruptError naming %s, %q and on_corrupt", err, path, tc.problem)
					}
					t.Log(err)
					if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
						t.Fatal("refusing changed the file")
					}
					return
				}
				if err != nil {
					t.Fatalf("start_empty: %v", err)
				}
				r := tb.Recovered()
				if r.MovedAside == "" || r.Retained != 0 || r.Sessions != 0 {
					t.Fatalf("recovered %+v: want the file moved aside and nothing restored", r)
				}
				if kept, err := os.ReadFile(r.MovedAside); err != nil || !bytes.Equal(kept, before) {
					t.Fatalf("moved-aside file %s: %v (same bytes: %v)", r.MovedAside, err, bytes.Equal(kept, before))
				}
				// The fresh store works: a retained message survives a restart.
				pub := tb.connect(t, "p")
				publish(t, pub, &packet.Publish{Topic: "after", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("ok")})
				if err := tb.Close(); err != nil {
					t.Fatal(err)
				}
				tb2, err := persistBroker(t, path, OnCorruptRefuse)
				if err != nil {
					t.Fatalf("restart on the fresh store: %v", err)
				}
				if r := tb2.Recovered(); r.Retained != 1 || r.MovedAside != "" {
					t.Fatalf("recovered %+v after restart, want the one retained message", r)
				}
			})
		}
	}
}

// TestPersistExpiredSessions: a session whose Session Expiry Interval
// passed while the broker was down is not restored (and is deleted from
// the store); one with time left is, and expires on schedule.
func TestPersistExpiredSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	st, _, err := store.Open(store.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st.PutSession("lapsed", store.Session{Expiry: 60, OfflineAt: now.Add(-time.Hour), Subs: []store.Sub{{Subscription: packet.Subscription{Filter: "a", QoS: 1}}}})
	st.PutSession("kept", store.Session{Expiry: 3600, OfflineAt: now.Add(-time.Minute)})
	st.PutSession("forever", store.Session{Expiry: expiryNever})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	tb, err := persistBroker(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := tb.Recovered(); r.Sessions != 2 || r.ExpiredSessions != 1 {
		t.Fatalf("recovered %+v, want 2 sessions and 1 expired", r)
	}
	tb.mu.RLock()
	_, lapsed := tb.sessions["lapsed"]
	kept := tb.sessions["kept"]
	at := kept.exp.at
	tb.mu.RUnlock()
	if lapsed {
		t.Fatal("the lapsed session was restored")
	}
	// Its expiry runs from when it went offline, not from the restart.
	if left := at - tb.since(); left > 59*time.Minute+time.Second || left < 58*time.Minute {
		t.Fatalf("kept session expires in %v, want about 59m", left)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb2, err := persistBroker(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := tb2.Recovered(); r.Sessions != 2 || r.ExpiredSessions != 0 {
		t.Fatalf("second start recovered %+v, want the lapsed session gone from the store", r)
	}
}

// TestPersistSubscriptionOptions: MQTT 5 subscription options and
// Subscription Identifiers of a persistent session survive a restart.
func TestPersistSubscriptionOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	exp := uint32(600)
	cp := func() *packet.Connect {
		return &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "opts", Props: &packet.Properties{SessionExpiry: &exp}}
	}
	tb, err := persistBroker(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := tb.raw(t, cp(), 0)
	if err := r.WritePacket(&packet.Subscribe{PacketID: 1, Props: &packet.Properties{SubscriptionIDs: []uint32{42}},
		Subscriptions: []packet.Subscription{{Filter: "o/#", QoS: 1, NoLocal: true, RetainAsPublished: true}}}); err != nil {
		t.Fatal(err)
	}
	expect[*packet.Suback](t, r)
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}

	tb2, err := persistBroker(t, path, "")
	if err != nil {
		t.Fatal(err)
	}
	r, ack := tb2.raw(t, cp(), 0)
	if !ack.SessionPresent {
		t.Fatal("session not present after restart")
	}
	// No Local: its own message is not sent back.
	publish(t, r, &packet.Publish{Topic: "o/self", QoS: 1, PacketID: 1, Payload: []byte("self")})
	other, _ := tb2.raw(t, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "other", CleanSession: true}, 0)
	publish(t, other, &packet.Publish{Topic: "o/x", QoS: 1, PacketID: 1, Retain: true, Payload: []byte("x")})
	p := expect[*packet.Publish](t, r)
	if string(p.Payload) != "x" || !p.Retain || p.Props == nil || len(p.Props.SubscriptionIDs) != 1 || p.Props.SubscriptionIDs[0] != 42 {
		t.Fatalf("got %q retain %v props %+v: want x with Retain As Published and Subscription Identifier 42", p.Payload, p.Retain, p.Props)
	}
}

// TestPersistConfig checks the persistence section of the configuration
// file: values read, and each mistake reported by its field.
func TestPersistConfig(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "b.db")
	for _, tc := range []struct {
		name, yaml string
		wantErr    []string
	}{
		{"full", "persistence: {enabled: true, path: " + store + ", sync: interval, interval: 250ms, on_corrupt: start_empty}\n", nil},
		{"defaults", "persistence: {enabled: true, path: " + store + "}\n", nil},
		{"off needs no path", "persistence: {enabled: false}\n", nil},
		{"no path", "persistence: {enabled: true}\n", []string{"persistence.path: required"}},
		{"bad sync", "persistence: {enabled: true, path: " + store + ", sync: always}\n", []string{"persistence.sync:", `"always"`, "every_write", "interval"}},
		{"interval without sync interval", "persistence: {enabled: true, path: " + store + ", interval: 1s}\n", []string{"persistence.interval:", "only used with sync: interval"}},
		{"negative interval", "persistence: {enabled: true, path: " + store + ", sync: interval, interval: -1s}\n", []string{"persistence.interval: must not be negative"}},
		{"bad on_corrupt", "persistence: {enabled: true, path: " + store + ", on_corrupt: repair}\n", []string{"persistence.on_corrupt:", `"repair"`}},
		{"missing directory", "persistence: {enabled: true, path: " + filepath.Join(dir, "nope", "b.db") + "}\n", []string{"persistence.path: directory", "nope", "no such file"}},
		{"path is a directory", "persistence: {enabled: true, path: " + dir + "}\n", []string{"persistence.path:", "is a directory"}},
		{"unknown field", "persistence:\n  enabled: true\n  fsync: true\n", []string{".yaml:3", "fsync"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				switch tc.name {
				case "full":
					p := c.Persistence
					if !p.Enabled || p.Path != store || p.Sync != SyncInterval || p.Interval != 250*time.Millisecond || p.OnCorrupt != OnCorruptStartEmpty {
						t.Fatalf("read %+v", p)
					}
				case "defaults":
					// Empty sync and on_corrupt mean every_write and refuse.
					b, err := New(c)
					if err != nil {
						t.Fatal(err)
					}
					if b.store == nil {
						t.Fatal("no store")
					}
					_ = b.Close()
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}
