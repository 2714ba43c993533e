package conformance

import (
	"strings"
	"testing"
)

// TestCheckServerFrame: the raw-byte checks of wire_v5.go accept what a
// conforming server sends and name each departure.
func TestCheckServerFrame(t *testing.T) {
	cases := []struct {
		name  string
		bytes []byte
		want  string // "" for accepted, else part of the error
	}{
		{"CONNACK with properties", []byte{0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x0A}, ""},
		{"CONNACK reserved flag", []byte{0x20, 0x03, 0x02, 0x00, 0x00}, "reserved"},
		{"CONNACK without Property Length", []byte{0x20, 0x02, 0x00, 0x00}, "Property Length"},
		{"PUBACK short forms", []byte{0x40, 0x02, 0x00, 0x01, 0x40, 0x03, 0x00, 0x01, 0x10}, ""},
		{"PUBLISH", []byte{0x30, 0x05, 0x00, 0x01, 'a', 0x00, 'x'}, ""},
		{"PUBLISH without Property Length", []byte{0x30, 0x04, 0x00, 0x01, 'a', 'x'}, "properties"},
		{"SUBACK without Property Length", []byte{0x90, 0x03, 0x00, 0x01, 0x00}, "no reason codes"},
		{"Remaining Length not shortest", []byte{0xD0, 0x80, 0x00}, "shortest"},
		{"Property Length not shortest", []byte{0x90, 0x05, 0x00, 0x01, 0x80, 0x00, 0x00}, "shortest"},
		{"User Property value not UTF-8", []byte{0x40, 0x0B, 0x00, 0x01, 0x00, 0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 0xFF}, "UTF-8"},
		{"unknown property", []byte{0xE0, 0x03, 0x00, 0x01, 0x7F}, "unknown property"},
		{"bytes left", []byte{0xD0, 0x01, 0x00}, "left"},
		{"frame cut short", []byte{0x40, 0x04, 0x00}, "body bytes"},
	}
	for _, c := range cases {
		frames, err := splitWire(c.bytes)
		for _, f := range frames {
			if err == nil {
				err = checkServerFrame(f)
			}
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one about %q", c.name, err, c.want)
		}
	}
}
