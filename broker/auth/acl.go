package auth

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/mqttfleet/mqttfleet/packet"
)

// access is what a rule grants; deny takes everything away.
type access uint8

const (
	read  access = 1 << iota // subscribe and receive
	write                    // publish
	deny                     // refuse both, over any grant
)

// rule is one topic or pattern line of an ACL file.
type rule struct {
	access access
	filter string
	subst  bool // pattern line whose filter holds %u or %c
}

// acl is a parsed Mosquitto acl_file.
type acl struct {
	anon     []rule            // topic lines before the first user line
	users    map[string][]rule // topic lines in each user's block
	patterns []rule            // pattern lines, for every client
}

// loadACL reads an acl_file:
//
//	# comment
//	topic [read|write|readwrite|deny] <filter>     (before any user line: anonymous clients)
//	user <name>                                   (starts that user's block)
//	topic [read|write|readwrite|deny] <filter>     (in a block: that user)
//	pattern [read|write|readwrite|deny] <filter>   (everyone; %u user name, %c client ID)
//
// As in Mosquitto, the access word is optional (readwrite), and the filter
// and the user name are the rest of the line, spaces included.
func loadACL(path string) (*acl, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read ACL file: %w", err)
	}
	defer f.Close()
	a := &acl{users: make(map[string][]rule)}
	var user *string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if err := a.parseLine(sc.Text(), &user); err != nil {
			return nil, fmt.Errorf("auth: ACL file %s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: read ACL file %s: %w", path, err)
	}
	return a, nil
}

func (a *acl) parseLine(line string, user **string) error {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return nil
	}
	keyword, rest, _ := strings.Cut(line, " ")
	if k, r, ok := strings.Cut(line, "\t"); ok && len(k) < len(keyword) {
		keyword, rest = k, r
	}
	rest = strings.TrimSpace(rest)
	switch keyword {
	case "user":
		if rest == "" {
			return fmt.Errorf("user line without a user name")
		}
		name := rest
		*user = &name
		return nil
	case "topic", "pattern":
	default:
		return fmt.Errorf("unknown keyword %q: want topic, user or pattern", keyword)
	}
	if rest == "" {
		return fmt.Errorf("%s line without a topic filter", keyword)
	}
	r := rule{access: read | write, filter: rest}
	if word, filter, ok := cutSpace(rest); ok {
		acc, known := map[string]access{"read": read, "write": write, "readwrite": read | write, "deny": deny}[word]
		if !known {
			return fmt.Errorf("unknown access %q: want read, write, readwrite or deny", word)
		}
		r.access, r.filter = acc, filter
	}
	check := r.filter
	if keyword == "pattern" {
		r.subst = strings.Contains(r.filter, "%u") || strings.Contains(r.filter, "%c")
		check = strings.NewReplacer("%u", "u", "%c", "c").Replace(r.filter)
	}
	if err := validFilter(check); err != nil {
		return fmt.Errorf("%s filter %q: %w", keyword, r.filter, err)
	}
	switch {
	case keyword == "pattern":
		a.patterns = append(a.patterns, r)
	case *user == nil:
		a.anon = append(a.anon, r)
	default:
		a.users[**user] = append(a.users[**user], r)
	}
	return nil
}

// cutSpace splits s at its first run of blanks.
func cutSpace(s string) (before, after string, ok bool) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, "", false
	}
	return s[:i], strings.TrimLeft(s[i:], " \t"), true
}

// validFilter checks the wildcard rules of a topic filter [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1].
func validFilter(f string) error {
	if f == "" {
		return fmt.Errorf("empty filter")
	}
	if strings.IndexByte(f, 0) >= 0 {
		return fmt.Errorf("contains U+0000") // [MQTT-4.7.3-2]
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("'#' must be a whole last level")
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("'+' must be a whole level")
		}
	}
	return nil
}

// rulesFor returns the topic rules that apply to username: the anonymous
// ones for clients without a user name, the user's block otherwise.
func (a *acl) rulesFor(username string) []rule {
	if username == "" {
		return a.anon
	}
	return a.users[username]
}

// resolve returns the filter of r for this client. ok is false when the rule
// does not apply: a %u pattern for a client without a user name. unsafe is
// true when a substituted value holds '+', '#' or '/', which would turn a
// user-controlled name into a wildcard or an extra level.
func resolve(r rule, username, clientID string) (filter string, ok, unsafe bool) {
	if !r.subst {
		return r.filter, true, false
	}
	for _, v := range []struct{ key, val string }{{"%u", username}, {"%c", clientID}} {
		if !strings.Contains(r.filter, v.key) {
			continue
		}
		if v.val == "" {
			return "", false, false
		}
		if strings.ContainsAny(v.val, "+#/") {
			return "", true, true
		}
	}
	return strings.NewReplacer("%u", username, "%c", clientID).Replace(r.filter), true, false
}

// decide runs the rules for one request: hit reports whether a granting
// rule's filter allows the request, denyHit whether a deny rule's filter
// refuses it, denyTouch (nil for a topic) whether it reaches part of it; want
// is the access needed. A deny that hits wins; a grant of want that hits
// allows; nothing granted means no. touched reports a deny that reaches
// part of the request without refusing it.
func (a *acl) decide(username, clientID string, want access, hit, denyHit, denyTouch func(filter string) bool) (ok, touched bool) {
	granted := false
	for _, rules := range [][]rule{a.rulesFor(username), a.patterns} {
		for _, r := range rules {
			f, ok, unsafe := resolve(r, username, clientID)
			if !ok {
				continue
			}
			if r.access&deny != 0 {
				// Fail closed: an unsafe name cannot be matched, so a
				// deny pattern built from it refuses the request.
				if unsafe || denyHit(f) {
					return false, false
				}
				if denyTouch != nil && denyTouch(f) {
					touched = true
				}
				continue
			}
			if !unsafe && r.access&want != 0 && !granted && hit(f) {
				granted = true
			}
		}
	}
	return granted, granted && touched
}

func (a *acl) canPublish(username, clientID, topic string) bool {
	m := func(f string) bool { return packet.MatchTopic(f, topic) }
	ok, _ := a.decide(username, clientID, write, m, m, nil)
	return ok
}

func (a *acl) canRead(username, clientID, topic string) bool {
	m := func(f string) bool { return packet.MatchTopic(f, topic) }
	ok, _ := a.decide(username, clientID, read, m, m, nil)
	return ok
}

// canSubscribe grants filter when a read grant covers it and no deny
// covers it entirely; filtered reports a deny that overlaps it, so each
// message must be checked with canRead before delivery.
func (a *acl) canSubscribe(username, clientID, filter string) (ok, filtered bool) {
	if validFilter(filter) != nil {
		return false, false
	}
	c := func(f string) bool { return covers(f, filter) }
	return a.decide(username, clientID, read, c, c, func(f string) bool { return overlaps(f, filter) })
}
