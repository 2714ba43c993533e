package auth

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as an MQTT 5.0 enhanced
// authentication method. The exchange on the wire:
//
//	CONNECT  Authentication Method "SCRAM-SHA-256", Data client-first  ("n,,n=user,r=nonce")
//	AUTH     0x18 Continue, Data server-first                          ("r=nonce+server,s=salt,i=4096")
//	AUTH     0x18 Continue, Data client-final                          ("c=biws,r=...,p=proof")
//	CONNACK  0x00, Data server-final ("v=signature"), or 0x87 Not authorized and close
//
// The broker keeps only what RFC 5802 has the server store: salt, iteration
// count, StoredKey and ServerKey, never a password. They come from a file of
// "user:SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" lines
// (base64, the form PostgreSQL stores), written by SCRAMCredential
// (mqttfleet passwd --scram). bcrypt hashes of the password file cannot be
// turned into SCRAM keys, so SCRAM users are provisioned on their own.

// SCRAMMethod is the Authentication Method name of SCRAM-SHA-256.
const SCRAMMethod = "SCRAM-SHA-256"

// scramPrefix starts every stored SCRAM-SHA-256 credential.
const scramPrefix = SCRAMMethod + "$"

// MinSCRAMIterations is the lowest PBKDF2 iteration count a stored
// credential may have (RFC 7677 section 4: at least 4096).
const MinSCRAMIterations = 4096

// SCRAMCredential derives the stored form of a SCRAM-SHA-256 credential from
// a password, with a fresh random salt, for a SCRAM file line
// "user:<credential>". iterations below MinSCRAMIterations are raised to it.
func SCRAMCredential(password string, iterations int) (string, error) {
	if iterations < MinSCRAMIterations {
		iterations = MinSCRAMIterations
	}
	// The user name does not enter the keys (only salt and password do).
	c, err := scram.SHA256.NewClient("-", password, "")
	if err != nil {
		return "", fmt.Errorf("auth: SCRAM password: %w", err)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: SCRAM salt: %w", err)
	}
	sc, err := c.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return "", fmt.Errorf("auth: derive SCRAM keys: %w", err)
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("%s%d:%s$%s:%s", scramPrefix, iterations, b64(salt), b64(sc.StoredKey), b64(sc.ServerKey)), nil
}

// parseSCRAMCredential reads the stored form SCRAMCredential writes.
func parseSCRAMCredential(s string) (scram.StoredCredentials, error) {
	var zero scram.StoredCredentials
	rest, ok := strings.CutPrefix(s, scramPrefix)
	if !ok {
		return zero, fmt.Errorf("want %s<iterations>:<salt>$<StoredKey>:<ServerKey>", scramPrefix)
	}
	factors, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return zero, errors.New("no '$' between the iterations:salt and StoredKey:ServerKey parts")
	}
	iters, salt, ok1 := strings.Cut(factors, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return zero, errors.New("want <iterations>:<salt> and <StoredKey>:<ServerKey>")
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < MinSCRAMIterations {
		return zero, fmt.Errorf("iteration count %q: want an integer of at least %d", iters, MinSCRAMIterations)
	}
	dec := base64.StdEncoding.DecodeString
	saltB, err1 := dec(salt)
	storedB, err2 := dec(stored)
	serverB, err3 := dec(server)
	if err := errors.Join(err1, err2, err3); err != nil {
		return zero, fmt.Errorf("bad base64: %w", err)
	}
	if len(saltB) == 0 || len(storedB) != sha256.Size || len(serverB) != sha256.Size {
		return zero, fmt.Errorf("want a non-empty salt and %d-byte keys", sha256.Size)
	}
	return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(saltB), Iters: n}, StoredKey: storedB, ServerKey: serverB}, nil
}

// loadSCRAM reads a SCRAM file: "user:credential" lines, blank lines and
// '#' comments; errors name the file and line.
func loadSCRAM(path string) (map[string]scram.StoredCredentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read SCRAM file: %w", err)
	}
	defer f.Close()
	users := make(map[string]scram.StoredCredentials)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, cred, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("auth: SCRAM file %s:%d: want user:%s...", path, n, scramPrefix)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("auth: SCRAM file %s:%d: user %q listed twice", path, n, user)
		}
		c, err := parseSCRAMCredential(cred)
		if err != nil {
			return nil, fmt.Errorf("auth: SCRAM file %s:%d: user %q: %w", path, n, user, err)
		}
		users[user] = c
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read SCRAM file %s: %w", path, err)
	}
	return users, nil
}

// scramMethod serves SCRAM-SHA-256 from stored credentials.
type scramMethod struct {
	srv *scram.Server
}

// newSCRAMMethod serves the users of creds. An unknown user gets a
// challenge like a known one's (a salt derived from its name under a
// per-process key) and fails only at the proof, so the exchange does not
// tell which user names exist (RFC 5802 section 5.1).
func newSCRAMMethod(creds map[string]scram.StoredCredentials) (*scramMethod, error) {
	var key, fakeKeys [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("auth: SCRAM key: %w", err)
	}
	if _, err := rand.Read(fakeKeys[:]); err != nil {
		return nil, fmt.Errorf("auth: SCRAM key: %w", err)
	}
	lookup := func(user string) (scram.StoredCredentials, error) {
		if c, ok := creds[user]; ok {
			return c, nil
		}
		h := hmac.New(sha256.New, key[:])
		h.Write([]byte(user))
		salt := h.Sum(nil)[:16]
		// Keys no password derives: the proof check fails.
		return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: MinSCRAMIterations},
			StoredKey: fakeKeys[:], ServerKey: fakeKeys[:]}, nil
	}
	srv, err := scram.SHA256.NewServer(lookup)
	if err != nil {
		return nil, fmt.Errorf("auth: SCRAM server: %w", err)
	}
	return &scramMethod{srv: srv}, nil
}

func (m *scramMethod) Name() string { return SCRAMMethod }

func (m *scramMethod) Start() Exchange { return &scramExchange{conv: m.srv.NewConversation()} }

// scramExchange is one server conversation: client-first, then client-final.
type scramExchange struct {
	conv *scram.ServerConversation
}

func (x *scramExchange) Step(in []byte) ([]byte, bool, error) {
	if x.conv.Done() {
		return nil, false, errors.New("SCRAM exchange already complete")
	}
	out, err := x.conv.Step(string(in))
	if err != nil {
		return nil, false, fmt.Errorf("SCRAM: %w", err)
	}
	if !x.conv.Done() {
		if a := x.conv.AuthzID(); a != "" && a != x.conv.Username() {
			return nil, false, fmt.Errorf("SCRAM: authorization identity %q differs from user %q; not supported", a, x.conv.Username())
		}
		return []byte(out), false, nil
	}
	if !x.conv.Valid() {
		return nil, false, errors.New("SCRAM: authentication failed")
	}
	return []byte(out), true, nil
}

func (x *scramExchange) Identity() string { return x.conv.Username() }
