package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
)

// commentPrefix starts the comment on every rule this package adds.
const commentPrefix = "mqttfleet-netem:"

// Drops is a set of iptables DROP rules in one namespace, all tagged with one
// comment and removed together by Close.
type Drops struct {
	t   Target
	tag string

	mu    sync.Mutex
	rules [][]string // chain and match of each rule added, in order
}

// NewDrops returns an empty rule set for t; tag ("" = random) goes into each
// rule's comment as "mqttfleet-netem:TAG".
func NewDrops(t Target, tag string) *Drops {
	if tag == "" {
		tag = randomHex(4)
	}
	return &Drops{t: t, tag: commentPrefix + tag}
}

// Tag is the comment on this set's rules.
func (d *Drops) Tag() string { return d.tag }

// Add appends a DROP rule to chain (INPUT, OUTPUT, FORWARD) with the given
// iptables match arguments, e.g. "-p", "tcp", "--dport", "1883".
func (d *Drops) Add(ctx context.Context, chain string, match ...string) error {
	rule := append([]string{chain}, match...)
	args := append(append([]string{"-w", "-A"}, rule...), "-m", "comment", "--comment", d.tag, "-j", "DROP")
	if _, err := d.t.Run(ctx, "iptables", args...); err != nil {
		return fmt.Errorf("add drop rule: %w", err)
	}
	d.mu.Lock()
	d.rules = append(d.rules, rule)
	d.mu.Unlock()
	return nil
}

// Peer drops every packet to and from peer (with port > 0: TCP to and from
// that port of the peer). Neither side's stack hears from the other: the
// connection stays established at both ends, unACKed data piles up in the
// sender's buffer until its writes block, and the receiver sees nothing.
func (d *Drops) Peer(ctx context.Context, peer netip.Addr, port int) error {
	in := []string{"-s", peer.String()}
	out := []string{"-d", peer.String()}
	if port > 0 {
		p := strconv.Itoa(port)
		in = append(in, "-p", "tcp", "--sport", p)
		out = append(out, "-p", "tcp", "--dport", p)
	}
	if err := d.Add(ctx, "INPUT", in...); err != nil {
		return err
	}
	return d.Add(ctx, "OUTPUT", out...)
}

// List returns the rules of this set as iptables -S prints them.
func (d *Drops) List(ctx context.Context) ([]string, error) {
	out, err := d.t.Run(ctx, "iptables", "-w", "-S")
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	var mine []string
	for _, line := range splitLines(out) {
		if containsWord(line, d.tag) {
			mine = append(mine, line)
		}
	}
	return mine, nil
}

// Close deletes every rule of the set, newest first.
func (d *Drops) Close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for i := len(d.rules) - 1; i >= 0; i-- {
		args := append(append([]string{"-w", "-D"}, d.rules[i]...), "-m", "comment", "--comment", d.tag, "-j", "DROP")
		if _, err := d.t.Run(ctx, "iptables", args...); err != nil {
			errs = append(errs, fmt.Errorf("delete drop rule: %w", err))
		}
	}
	d.rules = nil
	return errors.Join(errs...)
}
