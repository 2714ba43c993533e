// Package topictree holds the broker's subscription tree and retained store.
package topictree

import (
	"sync"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Sub is one client's subscription as stored in the tree.
type Sub struct {
	ClientID string
	packet.Subscription
}

// Tree is the subscription tree, safe for concurrent use.
type Tree struct {
	mu sync.RWMutex
}

// New returns an empty subscription tree.
func New() *Tree { return &Tree{} }

// Subscribe adds or replaces clientID's subscription to sub.Filter; existed reports a replace. [MQTT-3.8.4-3]
func (t *Tree) Subscribe(clientID string, sub packet.Subscription) (existed bool) { return false }

// Unsubscribe removes clientID's subscription to filter; existed reports whether there was one.
func (t *Tree) Unsubscribe(clientID, filter string) (existed bool) { return false }

// Match appends to dst one Sub per client whose subscriptions match topic, with the
// highest QoS among that client's matching subscriptions [MQTT-3.3.5-1], and returns dst.
func (t *Tree) Match(topic string, dst []Sub) []Sub { return dst }

// Count returns the number of (client, filter) subscriptions.
func (t *Tree) Count() int { return 0 }

// Retained is the retained-message store, safe for concurrent use.
type Retained struct {
	mu sync.RWMutex
}

// NewRetained returns an empty retained store.
func NewRetained() *Retained { return &Retained{} }

// Set stores msg as the retained message of msg.Topic, replacing any; an empty payload removes it
// [MQTT-3.3.1-10], [MQTT-3.3.1-11]. It keeps msg as given.
func (r *Retained) Set(msg *packet.Publish) (stored bool) { return false }

// Match calls fn for every retained message whose topic matches filter.
func (r *Retained) Match(filter string, fn func(*packet.Publish)) {}

// Len returns the number of retained messages.
func (r *Retained) Len() int { return 0 }

// Matches reports whether topic name matches filter.
func Matches(filter, topic string) bool { return false }
