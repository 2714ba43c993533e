package packet_test

import (
	"testing"

	"github.com/mqttfleet/mqttfleet/internal/seedcover"
	"github.com/mqttfleet/mqttfleet/packet"
)

// The decode fuzz targets start from every MQTT 5.0 packet type, each with
// properties where the type has them, and a CONNECT whose will has
// properties, as FuzzDecode5 decodes them (level 5).
func TestFuzzSeedsCoverV5(t *testing.T) {
	if m := seedcover.Missing(packet.V5, packet.FuzzSeeds()...); m != nil {
		t.Errorf("no FuzzDecode5 seed holds these 5.0 packets with properties: %v", m)
	}
}
