package broker

import (
	"fmt"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 features the broker configures for itself and announces in
// CONNACK: Topic Aliases it sends, Server Keep Alive, Response
// Information, Maximum QoS and Retain Available. See docs/broker.md
// "MQTT 5.0".

// Reason codes of the limits below.
const (
	rcRetainNotSupported byte = 0x9A
	rcQoSNotSupported    byte = 0x9B
)

// validateServer5 checks the MQTT 5.0 knobs of the configuration.
func (c Config) validateServer5() error {
	if c.TopicAliasOut > 65535 {
		return fmt.Errorf("topic_alias_out: a Topic Alias is at most 65535, got %d", c.TopicAliasOut)
	}
	if c.ServerKeepAlive > 65535 {
		return fmt.Errorf("server_keep_alive: at most 65535 seconds, got %d", c.ServerKeepAlive)
	}
	if q := c.MaximumQoS; q != nil && (*q < 0 || *q > 2) {
		return fmt.Errorf("maximum_qos: 0, 1 or 2, got %d", *q)
	}
	if len(c.ResponseInformation) > 65535 {
		return fmt.Errorf("response_information: at most 65535 bytes, got %d", len(c.ResponseInformation))
	}
	return nil
}

// maxQoS is the highest QoS the broker accepts and grants.
func (b *Broker) maxQoS() byte {
	if q := b.cfg.MaximumQoS; q != nil {
		return byte(*q)
	}
	return 2
}

// retainAvailable reports whether the broker keeps retained messages.
func (b *Broker) retainAvailable() bool {
	return b.cfg.RetainAvailable == nil || *b.cfg.RetainAvailable
}

// noteConnect5 takes from an MQTT 5 CONNECT what the CONNACK and the
// connection's life depend on: a configured Server Keep Alive replaces the
// client's Keep Alive (the 1.5x timeout then counts on it; without one the
// client's applies [MQTT-3.2.2-22]), whether Response Information was
// asked for, and whether the broker may send Topic Aliases. Called by the
// reader in the handshake, before CONNACK is queued.
func (c *conn) noteConnect5(cp *packet.Connect) {
	b := c.b
	if ska := b.cfg.ServerKeepAlive; ska > 0 && uint16(ska) != cp.KeepAlive {
		c.keepalive = time.Duration(ska) * time.Second
		c.serverKeepAlive = true
	}
	if cp.Props == nil {
		return
	}
	c.respInfo = cp.Props.RequestResponseInfo != nil && *cp.Props.RequestResponseInfo == 1
	// Aliases only for a client that gave a Topic Alias Maximum above 0
	// [MQTT-3.1.2-27], and never above it [MQTT-3.1.2-26].
	if tam := cp.Props.TopicAliasMaximum; tam != nil && *tam > 0 && b.cfg.TopicAliasOut > 0 {
		c.aliasOut = &outAliases{max: min(*tam, uint16(b.cfg.TopicAliasOut))}
		_, c.aliasOut.maxOut = clientLimits(cp, 0)
	}
}

// refuseConnect5 checks the will of an MQTT 5 CONNECT against what the
// broker serves: a Will QoS above Maximum QoS is refused with 0x9B
// [MQTT-3.2.2-12], a retained will without retain support with 0x9A
// [MQTT-3.2.2-13]. It returns the refusal's code and detail, code 0 when
// the CONNECT passes.
func (c *conn) refuseConnect5(cp *packet.Connect) (code byte, statement, detail string) {
	b, w := c.b, cp.Will
	switch {
	case w == nil:
	case w.QoS > b.maxQoS():
		return rcQoSNotSupported, "MQTT-3.2.2-12", fmt.Sprintf("Will QoS %d, over the broker's Maximum QoS %d", w.QoS, b.maxQoS())
	case w.Retain && !b.retainAvailable():
		return rcRetainNotSupported, "MQTT-3.2.2-13", "retained Will, and the broker has Retain Available 0"
	}
	return 0, "", ""
}

// checkPublishLimits refuses a PUBLISH from an MQTT 5 client that breaks
// what CONNACK announced: a QoS above Maximum QoS (DISCONNECT 0x9B, MQTT 5.0
// section 3.3.1.2) or RETAIN 1 with Retain Available 0 (0x9A, section
// 3.3.1.3); neither rule has a statement number. It reports whether the
// connection goes on. 3.1.1 clients cannot be told the limits: their
// messages are accepted, forwarded at most at the granted QoS, and not
// retained (publish).
func (c *conn) checkPublishLimits(p *packet.Publish) bool {
	if !c.v5() {
		return true
	}
	b := c.b
	if p.QoS > b.maxQoS() {
		c.violationCode(rcQoSNotSupported, "", fmt.Sprintf("PUBLISH QoS %d, over the Maximum QoS %d in CONNACK (MQTT 5.0 section 3.3.1.2)", p.QoS, b.maxQoS()))
		return false
	}
	if p.Retain && !b.retainAvailable() {
		c.violationCode(rcRetainNotSupported, "", "retained PUBLISH, and CONNACK said Retain Available 0 (MQTT 5.0 section 3.3.1.3)")
		return false
	}
	return true
}

// server5Props adds to the properties of a successful MQTT 5 CONNACK what
// the knobs of this file announce.
func (c *conn) server5Props(p *packet.Properties) {
	b := c.b
	if q := b.maxQoS(); q < 2 {
		p.MaximumQoS = &q // [MQTT-3.2.2-9]
	}
	if !b.retainAvailable() {
		zero := byte(0)
		p.RetainAvailable = &zero
	}
	if c.serverKeepAlive {
		ska := uint16(b.cfg.ServerKeepAlive)
		p.ServerKeepAlive = &ska
	}
	// Only when asked for [MQTT-3.1.2-28].
	if c.respInfo && b.cfg.ResponseInformation != "" {
		p.ResponseInfo, p.HasResponseInfo = b.cfg.ResponseInformation, true
	}
}
