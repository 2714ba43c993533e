// Package auth authenticates MQTT connections and checks publish and
// subscribe rights, reading password and ACL files in the formats Mosquitto
// users know (password_file with bcrypt hashes, acl_file).
//
// A nil *Auth lets everyone in and permits everything, so the broker can
// call it unconditionally. A loaded one does what its Config says, as in
// Mosquitto 2: AllowAnonymous false without a password file refuses every
// client (a zero Config is a closed broker; broker.DefaultConfig opens it).
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Config names the authentication settings.
type Config struct {
	AllowAnonymous bool   `yaml:"allow_anonymous"` // clients without a user name may connect
	PasswordFile   string `yaml:"password_file"`   // lines "username:bcrypt-hash", '#' comments
	ACLFile        string `yaml:"acl_file"`        // Mosquitto acl_file syntax
	// SCRAMFile holds "user:SCRAM-SHA-256$..." lines (scram.go); when set,
	// MQTT 5 clients may authenticate with the SCRAM-SHA-256 method.
	SCRAMFile string `yaml:"scram_file"`
	// Methods are further enhanced authentication methods, offered beside
	// SCRAM-SHA-256 (Go only).
	Methods []Method `yaml:"-"`
}

// CONNACK return codes Authenticate gives (MQTT 3.1.1 table 3.1).
const (
	Accepted      byte = 0 // connection accepted
	BadUserOrPass byte = 4 // bad user name or password
	NotAuthorized byte = 5 // not authorized
)

// Auth decides who may connect and what they may publish and subscribe to.
// It is safe for concurrent use.
type Auth struct {
	anonymous bool
	users     map[string][]byte // user name -> bcrypt hash; nil: no password file
	acl       *acl              // nil: no ACL file, everything permitted
	methods   map[string]Method // enhanced authentication methods (MQTT 5) by name

	// Successful bcrypt checks are remembered as an HMAC of the password under
	// a per-process random key, per user and hash: a reconnecting device then
	// costs a SHA-256 instead of a bcrypt. The HMAC key never leaves memory, a
	// changed hash (reload) misses, and a failed check is never cached.
	cacheKey [32]byte
	mu       sync.Mutex
	cache    map[string]cached
}

type cached struct {
	hash string // the bcrypt hash the password was checked against
	mac  [sha256.Size]byte
}

// Load reads the files Config names; errors name the file and line of a bad entry.
//
// AllowAnonymous means what it says. Without a password file nobody can be
// authenticated, so with AllowAnonymous false every client is refused, as
// Mosquitto 2 does; with it true a user name is only a label.
func Load(cfg Config) (*Auth, error) {
	a := &Auth{anonymous: cfg.AllowAnonymous}
	if cfg.PasswordFile != "" {
		users, err := loadPasswords(cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		a.users = users
		a.cache = make(map[string]cached)
		if _, err := rand.Read(a.cacheKey[:]); err != nil {
			return nil, fmt.Errorf("auth: make password cache key: %w", err)
		}
	}
	if cfg.ACLFile != "" {
		acl, err := loadACL(cfg.ACLFile)
		if err != nil {
			return nil, err
		}
		a.acl = acl
	}
	if cfg.SCRAMFile != "" {
		creds, err := loadSCRAM(cfg.SCRAMFile)
		if err != nil {
			return nil, err
		}
		m, err := newSCRAMMethod(creds)
		if err != nil {
			return nil, err
		}
		if err := a.addMethod(m); err != nil {
			return nil, err
		}
	}
	for _, m := range cfg.Methods {
		if err := a.addMethod(m); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Authenticate returns the CONNACK return code for a connection: 0 accepted, 4 bad user name or
// password (unknown user, wrong password, password without user [MQTT-3.1.2-22]), 5 not authorized
// (no user name while anonymous access is off, or anonymous access off and no password file, so no
// credentials can be valid).
func (a *Auth) Authenticate(username string, password []byte, hasUsername, hasPassword bool) byte {
	if hasPassword && !hasUsername {
		return BadUserOrPass // [MQTT-3.1.2-22]
	}
	if a == nil {
		return Accepted
	}
	if !hasUsername {
		if a.anonymous {
			return Accepted
		}
		return NotAuthorized
	}
	if a.users == nil {
		// No password file: with anonymous access a user name is only a
		// label; without it nobody can be authenticated (Mosquitto 2 refuses
		// every client then).
		if a.anonymous {
			return Accepted
		}
		return NotAuthorized
	}
	hash, ok := a.users[username]
	if !ok || !hasPassword {
		return BadUserOrPass
	}
	if a.checkCached(username, hash, password) {
		return Accepted
	}
	if bcrypt.CompareHashAndPassword(hash, password) != nil {
		return BadUserOrPass
	}
	a.remember(username, hash, password)
	return Accepted
}

func (a *Auth) mac(password []byte) [sha256.Size]byte {
	h := hmac.New(sha256.New, a.cacheKey[:])
	h.Write(password)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

func (a *Auth) checkCached(user string, hash, password []byte) bool {
	a.mu.Lock()
	c, ok := a.cache[user]
	a.mu.Unlock()
	if !ok || c.hash != string(hash) {
		return false
	}
	m := a.mac(password)
	return hmac.Equal(c.mac[:], m[:])
}

func (a *Auth) remember(user string, hash, password []byte) {
	c := cached{hash: string(hash), mac: a.mac(password)}
	a.mu.Lock()
	a.cache[user] = c // one entry per user: bounded by the password file
	a.mu.Unlock()
}

// CanPublish reports whether the client may publish to topic.
func (a *Auth) CanPublish(username, clientID, topic string) bool {
	if a == nil || a.acl == nil {
		return true
	}
	return a.acl.canPublish(username, clientID, topic)
}

// CanSubscribe reports whether the client may subscribe to filter; see
// Subscribe.
func (a *Auth) CanSubscribe(username, clientID, filter string) bool {
	ok, _ := a.Subscribe(username, clientID, filter)
	return ok
}

// Subscribe decides a subscription. It is granted when a read (or
// readwrite) rule covers every topic filter can match and no deny rule
// covers it entirely: a deny that only overlaps it (topic deny hidden/#
// against a subscription to # or +/x) leaves it granted, and filtered then
// reports that each message must pass CanRead before delivery, so what the
// deny names is withheld message by message.
func (a *Auth) Subscribe(username, clientID, filter string) (ok, filtered bool) {
	if a == nil || a.acl == nil {
		return true, false
	}
	return a.acl.canSubscribe(username, clientID, filter)
}

// CanRead reports whether a message on topic may be delivered to the client:
// the per-message check Mosquitto makes, needed for subscriptions that
// Subscribe reports as filtered.
func (a *Auth) CanRead(username, clientID, topic string) bool {
	if a == nil || a.acl == nil {
		return true
	}
	return a.acl.canRead(username, clientID, topic)
}

// HashPassword returns a bcrypt hash for a password file line.
func HashPassword(password []byte) (string, error) {
	h, err := bcrypt.GenerateFromPassword(password, bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}
