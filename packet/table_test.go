package packet

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestFixtureCoverage keeps the shared table honest: every packet type of
// each version has a round-trip fixture, MQTT 5 ones both with and without
// properties where the packet can carry them.
func TestFixtureCoverage(t *testing.T) {
	type key struct {
		v     byte
		t     Type
		props bool
	}
	have := map[key]bool{}
	for _, f := range allFixtures() {
		if f.want == nil || f.decodeOnly {
			continue
		}
		v := f.version
		if c, ok := f.want.(*Connect); ok {
			v = c.ProtocolLevel
		}
		if v == V31 {
			v = V311
		}
		have[key{v, f.want.Type(), hasProps(f.want)}] = true
	}
	for tp := CONNECT; tp <= AUTH; tp++ {
		if tp != AUTH && !have[key{V311, tp, false}] {
			t.Errorf("no 3.1.1 round-trip fixture for %s", tp)
		}
		if !have[key{V5, tp, false}] {
			t.Errorf("no MQTT 5 round-trip fixture for %s without properties", tp)
		}
		if tp != PINGREQ && tp != PINGRESP && !have[key{V5, tp, true}] {
			t.Errorf("no MQTT 5 round-trip fixture for %s with properties", tp)
		}
	}
}

func hasProps(p Packet) bool {
	switch p := p.(type) {
	case *Connect:
		return p.Props != nil || (p.Will != nil && p.Will.Props != nil)
	case *Connack:
		return p.Props != nil
	case *Publish:
		return p.Props != nil
	case *Puback:
		return p.Props != nil
	case *Pubrec:
		return p.Props != nil
	case *Pubrel:
		return p.Props != nil
	case *Pubcomp:
		return p.Props != nil
	case *Subscribe:
		return p.Props != nil
	case *Suback:
		return p.Props != nil
	case *Unsubscribe:
		return p.Props != nil
	case *Unsuback:
		return p.Props != nil
	case *Disconnect:
		return p.Props != nil
	case *Auth:
		return p.Props != nil
	}
	return false
}

// TestStatementIDsExist checks every statement a fixture expects against the
// lists in /work/shared/spec, the 3.1.1 list for levels 3/4, the v5 list for 5.
func TestStatementIDsExist(t *testing.T) {
	ids := map[byte]map[string]bool{V311: readIDs(t, "mqtt-v311-statements.tsv"), V5: readIDs(t, "mqtt-v5-statements.tsv")}
	for _, f := range allFixtures() {
		if f.stmt == "" {
			continue
		}
		v := f.version
		if v == V31 {
			v = V311
		}
		if !ids[v][f.stmt] {
			t.Errorf("%s: statement %s is not in the v%d list", f.name, f.stmt, v)
		}
	}
}

func readIDs(t *testing.T, name string) map[string]bool {
	t.Helper()
	f, err := os.Open("/work/shared/spec/" + name)
	if err != nil {
		t.Skipf("statement list not available: %v", err)
	}
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id, _, ok := strings.Cut(sc.Text(), "\t"); ok {
			ids[id] = true
		}
	}
	return ids
}
