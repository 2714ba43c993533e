package broker

import (
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 Subscription Identifiers (section 3.8.2.1.2): a SUBSCRIBE may
// carry one, stored with each of its subscriptions (topictree.Sub.IDs) and
// sent back in every PUBLISH those subscriptions match [MQTT-3.3.4-3]; one
// copy for overlapping subscriptions carries all of them [MQTT-3.3.4-4].
// A later SUBSCRIBE to the same filter without one removes it. Identifier 0
// is a Protocol Error the codec refuses, closing the connection with 0x82.

// subscriptionID is the Subscription Identifier of a SUBSCRIBE, 0 for none.
// The codec allows at most one in a SUBSCRIBE.
func subscriptionID(p *packet.Subscribe) uint32 {
	if p.Props == nil || len(p.Props.SubscriptionIDs) == 0 {
		return 0
	}
	return p.Props.SubscriptionIDs[0]
}

// withSubIDs returns a copy of props carrying ids as its Subscription
// Identifiers: the routed message's properties are shared by every
// subscriber, so each subscriber with identifiers gets its own.
func withSubIDs(props *packet.Properties, ids []uint32) *packet.Properties {
	var cp packet.Properties
	if props != nil {
		cp = *props
	}
	cp.SubscriptionIDs = ids
	return &cp
}
