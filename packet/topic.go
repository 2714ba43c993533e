package packet

import (
	"strings"
	"unicode/utf8"
)

// ValidateTopicName checks a PUBLISH (or Will) topic name by the 3.1.1 rules:
// non-empty [MQTT-4.7.3-1], at most 65535 bytes [MQTT-4.7.3-3], UTF-8
// [MQTT-1.5.3-1] without U+0000 [MQTT-4.7.3-2], no wildcards [MQTT-3.3.2-2].
// The failure is an *Error naming the statement.
func ValidateTopicName(name string) error { return CheckTopicName(name, V311) }

// ValidateTopicFilter checks a SUBSCRIBE/UNSUBSCRIBE topic filter by the 3.1.1
// rules: the string rules of ValidateTopicName, '#' alone in the last level
// [MQTT-4.7.1-2], '+' alone in its level [MQTT-4.7.1-3].
func ValidateTopicFilter(filter string) error { return CheckTopicFilter(filter, V311) }

// CheckTopicName is ValidateTopicName citing the statement IDs of the given
// protocol level (V5 IDs for V5, 3.1.1 IDs otherwise).
func CheckTopicName(name string, version byte) error {
	if err := checkTopicString(name, version == V5, CodeTopicNameInvalid, "topic name"); err != nil {
		return err
	}
	return topicNameRules(name)
}

// topicNameRules checks what is left of CheckTopicName once the string is
// known to be valid UTF-8 without U+0000 (the decoder has checked that).
func topicNameRules(name string) error {
	if name == "" {
		return errf(0, "MQTT-4.7.3-1", CodeTopicNameInvalid, "topic name is empty")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '+' || c == '#' {
			return errf(0, "MQTT-3.3.2-2", CodeTopicNameInvalid, "topic name %q contains a wildcard", name)
		}
	}
	return nil
}

// CheckTopicFilter is ValidateTopicFilter citing the statement IDs of the
// given protocol level. For V5 it also checks the shared subscription form
// "$share/{ShareName}/{filter}" [MQTT-4.8.2-1], [MQTT-4.8.2-2].
func CheckTopicFilter(filter string, version byte) error {
	v5 := version == V5
	if err := checkTopicString(filter, v5, CodeTopicFilterInvalid, "topic filter"); err != nil {
		return err
	}
	if v5 && strings.HasPrefix(filter, "$share/") {
		rest := filter[len("$share/"):]
		slash := strings.IndexByte(rest, '/')
		if slash <= 0 {
			if slash == 0 || rest == "" {
				return errf(0, "MQTT-4.8.2-1", CodeTopicFilterInvalid, "shared subscription %q has an empty share name", filter)
			}
			return errf(0, "MQTT-4.8.2-2", CodeTopicFilterInvalid, "shared subscription %q has no topic filter after the share name", filter)
		}
		if strings.ContainsAny(rest[:slash], "+#") {
			return errf(0, "MQTT-4.8.2-2", CodeTopicFilterInvalid, "share name in %q contains a wildcard", filter)
		}
		filter = rest[slash+1:]
		if filter == "" {
			return errf(0, "MQTT-4.8.2-2", CodeTopicFilterInvalid, "shared subscription has an empty topic filter")
		}
	}
	hashID, plusID := "MQTT-4.7.1-2", "MQTT-4.7.1-3"
	if v5 {
		hashID, plusID = "MQTT-4.7.1-1", "MQTT-4.7.1-2"
	}
	start := 0
	for i := 0; i <= len(filter); i++ {
		if i < len(filter) && filter[i] != '/' {
			continue
		}
		level := filter[start:i]
		if strings.IndexByte(level, '#') >= 0 && (level != "#" || i != len(filter)) {
			return errf(0, hashID, CodeTopicFilterInvalid, "topic filter %q: '#' must be alone in the last level", filter)
		}
		if strings.IndexByte(level, '+') >= 0 && level != "+" {
			return errf(0, plusID, CodeTopicFilterInvalid, "topic filter %q: '+' must fill a whole level", filter)
		}
		start = i + 1
	}
	return nil
}

func checkTopicString(s string, v5 bool, code byte, what string) error {
	if s == "" {
		return errf(0, "MQTT-4.7.3-1", code, "%s is empty", what)
	}
	if len(s) > 65535 {
		return errf(0, "MQTT-4.7.3-3", code, "%s is %d bytes, over 65535", what, len(s))
	}
	if !utf8.ValidString(s) {
		stmt := "MQTT-1.5.3-1"
		if v5 {
			stmt = "MQTT-1.5.4-1"
		}
		return errf(0, stmt, CodeMalformed, "%s is ill-formed UTF-8", what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errf(0, "MQTT-4.7.3-2", CodeMalformed, "%s contains U+0000", what)
	}
	return nil
}
