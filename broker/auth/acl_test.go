package auth

import (
	"path/filepath"
	"strings"
	"testing"
)

const testACL = `# anonymous clients
topic read public/#
topic write public/anon/+
topic deny public/secret

user alice
topic readwrite alice/#
topic read  sensors/+/temp
topic write cmd/room 1/set
topic deny alice/private/#

user bob
topic sensors/#
topic deny sensors/b3/#

user  eve
	topic	read	$SYS/#

# every client
pattern write devices/%c/status
pattern readwrite users/%u/#
pattern read shared/%u/%c
pattern deny blocked/%u
`

func TestACL(t *testing.T) {
	a, err := Load(Config{ACLFile: writeFile(t, "acl", testACL)})
	if err != nil {
		t.Fatal(err)
	}
	type req struct {
		op, user, client, topic string // op: pub, sub, subf, read
		want                    bool
	}
	cases := []req{
		// anonymous: topic lines before the first user line
		{"subf", "", "c", "public/#", true}, // granted; public/secret filtered per message
		{"sub", "", "c", "public/news/#", true},
		{"subf", "", "c", "public/news/#", false}, // no deny reaches it: not filtered
		{"sub", "", "c", "public/news", true},
		{"pub", "", "c", "public/news", false},
		{"pub", "", "c", "public/anon/x", true},
		{"pub", "", "c", "public/anon/x/y", false},
		{"read", "", "c", "public/secret", false},        // deny wins over read public/#
		{"sub", "", "c", "public/secret", false},         // the deny covers it entirely
		{"subf", "", "c", "public/+", true},              // overlaps public/secret: filtered
		{"sub", "", "c", "#", false},                     // not granted
		{"pub", "", "c", "alice/x", false},               // alice's block is not anonymous
		{"pub", "", "dev1", "devices/dev1/status", true}, // %c pattern applies to anonymous
		{"pub", "", "c", "users//x", false},              // %u pattern skipped without a user name
		// alice
		{"pub", "alice", "c", "alice/a/b", true},
		{"subf", "alice", "c", "alice/#", true},         // overlaps alice/private/#: filtered
		{"subf", "alice", "c", "alice/+", true},         // reaches alice/private ("#" matches its parent)
		{"sub", "alice", "c", "alice/private/+", false}, // covered by the deny
		{"sub", "alice", "c", "alice/private", false},   // "#" matches its parent
		{"sub", "alice", "c", "alice/a/+", true},
		{"pub", "alice", "c", "alice/private/x", false},
		{"pub", "alice", "c", "alice/private", false},
		{"sub", "alice", "c", "sensors/+/temp", true},
		{"sub", "alice", "c", "sensors/k/temp", true},
		{"sub", "alice", "c", "sensors/#", false}, // ACL "sensors/+/temp" does not cover it
		{"pub", "alice", "c", "sensors/k/temp", false},
		{"pub", "alice", "c", "cmd/room 1/set", true}, // spaces: the filter is the rest of the line
		{"pub", "alice", "c", "public/news", false},   // anonymous lines do not apply to users
		{"pub", "alice", "c", "users/alice/x", true},
		{"sub", "alice", "c", "users/alice/#", true},
		{"pub", "alice", "c", "users/bob/x", false},
		{"sub", "alice", "c", "users/+/x", false},
		{"sub", "alice", "alicephone", "shared/alice/alicephone", true},
		{"sub", "alice", "alicephone", "shared/alice/other", false},
		{"pub", "alice", "c", "blocked/alice", false},
		// bob: access word optional (readwrite)
		{"pub", "bob", "c", "sensors/b1/temp", true},
		{"sub", "bob", "c", "sensors/b1/#", true},
		{"subf", "bob", "c", "sensors/#", true},    // reaches the denied sensors/b3: filtered
		{"sub", "bob", "c", "sensors/b3/+", false}, // covered by the deny
		{"subf", "bob", "c", "sensors/+/temp", true},
		{"pub", "bob", "c", "sensors/b3/temp", false},
		{"pub", "bob", "c", "sensors/b3", false},
		// eve: tabs and extra spaces
		{"sub", "eve", "c", "$SYS/broker/#", true},
		{"sub", "eve", "c", "#", false},
		// unknown user: only patterns
		{"pub", "mallory", "c", "users/mallory/x", true},
		{"pub", "mallory", "c", "public/anon/x", false},
		// invalid filter
		{"sub", "alice", "c", "alice/#/x", false},
		{"sub", "alice", "c", "alice/a+", false},
	}
	for _, c := range cases {
		var got bool
		switch c.op {
		case "pub":
			got = a.CanPublish(c.user, c.client, c.topic)
		case "sub":
			got = a.CanSubscribe(c.user, c.client, c.topic)
		case "subf": // granted and filtered per message
			ok, filtered := a.Subscribe(c.user, c.client, c.topic)
			got = ok && filtered
		case "read":
			got = a.CanRead(c.user, c.client, c.topic)
		}
		if got != c.want {
			t.Errorf("%s user=%q client=%q %q = %v, want %v", c.op, c.user, c.client, c.topic, got, c.want)
		}
	}
}

