package topictree

import (
	"testing"

	"github.com/mqttfleet/mqttfleet/packet"
)

// matchCases are the examples of the standard's section 4.7 plus edge cases.
// Each is checked against Matches, the subscription tree and the retained store.
var matchCases = []struct {
	filter, topic string
	want          bool
	why           string
}{
	// 4.7.1.2 multi-level wildcard [MQTT-4.7.1-2]
	{"sport/tennis/player1/#", "sport/tennis/player1", true, "'#' matches the parent level"},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true, "one child level"},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true, "two child levels"},
	{"sport/tennis/player1/#", "sport/tennis/player2", false, "sibling"},
	{"sport/tennis/player1/#", "sport/tennis", false, "grandparent"},
	{"sport/#", "sport", true, "'sport/#' matches 'sport'"},
	{"sport/#", "sport/", true, "empty child level"},
	{"#", "sport/tennis/player1", true, "'#' matches every topic"},
	{"#", "/", true, "'#' matches two empty levels"},
	{"#", "a", true, "'#' matches one level"},
	// 4.7.1.3 single-level wildcard [MQTT-4.7.1-3]
	{"sport/tennis/+", "sport/tennis/player1", true, "'+' one level"},
	{"sport/tennis/+", "sport/tennis/player2", true, "'+' one level"},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false, "'+' not two levels"},
	{"sport/tennis/+", "sport/tennis", false, "'+' needs a level"},
	{"sport/+", "sport", false, "'sport/+' does not match 'sport'"},
	{"sport/+", "sport/", true, "'+' matches an empty level"},
	{"+", "sport", true, "'+' alone"},
	{"+/+", "/finance", true, "'+/+' matches '/finance'"},
	{"/+", "/finance", true, "'/+' matches '/finance'"},
	{"+", "/finance", false, "'+' does not match '/finance'"},
	{"+/tennis/#", "sport/tennis", true, "'+' then '#' parent"},
	{"+/tennis/#", "sport/tennis/x/y", true, "'+' then '#'"},
	{"+/#", "a", true, "'+/#' matches one level"},
	{"sport/+/player1", "sport/tennis/player1", true, "'+' in the middle"},
	{"sport/+/player1", "sport//player1", true, "'+' matches an empty middle level"},
	// 4.7.2 topics beginning with '$' [MQTT-4.7.2-1]
	{"#", "$SYS/broker/clients", false, "'#' skips '$' topics"},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false, "'+' first skips '$' topics"},
	{"$SYS/#", "$SYS/monitor/Clients", true, "explicit '$SYS/#'"},
	{"$SYS/#", "$SYS", true, "explicit '$SYS/#' parent"},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true, "'+' after a '$' level"},
	{"+", "$SYS", false, "'+' skips a one-level '$' topic"},
	{"#", "a/$b", true, "'$' only matters at the start"},
	{"+/$b", "a/$b", true, "'$' in a later level is ordinary"},
	{"$", "$", true, "literal '$'"},
	// 4.7.3 case, empty levels, no normalization [MQTT-4.7.3-4]
	{"ACCOUNTS", "Accounts", false, "case sensitive"},
	{"a//b", "a//b", true, "empty middle level"},
	{"a/b", "a//b", false, "empty level is a level"},
	{"/a", "/a", true, "leading empty level"},
	{"/a", "a", false, "leading slash matters"},
	{"a/", "a", false, "trailing slash matters"},
	{"a", "a/", false, "trailing slash matters (topic)"},
	{"a/+", "a/", true, "'+' matches a trailing empty level"},
	{"a/#", "a//", true, "'#' matches empty levels"},
	{"/", "/", true, "two empty levels"},
	{"//", "/", false, "three empty levels vs two"},
	{"a b", "a b", true, "spaces are ordinary"},
	{"ä/ü", "ä/ü", true, "UTF-8 levels"},
	{"sport/tennis", "sport/tennis/x", false, "filter shorter than topic"},
	{"sport/tennis/x", "sport/tennis", false, "filter longer than topic"},
	{"a/+/c", "a/b/d", false, "last level differs"},
}

func TestMatches(t *testing.T) {
	for _, c := range matchCases {
		if got := Matches(c.filter, c.topic); got != c.want {
			t.Errorf("Matches(%q, %q) = %v, want %v (%s)", c.filter, c.topic, got, c.want, c.why)
		}
	}
}

func TestTreeMatchTable(t *testing.T) {
	for _, c := range matchCases {
		tr := New()
		tr.Subscribe("c1", packet.Subscription{Filter: c.filter, QoS: 1})
		got := tr.Match(c.topic, nil)
		if (len(got) == 1) != c.want || len(got) > 1 {
			t.Errorf("tree %q on %q: %d subs, want match=%v (%s)", c.filter, c.topic, len(got), c.want, c.why)
		}
	}
}

func TestRetainedMatchTable(t *testing.T) {
	for _, c := range matchCases {
		r := NewRetained()
		r.Set(&packet.Publish{Topic: c.topic, Payload: []byte("x"), Retain: true})
		n := 0
		r.Match(c.filter, func(*packet.Publish) { n++ })
		if (n == 1) != c.want || n > 1 {
			t.Errorf("retained %q on %q: %d msgs, want match=%v (%s)", c.filter, c.topic, n, c.want, c.why)
		}
	}
}
