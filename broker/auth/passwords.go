package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// loadPasswords reads a password file: "username:hash" lines with bcrypt
// hashes, blank lines and '#' comments.
func loadPasswords(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read password file: %w", err)
	}
	defer f.Close()
	users := make(map[string][]byte)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		user, hash, err := parsePasswordLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("auth: password file %s:%d: %w", path, n, err)
		}
		if user == "" {
			continue
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("auth: password file %s:%d: user %q listed twice", path, n, user)
		}
		users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read password file %s: %w", path, err)
	}
	return users, nil
}

// parsePasswordLine returns the user and hash of one line; an empty user for
// blank and comment lines.
func parsePasswordLine(line string) (user string, hash []byte, err error) {
	line = strings.TrimRight(line, "\r")
	if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
		return "", nil, nil
	}
	user, h, ok := strings.Cut(line, ":")
	switch {
	case !ok:
		return "", nil, fmt.Errorf("want username:hash, no ':' found")
	case user == "":
		return "", nil, fmt.Errorf("empty user name")
	case h == "":
		return "", nil, fmt.Errorf("user %q: empty hash", user)
	}
	hash = []byte(strings.TrimSpace(h))
	if !isBcrypt(hash) {
		return "", nil, fmt.Errorf("user %q: not a bcrypt hash ($2a$, $2b$ or $2y$); Mosquitto $6$/$7$ hashes are not supported, re-create it with 'mqttfleet passwd'", user)
	}
	if _, err := bcrypt.Cost(hash); err != nil {
		return "", nil, fmt.Errorf("user %q: malformed bcrypt hash: %w", user, err)
	}
	// bcrypt.Cost reads only the prefix; a truncated or padded hash would
	// otherwise load and then reject every password without saying why.
	if len(hash) != 60 || strings.Trim(string(hash[7:]), bcryptAlphabet) != "" {
		return "", nil, fmt.Errorf("user %q: malformed bcrypt hash: want 60 characters of bcrypt base64", user)
	}
	return user, hash, nil
}

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func isBcrypt(h []byte) bool {
	for _, p := range []string{"$2a$", "$2b$", "$2y$"} {
		if bytes.HasPrefix(h, []byte(p)) {
			return true
		}
	}
	return false
}
