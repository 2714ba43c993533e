package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttfleet/mqttfleet/broker/auth"
)

func TestPasswdBadArgs(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	cases := []struct {
		name string
		args []string
	}{
		{"no args", nil},
		{"no file", []string{"alice"}},
		{"no user", []string{"-f", f}},
		{"two users", []string{"-f", f, "a", "b"}},
		{"colon in user", []string{"-f", f, "a:b"}},
		{"comment user", []string{"-f", f, "#a"}},
		{"space around user", []string{"-f", f, " a"}},
		{"newline in user", []string{"-f", f, "a\nb"}},
		{"unknown flag", []string{"-x", "-f", f, "a"}},
	}
	for _, c := range cases {
		err := passwd(c.args, strings.NewReader("pw\n"), io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("%s: error %v, want errUsage", c.name, err)
		}
	}
	if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bad arguments created the file: %v", err)
	}
}

func TestPasswdStdin(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	for _, in := range []string{"", "\n", "\r\n"} {
		if err := passwd([]string{"-f", f, "a"}, strings.NewReader(in), io.Discard); err == nil || errors.Is(err, errUsage) {
			t.Errorf("stdin %q: error %v, want a password error", in, err)
		}
	}
	if err := passwd([]string{"-f", f, "a"}, strings.NewReader(strings.Repeat("x", 73)+"\n"), io.Discard); err == nil {
		t.Error("73-byte password: bcrypt's limit is 72, want an error")
	}
}

func TestPasswdAddReplace(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	steps := []struct {
		user, input string
	}{
		{"alice", "first\n"},
		{"bob", "bobpw"}, // no final newline
		{"alice", "second\r\n"},
	}
	for _, s := range steps {
		if err := passwd([]string{"-f", f, s.user}, strings.NewReader(s.input), io.Discard); err != nil {
			t.Fatalf("passwd %s: %v", s.user, err)
		}
	}
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(f)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "alice:$2") || !strings.HasPrefix(lines[1], "bob:$2") {
		t.Fatalf("file content:\n%s\nwant alice then bob, one line each", data)
	}
	a, err := auth.Load(auth.Config{PasswordFile: f})
	if err != nil {
		t.Fatalf("written file does not load: %v", err)
	}
	checks := []struct {
		user, pw string
		want     byte
	}{
		{"alice", "second", 0},
		{"alice", "first", 4},
		{"bob", "bobpw", 0},
	}
	for _, c := range checks {
		if got := a.Authenticate(c.user, []byte(c.pw), true, true); got != c.want {
			t.Errorf("Authenticate(%s, %s) = %d, want %d", c.user, c.pw, got, c.want)
		}
	}
}

func TestPasswdKeepsOtherLines(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	orig := "# broker users\n\ncarol:$2a$04$abcdefghijklmnopqrstuuO9ZV7gsSgCq5.yRrL2u38ov7aGUeNp6\nalice:old\n"
	if err := os.WriteFile(f, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := passwd([]string{"-f", f, "alice"}, strings.NewReader("pw\n"), io.Discard); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f)
	lines := strings.Split(string(data), "\n")
	if len(lines) != 5 || lines[0] != "# broker users" || lines[1] != "" || !strings.HasPrefix(lines[2], "carol:") ||
		!strings.HasPrefix(lines[3], "alice:$2") || lines[4] != "" {
		t.Fatalf("content:\n%s", data)
	}
	if st, _ := os.Stat(f); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640 kept", st.Mode().Perm())
	}
}

// TestPasswdSCRAM: --scram writes a SCRAM-SHA-256 line the broker loads as
// its scram_file, replacing the user's earlier one.
func TestPasswdSCRAM(t *testing.T) {
	f := filepath.Join(t.TempDir(), "scram")
	for _, pw := range []string{"first\n", "second\n"} {
		if err := passwd([]string{"--scram", "-f", f, "dev"}, strings.NewReader(pw), io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "dev:SCRAM-SHA-256$4096:") {
		t.Fatalf("SCRAM file %q: want one dev:SCRAM-SHA-256$4096:... line", b)
	}
	a, err := auth.Load(auth.Config{SCRAMFile: f})
	if err != nil {
		t.Fatalf("broker refuses the file: %v", err)
	}
	if a.Method(auth.SCRAMMethod) == nil {
		t.Fatal("no SCRAM-SHA-256 method from the file")
	}
}
