package broker

import (
	"testing"

	"github.com/mqttfleet/mqttfleet/packet"
)

// TestOutAliasesNoAllocation: once a topic has its alias, encoding a
// PUBLISH with it allocates nothing (the scratch copy lives in the
// connection's alias state), so QoS 0 fan-out to aliasing clients stays as
// cheap as to others; and the message itself is never modified.
func TestOutAliasesNoAllocation(t *testing.T) {
	c := &conn{aliasOut: &outAliases{max: 2}}
	ttl := uint32(60)
	m := &packet.Publish{Topic: "fleet/dev/1/temp", Payload: []byte("21.5"), Props: &packet.Properties{MessageExpiry: &ttl}}
	buf := make([]byte, 0, 256)
	first, err := c.appendPublish(buf, m)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := packet.Decode(first, packet.Options{Version: packet.V5})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*packet.Publish); got.Topic != m.Topic || got.Props.TopicAlias == nil || *got.Props.TopicAlias != 1 || got.Props.MessageExpiry == nil {
		t.Fatalf("first PUBLISH %+v, want topic, alias 1 and the expiry", got)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := c.appendPublish(buf[:0], m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per aliased PUBLISH, want 0", allocs)
	}
	if m.Topic != "fleet/dev/1/temp" || m.Props.TopicAlias != nil {
		t.Errorf("the shared message was modified: %+v", m)
	}
}
