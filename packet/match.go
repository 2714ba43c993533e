package packet

// MatchTopic reports whether topic name matches filter: '+' matches exactly
// one level, '#' matches the parent level and any number of children
// [MQTT-4.7.1-2], [MQTT-4.7.1-3], a filter whose first level is a wildcard
// does not match a topic starting with '$' [MQTT-4.7.2-1], and levels
// compare byte for byte [MQTT-4.7.3-4]. filter is assumed valid
// (CheckTopicFilter); an invalid one ("a/#/b", "a+") is matched as literally
// as its levels allow. It is the one definition the broker's subscription
// tree and retained store, the simulator and the scenarios agree with.
func MatchTopic(filter, topic string) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		first, _, _ := cutLevel(filter)
		if first == "+" || first == "#" {
			return false
		}
	}
	for {
		fl, frest, fmore := cutLevel(filter)
		if fl == "#" {
			return true
		}
		tl, trest, tmore := cutLevel(topic)
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

// cutLevel splits s at its first '/'.
func cutLevel(s string) (level, rest string, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
