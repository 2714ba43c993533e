// Package kernel is netem's kernel backend: what a user-space proxy cannot
// do. It makes network namespaces joined by veth pairs (a device group gets
// its own stack and addresses), shapes an interface with tc's netem qdisc
// (delay, jitter, loss, duplication, reordering, corruption, rate), and drops
// packets with iptables so a link goes half-open with a peer that never ACKs:
// the sender's buffer fills and its writes block.
//
// Everything acts inside a network namespace named by a Target: one this
// package created, or a container's (PID(pid) or Netns("/proc/PID/ns/net")).
// Commands run through nsenter, so iproute2, iptables and util-linux must be
// installed (Debian: iproute2 iptables util-linux), and the caller must be
// root (CAP_NET_ADMIN and CAP_SYS_ADMIN). Every object made here is removed
// by Close; iptables rules carry a comment naming their owner so a crashed run
// can be cleaned by hand (iptables -S | grep mqttfleet-netem).
package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Tools lists the programs this package runs.
var Tools = []string{"ip", "tc", "iptables", "nsenter"}

// Check reports why the kernel backend cannot work here: not root, or a tool
// missing. Tests skip with its message.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("kernel backend needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
	}
	var missing []string
	for _, t := range Tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kernel backend needs %s (Debian packages iproute2, iptables, util-linux)", strings.Join(missing, ", "))
	}
	return nil
}

// Target is a network namespace to act in. The zero Target is the namespace
// of the calling process.
type Target struct {
	Path string // e.g. /var/run/netns/NAME or /proc/PID/ns/net; "" = current
}

// PID is the network namespace of a process, such as a container's init.
func PID(pid int) Target { return Target{Path: "/proc/" + strconv.Itoa(pid) + "/ns/net"} }

// Netns is the network namespace at path.
func Netns(path string) Target { return Target{Path: path} }

// String names the target for errors.
func (t Target) String() string {
	if t.Path == "" {
		return "current netns"
	}
	return "netns " + t.Path
}

// Run runs a program inside the target namespace and returns its output.
func (t Target) Run(ctx context.Context, name string, args ...string) (string, error) {
	var cmd *exec.Cmd
	if t.Path == "" {
		cmd = exec.CommandContext(ctx, name, args...)
	} else {
		cmd = exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + t.Path, "--", name}, args...)...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s in %s: %w: %s", strings.Join(append([]string{name}, args...), " "), t,
			err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func splitLines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

// containsWord reports whether w occurs in s as a whole field.
func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if strings.Trim(f, `"`) == w {
			return true
		}
	}
	return false
}