// TestSubstitutionSafety: a user name or client ID holding '+', '#' or '/'
// must not widen what a %u/%c pattern grants, and must not escape a deny.
func TestSubstitutionSafety(t *testing.T) {
	a, err := Load(Config{ACLFile: writeFile(t, "acl", "pattern readwrite users/%u/#\npattern write devices/%c\n")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Load(Config{ACLFile: writeFile(t, "acl", "topic readwrite #\nuser x/y\ntopic readwrite #\nuser +\ntopic readwrite #\npattern deny private/%u/#\n")})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ok   bool
		want bool
	}{
		{"'+' user publishes to another user's tree", a.CanPublish("+", "c", "users/bob/x"), false},
		{"'+' user subscribes to every user's tree", a.CanSubscribe("+", "c", "users/+/#"), false},
		{"'#' user subscribes", a.CanSubscribe("#", "c", "users/#"), false},
		{"'/' user reaches another user", a.CanPublish("bob/x", "c", "users/bob/x/y"), false},
		{"'+' client ID", a.CanPublish("u", "+", "devices/other"), false},
		{"'#' client ID", a.CanPublish("u", "#", "devices/#"), false},
		{"'/' client ID", a.CanPublish("u", "a/b", "devices/a/b"), false},
		{"ordinary user still works", a.CanPublish("bob", "c", "users/bob/x"), true},
		{"ordinary client still works", a.CanPublish("u", "dev1", "devices/dev1"), true},
		{"deny pattern fails closed for '/' user", d.CanPublish("x/y", "c", "anything"), false},
		{"deny pattern fails closed for '+' user", d.CanSubscribe("+", "c", "x"), false},
		{"deny pattern skipped for anonymous", d.CanPublish("", "c", "private/x"), true},
	}
	for _, c := range cases {
		if c.ok != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.ok, c.want)
		}
	}
}

func TestNoACLPermitsAll(t *testing.T) {
	for _, a := range []*Auth{nil, mustLoad(t, Config{}), mustLoad(t, Config{PasswordFile: writeFile(t, "p", "")})} {
		if !a.CanPublish("", "c", "$SYS/x") || !a.CanSubscribe("u", "c", "#") || !a.CanRead("u", "c", "a") {
			t.Errorf("%+v: without an ACL file everything must be permitted", a)
		}
	}
	empty := mustLoad(t, Config{ACLFile: writeFile(t, "acl", "# nothing granted\n")})
	if empty.CanPublish("", "c", "a") || empty.CanSubscribe("u", "c", "a") {
		t.Error("with an empty ACL file nothing may be granted")
	}
}

func mustLoad(t *testing.T, cfg Config) *Auth {
	t.Helper()
	a, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestBadACLFile(t *testing.T) {
	cases := []struct {
		name, line, wantErr string
	}{
		{"unknown keyword", "topics read a", "unknown keyword"},
		{"user without name", "user", "without a user name"},
		{"topic without filter", "topic", "without a topic filter"},
		{"pattern without filter", "pattern   ", "without a topic filter"},
		{"unknown access", "topic writeonly a/b", "unknown access"},
		{"two words, first not an access", "topic foo bar", "unknown access"},
		{"'#' not last", "topic read a/#/b", "'#' must be a whole last level"},
		{"'#' inside a level", "topic read a/b#", "'#' must be a whole last level"},
		{"'+' inside a level", "topic read a/b+/c", "'+' must be a whole level"},
		{"pattern '+' glued to %u", "pattern read a/%u+", "'+' must be a whole level"},
		{"NUL", "topic read a\x00b", "U+0000"},
	}
	for _, c := range cases {
		p := writeFile(t, "acl", "# header\n"+c.line+"\n")
		_, err := Load(Config{ACLFile: p})
		if err == nil {
			t.Errorf("%s: Load succeeded, want error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), p+":2:") || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %q, want %q and %q", c.name, err, p+":2:", c.wantErr)
		}
	}
	if _, err := Load(Config{ACLFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing ACL file: no error")
	}
}

// TestACLSingleWordTopic: as in Mosquitto, "topic read" names the topic "read".
func TestACLSingleWordTopic(t *testing.T) {
	a := mustLoad(t, Config{ACLFile: writeFile(t, "acl", "topic read\n")})
	if !a.CanPublish("", "c", "read") || !a.CanSubscribe("", "c", "read") {
		t.Error("'topic read' must grant readwrite on topic \"read\"")
	}
}
