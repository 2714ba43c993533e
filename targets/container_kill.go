package targets

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// SetPersistence runs the broker with PersistFiles from the next Start (on)
// or with Files (off), and either way pins its host ports so a restart or a
// kill keeps its addresses: callers of SetPersistence mean to restart it. A
// container with no PersistFiles cannot turn persistence on (its
// Capabilities say so).
func (t *Container) SetPersistence(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.persist = on && len(t.PersistFiles) > 0
	t.pin = true
}

// Kill sends SIGKILL to the broker through Docker (`docker kill`) and waits
// until the container has stopped. The container is kept: Start or Restart
// starts it again with its filesystem as the broker left it.
func (t *Container) Kill(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c == nil || t.killed {
		return nil
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("kill %s: %w", t.TargetName, err)
	}
	defer cli.Close()
	id := t.c.GetContainerID()
	// Ask for the wait before the kill, so the stop cannot be missed.
	wait := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	if _, err := cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("kill %s container: %w", t.TargetName, err)
	}
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		return fmt.Errorf("kill %s container: wait for it to stop: %w", t.TargetName, err)
	case <-ctx.Done():
		return fmt.Errorf("kill %s container: %w", t.TargetName, ctx.Err())
	}
	t.killed, t.urls = true, nil
	return nil
}

// files returns Files, with PersistFiles in place of those of the same path
// when persistence is on.
func (t *Container) files() []File {
	if !t.persist {
		return t.Files
	}
	out := make([]File, 0, len(t.Files)+len(t.PersistFiles))
	replaced := map[string]bool{}
	for _, p := range t.PersistFiles {
		replaced[p.Path] = true
	}
	for _, f := range t.Files {
		if !replaced[f.Path] {
			out = append(out, f)
		}
	}
	return append(out, t.PersistFiles...)
}

// pinPorts binds every container port to a host port on 127.0.0.1 chosen
// now, instead of one Docker picks at each start: a stopped and started
// container otherwise comes back on new ports, and clients reconnecting to
// the old address would find nothing.
func pinPorts(ports map[string]ContainerPort) (func(*container.HostConfig), error) {
	bindings := network.PortMap{}
	for _, p := range ports {
		cp, err := network.ParsePort(p.Port)
		if err != nil {
			return nil, fmt.Errorf("port %s: %w", p.Port, err)
		}
		hp, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("pick a host port for %s: %w", p.Port, err)
		}
		bindings[cp] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hp)}}
	}
	return func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		for k, v := range bindings {
			hc.PortBindings[k] = v
		}
	}, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
