package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// CorruptError is a store file that cannot be read back: damaged, truncated
// or not a store at all. It names the file and the problem.
type CorruptError struct {
	Path    string
	Problem string
	Err     error // the underlying error, if any
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("persistence store %s is corrupt or truncated: %s", e.Path, e.Problem)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// State is what a store held when opened.
type State struct {
	Retained []RetainedEntry
	Sessions []SessionState
}

// RetainedEntry is a retained message with its topic.
type RetainedEntry struct {
	Topic string
	Retained
}

// SessionState is a stored session with everything it holds.
type SessionState struct {
	ClientID string
	Session
	// Messages in the order they were queued: those with Awaiting != 0
	// were sent as PacketID and await that acknowledgement (the packet
	// type code of PUBACK, PUBREC or PUBCOMP); the rest are queued.
	Messages []StoredMessage
	InQoS2   []uint16 // incoming QoS 2 IDs awaiting PUBREL
}

// StoredMessage is a message of a session with its place and state.
type StoredMessage struct {
	Seq      uint64
	Awaiting byte
	PacketID uint16
	Message
}

// lockWait bounds how long Open waits for another process's lock on the file.
const lockWait = 2 * time.Second

// Open opens (or creates) the store file and reads back what it holds. A
// file that cannot be read is a *CorruptError; nothing is changed in it.
func Open(opts Options) (*Store, *State, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := precheck(opts.Path); err != nil {
		return nil, nil, err
	}
	db, state, err := openAndLoad(opts.Path)
	if err != nil {
		return nil, nil, err
	}
	s := &Store{db: db, path: opts.Path, sync: opts.Sync, log: log}
	interval := opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	s.start(interval)
	return s, state, nil
}

// openAndLoad opens the file with bbolt and reads every record. bbolt
// panics on some damaged pages, and a page past the end of a truncated
// file faults when touched through the memory map: both become a
// CorruptError here instead of ending the process.
func openAndLoad(path string) (db *bolt.DB, state *State, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			}
			db, state = nil, nil
			err = &CorruptError{Path: path, Problem: fmt.Sprintf("reading it failed: %v", r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, nil, fmt.Errorf("persistence store %s: locked by another process (another broker running on it?)", path)
		}
		var pe *os.PathError
		if errors.As(err, &pe) && !errors.Is(err, berrors.ErrInvalid) {
			return nil, nil, fmt.Errorf("persistence store: %w", err)
		}
		return nil, nil, &CorruptError{Path: path, Problem: err.Error(), Err: err}
	}
	state, err = load(db, path)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return db, state, nil
}

