// Package seedcover checks that a fuzz target's seed corpus reaches every
// MQTT 5.0 packet type with properties. A fuzzer mutates from its seeds, so
// a property parser that no seed reaches is explored only by luck; the seed
// tests of packet/ and broker/ assert this coverage so that a change to the
// seeds cannot drop a packet type silently.
package seedcover

import (
	"reflect"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Wanted lists what a 5.0 seed corpus must hold: every control packet type,
// with non-empty properties for all but PINGREQ and PINGRESP (which have
// none in 5.0), and a CONNECT whose will carries properties.
var Wanted = []string{
	"CONNECT", "CONNECT will", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

// Missing returns the entries of Wanted that no seed holds. Each seed is
// decoded as a stream of packets, from protocol level start until a CONNECT
// sets the level to its own; a stream is read up to its first undecodable
// byte, as that is as far as a broker would read it. Only packets decoded
// at level 5 count.
func Missing(start byte, seeds ...[]byte) []string {
	seen := map[string]bool{}
	for _, s := range seeds {
		version := start
		for len(s) > 0 {
			p, n, err := packet.Decode(s, packet.Options{Version: version})
			if err != nil {
				break
			}
			s = s[n:]
			if c, ok := p.(*packet.Connect); ok {
				version = c.ProtocolLevel
				if version == packet.V5 && c.Will != nil && nonEmpty(c.Will.Props) {
					seen["CONNECT will"] = true
				}
			}
			if version != packet.V5 {
				continue
			}
			props, has := propsOf(p)
			if !has || nonEmpty(props) {
				seen[p.Type().String()] = true
			}
		}
	}
	var missing []string
	for _, w := range Wanted {
		if !seen[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

// propsOf returns p's properties; has is false for the packet types that
// carry none.
func propsOf(p packet.Packet) (props *packet.Properties, has bool) {
	switch p := p.(type) {
	case *packet.Connect:
		return p.Props, true
	case *packet.Connack:
		return p.Props, true
	case *packet.Publish:
		return p.Props, true
	case *packet.Puback:
		return p.Props, true
	case *packet.Pubrec:
		return p.Props, true
	case *packet.Pubrel:
		return p.Props, true
	case *packet.Pubcomp:
		return p.Props, true
	case *packet.Subscribe:
		return p.Props, true
	case *packet.Suback:
		return p.Props, true
	case *packet.Unsubscribe:
		return p.Props, true
	case *packet.Unsuback:
		return p.Props, true
	case *packet.Disconnect:
		return p.Props, true
	case *packet.Auth:
		return p.Props, true
	}
	return nil, false
}

func nonEmpty(p *packet.Properties) bool {
	return p != nil && !reflect.DeepEqual(*p, packet.Properties{})
}
