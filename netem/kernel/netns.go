package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// Namespace is a network namespace made by NewNamespace (ip netns add).
type Namespace struct {
	Name string
}

// NewNamespace creates a network namespace with its loopback up. An empty
// name picks "mqf-" and random hex.
func NewNamespace(ctx context.Context, name string) (*Namespace, error) {
	if name == "" {
		name = "mqf-" + randomHex(4)
	}
	if _, err := (Target{}).Run(ctx, "ip", "netns", "add", name); err != nil {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	n := &Namespace{Name: name}
	if _, err := n.Target().Run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		n.Close(ctx)
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	return n, nil
}

// Target is the namespace as a Target.
func (n *Namespace) Target() Target { return Netns("/var/run/netns/" + n.Name) }

// Close deletes the namespace; interfaces inside it (veth ends) go with it.
func (n *Namespace) Close(ctx context.Context) error {
	if _, err := (Target{}).Run(ctx, "ip", "netns", "del", n.Name); err != nil {
		return fmt.Errorf("delete namespace: %w", err)
	}
	return nil
}

// Do runs f on an OS thread that has entered the namespace, so sockets f
// opens (net.Listen, net.Dial with an IP literal) live there. Goroutines f
// starts do not inherit the namespace.
func (n *Namespace) Do(f func() error) error { return n.Target().Do(f) }

// sysSetns is setns(2) per architecture; the syscall package does not name it.
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268, "riscv64": 268, "386": 346, "arm": 375,
	"ppc64le": 350, "s390x": 339}[runtime.GOARCH]

// Do runs f on an OS thread inside the target namespace.
func (t Target) Do(f func() error) error {
	if sysSetns == 0 {
		return fmt.Errorf("setns: unknown syscall number on %s", runtime.GOARCH)
	}
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own netns: %w", err)
	}
	defer self.Close()
	target, err := os.Open(t.Path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open %s: %w", t, err)
	}
	defer target.Close()
	if err := setns(target.Fd()); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", t, err)
	}
	ferr := f()
	if err := setns(self.Fd()); err != nil {
		// The thread stays in the wrong namespace: keep it locked so the
		// runtime discards it when this goroutine ends.
		return errors.Join(ferr, fmt.Errorf("leave %s: %w", t, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func setns(fd uintptr) error {
	const cloneNewNet = 0x40000000
	if _, _, e := syscall.RawSyscall(sysSetns, fd, cloneNewNet, 0); e != 0 {
		return e
	}
	return nil
}

// Veth is a veth pair with one end in the host side namespace and one in a
// device namespace, addressed from a private /30: traffic on it only ever goes
// between those two ends.
type Veth struct {
	HostIf, NsIf     string
	HostAddr, NsAddr netip.Addr
	host             Target
}

// NewVeth joins host (nil: the caller's namespace) and ns with a veth pair,
// gives the ends the two usable addresses of subnet (a /30) and brings them up.
func NewVeth(ctx context.Context, host, ns *Namespace, subnet netip.Prefix) (*Veth, error) {
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() || subnet.Bits() != 30 {
		return nil, fmt.Errorf("veth: subnet %s is not an IPv4 /30", subnet)
	}
	if !subnet.Addr().IsPrivate() {
		return nil, fmt.Errorf("veth: subnet %s is not a private range", subnet)
	}
	id := randomHex(3)
	v := &Veth{HostIf: "mqf" + id + "h", NsIf: "mqf" + id + "d",
		HostAddr: subnet.Addr().Next(), NsAddr: subnet.Addr().Next().Next()}
	if host != nil {
		v.host = host.Target()
	}
	root := v.host // both ends start in the host side's namespace
	if _, err := root.Run(ctx, "ip", "link", "add", v.HostIf, "type", "veth", "peer", "name", v.NsIf); err != nil {
		return nil, fmt.Errorf("create veth: %w", err)
	}
	steps := [][]string{
		{"link", "set", v.NsIf, "netns", ns.Name},
		{"addr", "add", netip.PrefixFrom(v.HostAddr, 30).String(), "dev", v.HostIf},
		{"link", "set", v.HostIf, "up"},
	}
	for _, s := range steps {
		if _, err := root.Run(ctx, "ip", s...); err != nil {
			v.Close(ctx)
			return nil, fmt.Errorf("set up veth: %w", err)
		}
	}
	for _, s := range [][]string{
		{"addr", "add", netip.PrefixFrom(v.NsAddr, 30).String(), "dev", v.NsIf},
		{"link", "set", v.NsIf, "up"},
	} {
		if _, err := ns.Target().Run(ctx, "ip", s...); err != nil {
			v.Close(ctx)
			return nil, fmt.Errorf("set up veth in %s: %w", ns.Name, err)
		}
	}
	return v, nil
}

// Close deletes the pair (deleting one end deletes both; deleting the device
// namespace already did, which is fine).
func (v *Veth) Close(ctx context.Context) error {
	if out, err := v.host.Run(ctx, "ip", "link", "del", v.HostIf); err != nil && !strings.Contains(out, "Cannot find device") {
		return fmt.Errorf("delete veth: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
