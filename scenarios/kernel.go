package scenarios

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/netem/kernel"
)

// DoDropPackets is the kernel half-open: iptables DROP rules on the
// loopback for the device side of the links (needs root).
const DoDropPackets = "drop_packets"

// kernelAvailable says why drop_packets cannot run here, or nil.
var kernelAvailable = kernel.Check

// dropPackets drops, in the kernel, every packet to and from the device end
// of the selected links (device <-> fault proxy, on the loopback). Unlike
// the proxy's blackhole the devices' TCP stacks see no ACKs: unacknowledged
// data piles up in their send buffers, as behind a NAT that lost its
// mapping. The proxy's side to the broker stays open and silent, so the
// broker sees a half-open connection. Links opened later are not covered.
func (r *runner) dropPackets(ctx context.Context, s *Step) error {
	want := map[string]bool{}
	if s.Client != "" {
		want[s.Client] = true
	} else {
		gr := r.groups[s.Group]
		if len(s.Devices) > 0 {
			for _, d := range s.Devices {
				want[gr.linkGroup(d)] = true
			}
		} else {
			for i := 0; i < gr.g.Count; i++ {
				want[gr.linkGroup(i)] = true
			}
		}
	}
	key := s.Group + s.Client
	r.mu.Lock()
	d := r.drops[key]
	if d == nil {
		d = kernel.NewDrops(kernel.Target{}, "scenario-"+sanitize(r.sc.Name)+"-"+sanitize(key))
		r.drops[key] = d
	}
	r.mu.Unlock()
	n := 0
	for _, li := range r.proxy.Links() {
		if !want[li.Group] {
			continue
		}
		_, port, err := net.SplitHostPort(li.Remote)
		if err != nil {
			continue
		}
		for _, dir := range []string{"--sport", "--dport"} {
			if err := d.Add(ctx, "INPUT", "-i", "lo", "-p", "tcp", dir, port); err != nil {
				return fmt.Errorf("drop packets of link %s: %w", li.ID, err)
			}
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("drop packets: no live link of %s", key)
	}
	return nil
}

// undrop removes the kernel rules filed under key ("" = all).
func (r *runner) undrop(key string) {
	r.mu.Lock()
	var ds []*kernel.Drops
	for k, d := range r.drops {
		if key == "" || k == key {
			ds = append(ds, d)
			delete(r.drops, k)
		}
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range ds {
		if err := d.Close(ctx); err != nil {
			r.log.Warn("remove kernel drop rules", "tag", d.Tag(), "err", err)
		}
	}
}

// sanitize keeps a name usable in an iptables comment.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}
