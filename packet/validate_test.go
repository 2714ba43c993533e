package packet

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTopic(t *testing.T) {
	long := strings.Repeat("a", 65536)
	cases := []struct {
		s       string
		filter  bool
		version byte
		stmt    string // "" means valid
	}{
		{s: "a/b", version: V311},
		{s: "/", version: V311},
		{s: "$SYS/x", version: V311},
		{s: "", version: V311, stmt: "MQTT-4.7.3-1"},
		{s: long, version: V311, stmt: "MQTT-4.7.3-3"},
		{s: "a\x00b", version: V311, stmt: "MQTT-4.7.3-2"},
		{s: "a\xffb", version: V311, stmt: "MQTT-1.5.3-1"},
		{s: "a\xffb", version: V5, stmt: "MQTT-1.5.4-1"},
		{s: "a/+", version: V311, stmt: "MQTT-3.3.2-2"},
		{s: "a/#", version: V5, stmt: "MQTT-3.3.2-2"},
		{s: "#", filter: true, version: V311},
		{s: "+", filter: true, version: V311},
		{s: "+/+/#", filter: true, version: V311},
		{s: "a//+/", filter: true, version: V311},
		{s: "a/#/b", filter: true, version: V311, stmt: "MQTT-4.7.1-2"},
		{s: "a#", filter: true, version: V311, stmt: "MQTT-4.7.1-2"},
		{s: "a#", filter: true, version: V5, stmt: "MQTT-4.7.1-1"},
		{s: "a/b+", filter: true, version: V311, stmt: "MQTT-4.7.1-3"},
		{s: "++", filter: true, version: V5, stmt: "MQTT-4.7.1-2"},
		{s: "", filter: true, version: V5, stmt: "MQTT-4.7.3-1"},
		{s: "$share/g/a/#", filter: true, version: V5},
		{s: "$share/g/a/#", filter: true, version: V311},
		{s: "$share//a", filter: true, version: V5, stmt: "MQTT-4.8.2-1"},
		{s: "$share/g", filter: true, version: V5, stmt: "MQTT-4.8.2-2"},
		{s: "$share/g/", filter: true, version: V5, stmt: "MQTT-4.8.2-2"},
		{s: "$share/g+/a", filter: true, version: V5, stmt: "MQTT-4.8.2-2"},
		{s: "$share/g/a+", filter: true, version: V5, stmt: "MQTT-4.7.1-2"},
	}
	for _, c := range cases {
		var err error
		switch {
		case c.filter && c.version == V311:
			err = ValidateTopicFilter(c.s)
		case c.filter:
			err = CheckTopicFilter(c.s, c.version)
		case c.version == V311:
			err = ValidateTopicName(c.s)
		default:
			err = CheckTopicName(c.s, c.version)
		}
		name := c.s
		if len(name) > 20 {
			name = name[:20] + "..."
		}
		if c.stmt == "" {
			if err != nil {
				t.Errorf("%q v%d: %v", name, c.version, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Statement != c.stmt {
			t.Errorf("%q v%d: err %v, want statement %s", name, c.version, err, c.stmt)
		}
	}
}
