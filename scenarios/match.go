package scenarios

import (
	"path"
	"strings"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// match returns the events.Match a Matcher describes.
func (m *Matcher) match() events.Match {
	if m == nil {
		return func(events.Event) bool { return true }
	}
	wild := strings.ContainsAny(m.Topic, "+#")
	return func(e events.Event) bool {
		if len(m.Kind) > 0 && !m.Kind.Has(string(e.Kind)) {
			return false
		}
		if m.Source != "" && string(e.Source) != m.Source {
			return false
		}
		// The broker's own events only count when asked for by name: checks
		// rest on what devices and watchers observe, so they hold on any broker.
		if m.Source == "" && e.Source == events.SourceBroker {
			return false
		}
		if m.Client != "" && !globMatch(m.Client, e.ClientID) {
			return false
		}
		if m.Group != "" && !inGroup(m.Group, e.Group) {
			return false
		}
		if m.Topic != "" {
			if wild {
				if !packet.MatchTopic(m.Topic, e.Topic) {
					return false
				}
			} else if m.Topic != e.Topic {
				return false
			}
		}
		if len(m.Cause) > 0 && !m.Cause.Has(string(e.Cause)) {
			return false
		}
		if m.QoS != nil && int(e.QoS) != *m.QoS {
			return false
		}
		if m.Retain != nil && e.Retain != *m.Retain {
			return false
		}
		if m.Dup != nil && e.Dup != *m.Dup {
			return false
		}
		if m.Payload != nil && (e.Kind != events.PublishReceived || payloadOf(e) != *m.Payload) {
			return false
		}
		if m.Code != nil && e.Code != *m.Code {
			return false
		}
		if m.SessionPresent != nil && e.SessionPresent != *m.SessionPresent {
			return false
		}
		if m.Statement != "" && e.Statement != m.Statement {
			return false
		}
		if m.Fault != "" && e.Fault != m.Fault {
			return false
		}
		return true
	}
}

// inGroup reports whether an event's group is g or one device of g (the
// proxy names a device's link "g#i" when single devices are addressed).
func inGroup(g, eventGroup string) bool {
	return eventGroup == g || strings.HasPrefix(eventGroup, g+"#")
}

// globMatch matches a client ID against a pattern where * is any run of
// characters; a pattern without * must match exactly.
func globMatch(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?[") {
		return pattern == s
	}
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// payloadPrefix marks the payload scenario clients keep in Detail.
const payloadPrefix = "payload="

// maxKeptPayload bounds the payload bytes kept per received message.
const maxKeptPayload = 256

// payloadOf returns the payload a scenario client recorded in e.
func payloadOf(e events.Event) string {
	s, _ := strings.CutPrefix(e.Detail, payloadPrefix)
	return s
}
