package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

// TestSCRAMCredentialRoundTrip: a stored credential parses back to keys a
// client with the password derives, and a client with the wrong one does not.
func TestSCRAMCredentialRoundTrip(t *testing.T) {
	s, err := SCRAMCredential("pw", 10)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "SCRAM-SHA-256$4096:") {
		t.Fatalf("credential %q: want the minimum of 4096 iterations", s)
	}
	c, err := parseSCRAMCredential(s)
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"pw": true, "pw2": false} {
		cl, err := scram.SHA256.NewClient("u", pw, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := cl.GetStoredCredentialsWithError(c.KeyFactors)
		if err != nil {
			t.Fatal(err)
		}
		if (string(got.StoredKey) == string(c.StoredKey)) != want {
			t.Errorf("password %q: StoredKey match %v, want %v", pw, !want, want)
		}
	}
}

func TestLoadSCRAMErrors(t *testing.T) {
	good, err := SCRAMCredential("pw", MinSCRAMIterations)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ content, want string }{
		"no colon":        {"alice\n", "want user:"},
		"duplicate":       {"a:" + good + "\na:" + good + "\n", "listed twice"},
		"bcrypt hash":     {"a:$2b$10$abc\n", "want SCRAM-SHA-256$"},
		"few iterations":  {"a:" + strings.Replace(good, "$4096:", "$1000:", 1) + "\n", "at least 4096"},
		"bad base64":      {"a:SCRAM-SHA-256$4096:%%$AA==:AA==\n", "bad base64"},
		"short keys":      {"a:SCRAM-SHA-256$4096:c2FsdA==$AA==:AA==\n", "32-byte keys"},
		"missing keys":    {"a:SCRAM-SHA-256$4096:c2FsdA==\n", "no '$'"},
		"missing factors": {"a:SCRAM-SHA-256$4096$AA==:AA==\n", "want <iterations>:<salt>"},
	} {
		f := filepath.Join(t.TempDir(), "scram")
		if err := os.WriteFile(f, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(Config{SCRAMFile: f})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), f+":") {
			t.Errorf("%s: Load = %v; want an error naming the file and line, containing %q", name, err, tc.want)
		}
	}
	if _, err := Load(Config{SCRAMFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing SCRAM file loaded")
	}
}

// TestSCRAMUnknownUserChallenged: an unknown user gets a server-first
// message like a known one and fails only at the proof.
func TestSCRAMUnknownUserChallenged(t *testing.T) {
	m, err := newSCRAMMethod(nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := scram.SHA256.NewClient("ghost", "pw", "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	first, _ := conv.Step("")
	x := m.Start()
	out, done, err := x.Step([]byte(first))
	if err != nil || done || !strings.Contains(string(out), ",i=4096") {
		t.Fatalf("first step = %q, %v, %v; want a challenge", out, done, err)
	}
	final, err := conv.Step(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if _, done, err := x.Step([]byte(final)); err == nil || done {
		t.Fatalf("unknown user authenticated: done %v, err %v", done, err)
	}
}

func TestMethodRegistry(t *testing.T) {
	m, err := newSCRAMMethod(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Config{Methods: []Method{m, m}}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate method: %v", err)
	}
	a, err := Load(Config{Methods: []Method{m}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Method(SCRAMMethod) != m || a.Method("PLAIN") != nil || (*Auth)(nil).Method(SCRAMMethod) != nil {
		t.Error("Method lookup")
	}
}
