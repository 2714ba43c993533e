package auth

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// writeFile writes content to a new file in t's temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cheapHash is a bcrypt hash at the minimum cost, to keep tests fast.
func cheapHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestAuthenticate(t *testing.T) {
	h := cheapHash(t, "secret")
	// $2y$ and $2b$ are the prefixes Mosquitto and htpasswd write.
	y := "$2y$" + strings.TrimPrefix(cheapHash(t, "why"), "$2a$")
	pwFile := writeFile(t, "passwd", "# users\n\nalice:"+h+"\r\nbob:"+y+"\n")
	shut, err := Load(Config{}) // allow_anonymous false, no password file: Mosquitto 2 refuses everyone
	if err != nil {
		t.Fatal(err)
	}
	open, err := Load(Config{AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := Load(Config{PasswordFile: pwFile})
	if err != nil {
		t.Fatal(err)
	}
	aclOnly, err := Load(Config{ACLFile: writeFile(t, "acl", "topic readwrite #\n")})
	if err != nil {
		t.Fatal(err)
	}
	anon, err := Load(Config{PasswordFile: pwFile, AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		a          *Auth
		user, pass string
		hasU, hasP bool
		want       byte
	}{
		{"nil auth anonymous", nil, "", "", false, false, 0},
		{"nil auth user", nil, "x", "y", true, true, 0},
		{"nil auth password without user", nil, "", "p", false, true, 4}, // [MQTT-3.1.2-22]
		{"zero config anonymous", shut, "", "", false, false, 5},
		{"zero config any user", shut, "who", "pw", true, true, 5},
		{"zero config user without password", shut, "who", "", true, false, 5},
		{"zero config password without user", shut, "", "p", false, true, 4},
		{"ACL file only, anonymous off", aclOnly, "who", "pw", true, true, 5},
		{"ACL file only, anonymous off, no user", aclOnly, "", "", false, false, 5},
		{"no password file, anonymous on", open, "", "", false, false, 0},
		{"no password file, anonymous on, any user", open, "who", "", true, false, 0},
		{"right password", closed, "alice", "secret", true, true, 0},
		{"right password again (cached)", closed, "alice", "secret", true, true, 0},
		{"wrong password after cache", closed, "alice", "Secret", true, true, 4},
		{"$2y$ hash", closed, "bob", "why", true, true, 0},
		{"wrong password", closed, "alice", "nope", true, true, 4},
		{"empty password", closed, "alice", "", true, true, 4},
		{"user without password", closed, "alice", "", true, false, 4},
		{"unknown user", closed, "carol", "secret", true, true, 4},
		{"user name case matters", closed, "Alice", "secret", true, true, 4},
		{"password without user", closed, "", "secret", false, true, 4},
		{"anonymous refused", closed, "", "", false, false, 5},
		{"anonymous allowed", anon, "", "", false, false, 0},
		{"anonymous allowed, bad user still refused", anon, "carol", "x", true, true, 4},
		{"anonymous allowed, good user", anon, "bob", "why", true, true, 0},
	}
	for _, c := range cases {
		if got := c.a.Authenticate(c.user, []byte(c.pass), c.hasU, c.hasP); got != c.want {
			t.Errorf("%s: Authenticate = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestAuthenticateConcurrent(t *testing.T) {
	a, err := Load(Config{PasswordFile: writeFile(t, "passwd", "u:"+cheapHash(t, "p")+"\n")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				pw, want := "p", byte(0)
				if (i+j)%3 == 0 {
					pw, want = "bad", 4
				}
				if got := a.Authenticate("u", []byte(pw), true, true); got != want {
					t.Errorf("Authenticate(%q) = %d, want %d", pw, got, want)
				}
			}
		})
	}
	wg.Wait()
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword([]byte("hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := parsePasswordLine("u:" + h); err != nil {
		t.Fatalf("hash %q does not load: %v", h, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("hunter2")) != nil {
		t.Fatal("hash does not verify")
	}
}

func TestBadPasswordFile(t *testing.T) {
	good := cheapHash(t, "x")
	cases := []struct {
		name, line, wantErr string
	}{
		{"no colon", "alice", "no ':'"},
		{"empty user", ":" + good, "empty user name"},
		{"empty hash", "alice:", "empty hash"},
		{"sha512 hash", "alice:$6$abc$def", "not a bcrypt hash"},
		{"pbkdf2 hash", "alice:$7$101$abc$def", "not a bcrypt hash"},
		{"plain text", "alice:secret", "not a bcrypt hash"},
		{"bad cost", "alice:$2a$xx$" + good[7:], "malformed bcrypt hash"},
		{"truncated", "alice:" + good[:50], "malformed bcrypt hash"},
		{"padded", "alice:" + good + "zz", "malformed bcrypt hash"},
		{"bad character", "alice:" + good[:59] + "!", "malformed bcrypt hash"},
		{"duplicate user", "u:" + good + "\nu:" + good, "listed twice"},
	}
	for _, c := range cases {
		p := writeFile(t, "passwd", "# first line is a comment\n"+c.line+"\n")
		_, err := Load(Config{PasswordFile: p})
		if err == nil {
			t.Errorf("%s: Load succeeded, want error", c.name)
			continue
		}
		wantLine := ":2:"
		if c.name == "duplicate user" {
			wantLine = ":3:"
		}
		if !strings.Contains(err.Error(), p+wantLine) || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %q, want %q and %q", c.name, err, p+wantLine, c.wantErr)
		}
	}
	if _, err := Load(Config{PasswordFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing password file: no error")
	}
}
