package seedcover_test

import (
	"slices"
	"testing"

	"github.com/mqttfleet/mqttfleet/internal/seedcover"
	"github.com/mqttfleet/mqttfleet/packet"
)

func enc(t *testing.T, version byte, ps ...packet.Packet) []byte {
	t.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = packet.Append(b, p, version); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestMissing(t *testing.T) {
	rs := &packet.Properties{ReasonString: "r", HasReasonString: true}
	user := &packet.Properties{User: []packet.UserProperty{{Key: "k", Value: "v"}}}
	connect := &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "c", Props: user,
		Will: &packet.Will{Topic: "w", Props: user}}
	rest := []packet.Packet{
		&packet.Connack{Props: rs},
		&packet.Publish{Topic: "t", Props: user},
		&packet.Puback{PacketID: 1, Props: rs}, &packet.Pubrec{PacketID: 1, Props: rs},
		&packet.Pubrel{PacketID: 1, Props: rs}, &packet.Pubcomp{PacketID: 1, Props: rs},
		&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#"}}, Props: user},
		&packet.Suback{PacketID: 1, ReturnCodes: []byte{0}, Props: rs},
		&packet.Unsubscribe{PacketID: 1, Filters: []string{"#"}, Props: user},
		&packet.Unsuback{PacketID: 1, ReasonCodes: []byte{0}, Props: rs},
		&packet.Pingreq{}, &packet.Pingresp{},
		&packet.Disconnect{Props: rs},
		&packet.Auth{ReasonCode: 0x18, Props: &packet.Properties{AuthMethod: "m", HasAuthMethod: true}},
	}
	// One stream opened by the 5.0 CONNECT, decoded from level 4 on.
	all := append(enc(t, packet.V5, connect), enc(t, packet.V5, rest...)...)
	if m := seedcover.Missing(packet.V311, all); m != nil {
		t.Fatalf("a stream with every 5.0 packet: missing %v", m)
	}
	// The same packets as single seeds decoded at level 5.
	seeds := [][]byte{enc(t, packet.V5, connect)}
	for _, p := range rest {
		seeds = append(seeds, enc(t, packet.V5, p))
	}
	if m := seedcover.Missing(packet.V5, seeds...); m != nil {
		t.Fatalf("single seeds: missing %v", m)
	}

	// seeds with entry i replaced by b
	with := func(i int, b []byte) [][]byte {
		out := slices.Clone(seeds)
		out[i] = b
		return out
	}
	for _, tc := range []struct {
		name  string
		start byte
		seeds [][]byte
		want  []string
	}{
		{"AUTH dropped", packet.V5, seeds[:len(seeds)-1], []string{"AUTH"}},
		{"will without properties", packet.V5, with(0, enc(t, packet.V5,
			&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V5, ClientID: "c", Props: user, Will: &packet.Will{Topic: "w"}})),
			[]string{"CONNECT will"}},
		{"PUBLISH without properties", packet.V5, with(2, enc(t, packet.V5, &packet.Publish{Topic: "t"})), []string{"PUBLISH"}},
		{"3.1.1 stream", packet.V311, [][]byte{append(enc(t, packet.V311, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: "c"}),
			enc(t, packet.V311, &packet.Publish{Topic: "t"}, &packet.Pingreq{})...)}, seedcover.Wanted},
		{"stream cut by garbage", packet.V311, [][]byte{append(append(enc(t, packet.V5, connect), 0x00), enc(t, packet.V5, rest...)...)},
			seedcover.Wanted[2:]},
	} {
		if got := seedcover.Missing(tc.start, tc.seeds...); !slices.Equal(got, tc.want) {
			t.Errorf("%s: missing %v, want %v", tc.name, got, tc.want)
		}
	}
}
