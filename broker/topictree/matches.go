package topictree

import "github.com/mqttfleet/mqttfleet/packet"

// Matches reports whether topic name matches filter.
//
// Deprecated: use packet.MatchTopic, the one definition of topic matching;
// this forwards to it until its last callers outside the broker move.
func Matches(filter, topic string) bool { return packet.MatchTopic(filter, topic) }
