package client

import (
	"context"
	"fmt"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Topic Aliases from the broker. A client whose CONNECT gives a Topic
// Alias Maximum above 0 (Options.Props.TopicAliasMaximum) accepts every
// alias from 1 to it [MQTT-3.3.2-10]: a PUBLISH with a topic and an alias
// sets the alias for this connection [MQTT-3.3.2-7], one with an empty
// topic uses it. Delivered messages always carry the topic; the alias is
// left in Props for whoever wants to see it. An alias above the maximum
// (any alias when none was given) ends the link with DISCONNECT 0x94, an
// empty topic with an alias never set with DISCONNECT 0x82 (MQTT 5.0
// section 3.3.2.3.4).

// Reason codes the client sends in its DISCONNECT on a broker's violation.
const (
	rcProtocolError     byte = 0x82
	rcTopicAliasInvalid byte = 0x94
)

// resolveAlias puts the topic of an incoming MQTT 5 PUBLISH in p.Topic. It
// runs on the reader goroutine, which alone owns aliasIn.
func (c *Client) resolveAlias(p *packet.Publish) error {
	if p.Props == nil || p.Props.TopicAlias == nil {
		return nil
	}
	alias := *p.Props.TopicAlias
	var most uint16
	if o := c.opts.Props; o != nil && o.TopicAliasMaximum != nil {
		most = *o.TopicAliasMaximum
	}
	if alias > most { // 0 never gets here: the codec refuses it [MQTT-3.3.2-8]
		return &ProtocolError{Code: rcTopicAliasInvalid, Detail: fmt.Sprintf("Topic Alias %d above our Topic Alias Maximum %d", alias, most)}
	}
	if p.Topic != "" {
		if c.aliasIn == nil {
			c.aliasIn = make(map[uint16]string, min(int(most), 64))
		}
		c.aliasIn[alias] = p.Topic
		return nil
	}
	topic, ok := c.aliasIn[alias]
	if !ok {
		return &ProtocolError{Code: rcProtocolError, Detail: fmt.Sprintf("Topic Alias %d with an empty topic, never set on this connection", alias)}
	}
	p.Topic = topic
	return nil
}

// violationDisconnectWait bounds the DISCONNECT the reader sends before
// closing on a broker's violation: a busy write slot or a broker that does
// not read must not hold the close up.
const violationDisconnectWait = 250 * time.Millisecond

// disconnectFor sends an MQTT 5 DISCONNECT with code, best effort, and
// writes nothing after it [MQTT-3.14.4-2]. Reader goroutine only.
func (c *Client) disconnectFor(code byte) {
	ctx, cancel := context.WithTimeout(context.Background(), violationDisconnectWait)
	defer cancel()
	if c.acquireWrite(ctx) != nil {
		return
	}
	_, _ = c.writeLocked(ctx, &packet.Disconnect{ReasonCode: code})
	c.wclosed = true
	c.releaseWrite()
}
