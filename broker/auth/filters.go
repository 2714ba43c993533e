package auth

import "strings"

// covers reports whether every topic that filter req can match is matched by
// filter acl: ACL "sensors/#" covers "sensors/+/temp", but "sensors/+/temp"
// does not cover "sensors/#". Both filters must be valid.
func covers(acl, req string) bool {
	// [MQTT-4.7.2-1] A wildcard first level of acl never matches '$' topics,
	// so it cannot cover a req whose first level is a literal '$' level.
	// A wildcard first level of req cannot reach '$' topics either.
	if startsWild(acl) && strings.HasPrefix(req, "$") {
		return false
	}
	if req == "#" {
		// A topic has at least one level, so at the top "#" has no parent
		// level to match and reaches exactly what "+/#" reaches.
		req = "+/#"
	}
	for {
		al, arest, amore := strings.Cut(acl, "/")
		if al == "#" {
			return true // matches this level (or the parent) and all below
		}
		rl, rrest, rmore := strings.Cut(req, "/")
		switch {
		case rl == "#":
			// req reaches the parent and any depth: only '#' covers that.
			return false
		case rl == "+":
			if al != "+" {
				return false
			}
		case al != "+" && al != rl:
			return false
		}
		switch {
		case !amore && !rmore:
			return true
		case !amore:
			return false // req has deeper topics acl cannot reach
		case !rmore:
			return arest == "#" // req's topic ends here; acl needs "x/#" to match "x"
		}
		acl, req = arest, rrest
	}
}

// overlaps reports whether some topic is matched by both filters, which must
// be valid.
func overlaps(a, b string) bool {
	// [MQTT-4.7.2-1] '$' topics are only reachable with a literal first level.
	if (startsWild(a) && strings.HasPrefix(b, "$")) || (startsWild(b) && strings.HasPrefix(a, "$")) {
		return false
	}
	for {
		al, arest, amore := strings.Cut(a, "/")
		bl, brest, bmore := strings.Cut(b, "/")
		if al == "#" || bl == "#" {
			return true
		}
		if al != "+" && bl != "+" && al != bl {
			return false
		}
		switch {
		case !amore && !bmore:
			return true
		case !amore:
			return brest == "#" // "x" and "x/#" share the topic "x"
		case !bmore:
			return arest == "#"
		}
		a, b = arest, brest
	}
}

// startsWild reports whether filter's first level is '+' or '#'.
func startsWild(filter string) bool {
	first, _, _ := strings.Cut(filter, "/")
	return first == "+" || first == "#"
}
