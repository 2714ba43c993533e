package netem

import (
	"errors"
	"hash/fnv"
	"strconv"
)

// Selector picks links: exactly one of its fields is set. Selectors by group,
// remote address or All also match links that open while a fault is active, so
// a device that reconnects into a blackhole stays in it.
type Selector struct {
	Link   string `json:"link,omitempty"`   // one link by ID
	Group  string `json:"group,omitempty"`  // every link of a group
	Remote string `json:"remote,omitempty"` // the link whose device side is this "ip:port" (the device's LocalAddr)
	All    bool   `json:"all,omitempty"`    // every link
}

// ByLink selects one link by ID.
func ByLink(id string) Selector { return Selector{Link: id} }

// ByGroup selects every link of a group.
func ByGroup(name string) Selector { return Selector{Group: name} }

// ByRemote selects the link a device dialled from addr ("ip:port").
func ByRemote(addr string) Selector { return Selector{Remote: addr} }

// AllLinks selects every link.
func AllLinks() Selector { return Selector{All: true} }

// Validate reports whether exactly one field is set.
func (s Selector) Validate() error {
	n := 0
	for _, set := range []bool{s.Link != "", s.Group != "", s.Remote != "", s.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("selector: set exactly one of link, group, remote, all")
	}
	return nil
}

// String names the selector for logs.
func (s Selector) String() string {
	switch {
	case s.All:
		return "all"
	case s.Link != "":
		return "link=" + s.Link
	case s.Group != "":
		return "group=" + s.Group
	default:
		return "remote=" + s.Remote
	}
}

func (s Selector) matches(l *link) bool {
	switch {
	case s.All:
		return true
	case s.Link != "":
		return s.Link == l.id
	case s.Group != "":
		return s.Group == l.group
	default:
		return s.Remote == l.remote
	}
}

// inShare decides, reproducibly, whether a link falls in a fault's share: the
// same seed, fault ID, group and ordinal in the group always give the same
// answer, whatever order links opened in across groups.
func inShare(seed int64, faultID string, share float64, group string, ordinal int) bool {
	if share <= 0 || share >= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatInt(seed, 10)))
	h.Write([]byte{0})
	h.Write([]byte(faultID))
	h.Write([]byte{0})
	h.Write([]byte(group))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(ordinal)))
	// FNV alone mixes its last bytes weakly; a splitmix64 finaliser spreads
	// them before the top 53 bits become a float in [0, 1).
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11)/float64(1<<53) < share
}
