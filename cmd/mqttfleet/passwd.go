package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/broker/auth"
)

func init() {
	register("passwd [--scram] -f FILE USER", "add or replace a user in a broker password file (bcrypt) or SCRAM file",
		"Reads the password as one line from standard input and writes USER's \"user:bcrypt-hash\" line into FILE,\n"+
			"replacing an existing line for USER and keeping every other line as it was. With --scram the line is\n"+
			"\"user:SCRAM-SHA-256$...\" for the broker's scram_file (MQTT 5.0 enhanced authentication).", passwdCmd)
}

func passwdCmd(fs *pflag.FlagSet) runFunc {
	file, scram := passwdFlags(fs)
	return func(_ context.Context, args []string) error { return setPassword(*file, *scram, args, os.Stdin) }
}

// passwdFlags binds the flags of `mqttfleet passwd`.
func passwdFlags(fs *pflag.FlagSet) (file *string, scram *bool) {
	return fs.StringP("file", "f", "", "password file to create or update (created with mode 0600)"),
		fs.Bool("scram", false, "write a SCRAM-SHA-256 credential (the broker's scram_file) instead of a bcrypt hash")
}

// passwd is `mqttfleet passwd -f FILE USER` with its own flag parsing (for
// tests): it reads the password as one line from stdin and writes USER's
// "user:bcrypt-hash" line into FILE, replacing an existing line for USER and
// keeping every other line as it was.
func passwd(args []string, stdin io.Reader, stderr io.Writer) error {
	fset := pflag.NewFlagSet("passwd", pflag.ContinueOnError)
	fset.SetOutput(stderr)
	file, scram := passwdFlags(fset)
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return setPassword(*file, *scram, fset.Args(), stdin)
}

// setPassword writes the line for the one USER in args into file: a
// bcrypt hash, or with scram a SCRAM-SHA-256 credential.
func setPassword(file string, scram bool, args []string, stdin io.Reader) error {
	if file == "" {
		return fmt.Errorf("%w: --file (-f) FILE is required", errUsage)
	}
	if len(args) != 1 {
		return fmt.Errorf("%w: want exactly one USER argument, got %d", errUsage, len(args))
	}
	user := args[0]
	if err := checkUser(user); err != nil {
		return fmt.Errorf("%w: user %q: %v", errUsage, user, err)
	}
	pw, err := readPasswordLine(stdin)
	if err != nil {
		return err
	}
	var hash string
	if scram {
		hash, err = auth.SCRAMCredential(string(pw), auth.MinSCRAMIterations)
	} else {
		hash, err = auth.HashPassword(pw)
	}
	if err != nil {
		return err
	}
	return setPasswordLine(file, user, hash)
}

// checkUser refuses names the password file could not hold unambiguously.
func checkUser(user string) error {
	switch {
	case user == "":
		return errors.New("empty user name")
	case strings.ContainsRune(user, ':'):
		return errors.New("':' separates user and hash, so it cannot be in a user name")
	case strings.TrimSpace(user) != user:
		return errors.New("leading or trailing white space")
	case user[0] == '#':
		return errors.New("a line starting with '#' is a comment")
	case strings.ContainsFunc(user, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("control characters")
	}
	return nil
}

// readPasswordLine reads one line, without its line ending, from r.
func readPasswordLine(r io.Reader) ([]byte, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("read password from stdin: no input")
		}
		return nil, fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return nil, errors.New("read password from stdin: empty password")
	}
	return []byte(line), nil
}

// setPasswordLine writes user's line into path, replacing the old one or
// appending. The new content goes to a temporary file renamed over path, so a
// broker reading the file never sees half of it.
func setPasswordLine(path, user, hash string) error {
	mode := fs.FileMode(0o600)
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read password file: %w", err)
	default:
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	entry := user + ":" + hash
	var lines []string
	if len(old) > 0 {
		lines = strings.Split(strings.TrimSuffix(string(old), "\n"), "\n")
	}
	replaced := false
	for i, l := range lines {
		if t := strings.TrimSpace(l); t == "" || t[0] == '#' {
			continue
		}
		if u, _, ok := strings.Cut(l, ":"); ok && u == user {
			if replaced {
				return fmt.Errorf("password file %s:%d: user %q listed twice; fix the file by hand", path, i+1, user)
			}
			lines[i] = entry
			replaced = true
		}
	}
	if !replaced {
		lines = append(lines, entry)
	}
	content := strings.Join(lines, "\n") + "\n"

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write password file: %w", err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return fmt.Errorf("write password file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write password file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	return nil
}