// load creates the top buckets of a new file, checks the format of an old
// one and reads every record.
func load(db *bolt.DB, path string) (*State, error) {
	corrupt := func(format string, args ...any) error {
		return &CorruptError{Path: path, Problem: fmt.Sprintf(format, args...)}
	}
	// A new file gets its buckets; an old one is only read, so a refused
	// file is left exactly as it was.
	fresh := false
	err := db.View(func(tx *bolt.Tx) error {
		info := tx.Bucket(bktInfo)
		if info == nil {
			if tx.Bucket(bktSessions) != nil || tx.Bucket(bktRetained) != nil {
				return corrupt("the format record is missing")
			}
			fresh = true
			return nil
		}
		if v := info.Get(keyFormat); len(v) != 1 || v[0] != formatVersion {
			return corrupt("format record %x, want %d (not an mqttfleet store, or from another version)", v, formatVersion)
		}
		if tx.Bucket(bktSessions) == nil || tx.Bucket(bktRetained) == nil {
			return corrupt("a top-level bucket is missing")
		}
		return nil
	})
	if err == nil && fresh {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bktInfo, bktRetained, bktSessions} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			return tx.Bucket(bktInfo).Put(keyFormat, []byte{formatVersion})
		})
	}
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, &CorruptError{Path: path, Problem: err.Error(), Err: err}
	}
	st := &State{}
	err = db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bktRetained).ForEach(func(k, v []byte) error {
			rec, err := decodeRetained(v)
			if err != nil {
				return corrupt("retained message %q: %v", k, err)
			}
			st.Retained = append(st.Retained, RetainedEntry{Topic: string(k), Retained: rec})
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bktSessions).ForEach(func(k, v []byte) error {
			if v != nil {
				return corrupt("session %q: a value where a bucket belongs", k)
			}
			ss, ok, err := loadSession(tx.Bucket(bktSessions).Bucket(k), string(k))
			if err != nil {
				return corrupt("%v", err)
			}
			if ok {
				st.Sessions = append(st.Sessions, ss)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// loadSession reads one session bucket; ok is false for one without a
// record (its messages were queued as the session ended: nothing to keep).
func loadSession(sb *bolt.Bucket, id string) (ss SessionState, ok bool, err error) {
	ss.ClientID = id
	mv := sb.Get(keyMeta)
	if mv == nil {
		return ss, false, nil
	}
	if ss.Session, err = decodeSession(mv); err != nil {
		return ss, false, fmt.Errorf("session %q: %v", id, err)
	}
	flights := map[uint64][]byte{}
	if fb := sb.Bucket(bktFlight); fb != nil {
		err := fb.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 3 {
				return fmt.Errorf("session %q: flight record %x=%x", id, k, v)
			}
			flights[binary.BigEndian.Uint64(k)] = bytes.Clone(v)
			return nil
		})
		if err != nil {
			return ss, false, err
		}
	}
	if mb := sb.Bucket(bktMsgs); mb != nil {
		err := mb.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("session %q: message key %x", id, k)
			}
			seq := binary.BigEndian.Uint64(k)
			m, err := decodeMessage(v)
			if err != nil {
				return fmt.Errorf("session %q: message %d: %v", id, seq, err)
			}
			sm := StoredMessage{Seq: seq, Message: m}
			if f, ok := flights[seq]; ok {
				sm.Awaiting, sm.PacketID = f[0], binary.BigEndian.Uint16(f[1:])
				if sm.PacketID == 0 || sm.Awaiting == 0 {
					return fmt.Errorf("session %q: message %d: flight state %x", id, seq, f)
				}
			}
			ss.Messages = append(ss.Messages, sm)
			return nil
		})
		if err != nil {
			return ss, false, err
		}
	}
	if ib := sb.Bucket(bktIn2); ib != nil {
		err := ib.ForEach(func(k, _ []byte) error {
			if len(k) != 2 {
				return fmt.Errorf("session %q: incoming QoS 2 key %x", id, k)
			}
			ss.InQoS2 = append(ss.InQoS2, binary.BigEndian.Uint16(k))
			return nil
		})
		if err != nil {
			return ss, false, err
		}
	}
	return ss, true, nil
}

// bbolt's header page layout (its two meta pages at the start of the file),
// read here before bbolt maps the file: a file cut short is reported by
// what it lacks, instead of faulting on a page past its end.
const (
	boltMagic      = 0xED0CDAED
	metaOffset     = 16 // page header: id u64, flags u16, count u16, overflow u32
	metaChecksumAt = metaOffset + 56
)

// precheck reports an existing file too short for what its header says.
func precheck(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new store
	}
	if err != nil {
		return fmt.Errorf("persistence store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("persistence store: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return &CorruptError{Path: path, Problem: "the file is empty (0 bytes): truncated"}
	}
	head := make([]byte, 1<<16+metaChecksumAt+8)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("persistence store: %w", err)
	}
	head = head[:n]
	type meta struct {
		pageSize   uint32
		pgid, txid uint64
	}
	parse := func(off int) (meta, bool) {
		if off+metaChecksumAt+8 > len(head) {
			return meta{}, false
		}
		m := head[off+metaOffset : off+metaChecksumAt+8]
		le := binary.LittleEndian
		if le.Uint32(m[0:]) != boltMagic {
			return meta{}, false
		}
		h := fnv.New64a()
		h.Write(m[:metaChecksumAt-metaOffset])
		if h.Sum64() != le.Uint64(m[metaChecksumAt-metaOffset:]) {
			return meta{}, false
		}
		return meta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
	}
	m0, ok0 := parse(0)
	var m1 meta
	ok1 := false
	if ok0 {
		m1, ok1 = parse(int(m0.pageSize))
	} else {
		for _, ps := range []int{os.Getpagesize(), 4096, 16384, 65536} {
			if m1, ok1 = parse(ps); ok1 {
				break
			}
		}
	}
	var m meta
	switch {
	case ok0 && ok1:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case ok0:
		m = m0
	case ok1:
		m = m1
	default:
		return &CorruptError{Path: path, Problem: fmt.Sprintf("no valid header page in its %d bytes (not a store file, or both headers damaged)", size)}
	}
	if want := int64(m.pgid) * int64(m.pageSize); size < want {
		return &CorruptError{Path: path, Problem: fmt.Sprintf("truncated: the file has %d bytes, its header says %d", size, want)}
	}
	return nil
}
