package topictree

// Matches reports whether topic name matches filter. It is the reference
// definition the tree and the retained store agree with: '+' matches exactly
// one level, '#' matches the parent level and any number of children
// [MQTT-4.7.1-2], [MQTT-4.7.1-3], a filter whose first level is a wildcard
// does not match a topic starting with '$' [MQTT-4.7.2-1], and levels compare
// byte for byte [MQTT-4.7.3-4]. filter is assumed valid; an invalid one
// ("a/#/b", "a+") is matched as literally as its levels allow.
func Matches(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		first, _, _ := nextLevel(filter)
		if first == "+" || first == "#" {
			return false
		}
	}
	for {
		fl, frest, fmore := nextLevel(filter)
		if fl == "#" {
			return true
		}
		tl, trest, tmore := nextLevel(topic)
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore:
			return !tmore
		case !tmore:
			// "sport/#" matches "sport": only a lone '#' may follow.
			return frest == "#"
		}
		filter, topic = frest, trest
	}
}
