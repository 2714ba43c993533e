package broker

import (
	"fmt"
	"strings"

	"github.com/mqttfleet/mqttfleet/broker/topictree"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// CauseLimit is the drop cause of a message refused by a configured limit;
// the event's Detail names the limit.
const CauseLimit = events.CauseLimit

// limit is one configured bound whose refusals are counted.
type limit int

const (
	limitSubscriptions limit = iota
	limitTopicLength
	limitTopicLevels
	limitRetainedMessages
	limitRetainedBytes
	limitQueuedBytes
	numLimits
)

// limitNames are the limits' YAML names, used in events and metrics.
var limitNames = [numLimits]string{
	"max_subscriptions", "max_topic_length", "max_topic_levels",
	"max_retained_messages", "max_retained_bytes", "max_queued_bytes",
}

func (l limit) String() string { return limitNames[l] }

// value is the configured bound of l.
func (c *Config) limitValue(l limit) int {
	switch l {
	case limitSubscriptions:
		return c.MaxSubscriptions
	case limitTopicLength:
		return c.MaxTopicLength
	case limitTopicLevels:
		return c.MaxTopicLevels
	case limitRetainedMessages:
		return c.MaxRetainedMessages
	case limitRetainedBytes:
		return c.MaxRetainedBytes
	default:
		return c.MaxQueuedBytes
	}
}

// hitLimit counts a refusal by l and returns the reason for its event:
// "max_topic_levels (128): topic has 130 levels".
func (b *Broker) hitLimit(l limit, why string) string {
	b.limitHits[l].Add(1)
	return fmt.Sprintf("%s (%d): %s", l, b.cfg.limitValue(l), why)
}

// dropForLimit counts and reports a message refused by l.
func (b *Broker) dropForLimit(l limit, clientID, topic string, qos byte, why string) {
	b.drop(clientID, topic, qos, CauseLimit, b.hitLimit(l, why))
}

// checkTopic applies max_topic_length and max_topic_levels to a topic or
// filter; ok false names the limit and why.
func (b *Broker) checkTopic(topic string) (l limit, why string, ok bool) {
	if n := len(topic); n > b.cfg.MaxTopicLength {
		return limitTopicLength, fmt.Sprintf("%d bytes", n), false
	}
	// A topic of n bytes has at most n+1 levels: most need no count.
	if len(topic) >= b.cfg.MaxTopicLevels {
		if n := strings.Count(topic, "/") + 1; n > b.cfg.MaxTopicLevels {
			return limitTopicLevels, fmt.Sprintf("%d levels", n), false
		}
	}
	return 0, "", true
}

// retainWithin stores a retained message unless max_retained_messages or
// max_retained_bytes would be exceeded; a clearing (empty) message always
// passes. b.retMu is held.
func (b *Broker) retainWithin(r *packet.Publish, clientID string) {
	if len(r.Payload) > 0 {
		old := b.retained.Get(r.Topic)
		count, size := b.retained.Len(), b.retained.Bytes()+topictree.Size(r)
		if old == nil {
			count++
		} else {
			size -= topictree.Size(old)
		}
		switch {
		case count > b.cfg.MaxRetainedMessages:
			b.dropForLimit(limitRetainedMessages, clientID, r.Topic, r.QoS, "not retained (still forwarded)")
			return
		case size > b.cfg.MaxRetainedBytes:
			b.dropForLimit(limitRetainedBytes, clientID, r.Topic, r.QoS, fmt.Sprintf("%d bytes held; not retained (still forwarded)", size-topictree.Size(r)))
			return
		}
	}
	b.retained.Set(r)
}

// LimitRefusals returns how many times each limit refused something, by the
// limit's YAML name.
func (b *Broker) LimitRefusals() map[string]uint64 {
	out := make(map[string]uint64, numLimits)
	for l := range numLimits {
		out[l.String()] = b.limitHits[l].Load()
	}
	return out
}
