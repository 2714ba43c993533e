package targets

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/mqttfleet/mqttfleet/broker/bridgeconf"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// ContainerPort is one broker listener inside a container.
type ContainerPort struct {
	// Port is the container port with protocol, such as "1883/tcp".
	Port string
	// Path is the URL path for WebSocket listeners, such as "/mqtt".
	Path string
}

// File is a file copied into the container before it starts (a broker config).
type File struct {
	Path    string // absolute path in the container
	Content []byte
}

// Container is a broker run from any image with testcontainers-go: the
// generic "image + ports + config" target Mosquitto and EMQX are made of.
//
// The image must be present locally unless MQTTFLEET_PULL=1: machines without
// a registry would otherwise spend the pull retries before failing, and a
// missing image is a skip reason, not a failure.
type Container struct {
	// TargetName is the Name of the target ("mosquitto").
	TargetName string
	// Image is the image reference ("eclipse-mosquitto:2").
	Image string
	// ImageEnv names the environment variable that overrides Image, for messages.
	ImageEnv string
	// Ports maps a transport ("tcp", "ws") to its listener in the container.
	Ports map[string]ContainerPort
	// Files are copied into the container before it starts.
	Files []File
	// Entrypoint replaces the image's entrypoint when not empty.
	Entrypoint []string
	// Cmd replaces the image's command when not empty.
	Cmd []string
	// WaitLog, when set, is a log line the broker prints once it serves:
	// port checks alone pass as soon as Docker's proxy listens.
	WaitLog string
	// Env is the container's environment.
	Env map[string]string
	// Caps are the declared capabilities.
	Caps Capabilities
	// BridgeConf is the path (among Files) of the broker's config file
	// AddBridge appends bridges to; "" when the broker cannot run one.
	BridgeConf string
	// StartupTimeout bounds the wait for the listeners; 0 means 60 s.
	StartupTimeout time.Duration
	// PersistFiles replace the Files of the same path when persistence is
	// on (SetPersistence): the broker's config with its own store turned on.
	PersistFiles []File

	mu      sync.Mutex
	persist bool // run with PersistFiles
	pin     bool // host ports are pinned so a restart keeps them (SetPersistence)
	killed  bool // Kill stopped the container; Start starts the same one again
	// bridges run in the broker itself (AddBridge, bridges.go); they need
	// host networking, so the broker listens on hostAddr (127.0.0.1).
	bridges  []bridgeconf.Config
	hostNet  bool
	hostAddr string
	c        *testcontainers.DockerContainer
	urls     map[string]string
	logs     []byte // logs of containers already terminated
}

// Name returns TargetName.
func (t *Container) Name() string { return t.TargetName }

// Capabilities returns the declared capabilities.
func (t *Container) Capabilities() Capabilities { return t.Caps }

// Addr returns the host URL of a transport's listener while the container runs.
func (t *Container) Addr(transport string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.urls[transport]
	return u, ok
}

// Start creates and starts the container and waits for its listeners;
// after Kill it starts the killed container again, its filesystem (and so
// the broker's store) as the broker left it.
func (t *Container) Start(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c != nil {
		if t.killed {
			return t.startAgain(ctx, t.logCount(ctx))
		}
		return nil
	}
	setLocalDockerDefaults()
	quietTestcontainers.Do(func() { tclog.SetDefault(debugLogger{}) })
	if err := t.checkImage(ctx); err != nil {
		return err
	}
	timeout := t.StartupTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	var exposed []string
	var waits []wait.Strategy
	for _, p := range t.Ports {
		if t.hostNet {
			break // no port mapping: the broker listens on the host's 127.0.0.1 (bridges.go)
		}
		exposed = append(exposed, p.Port)
		waits = append(waits, wait.ForListeningPort(p.Port).SkipInternalCheck().WithStartupTimeout(timeout))
	}
	if t.WaitLog != "" {
		waits = append(waits, wait.ForLog(t.WaitLog).WithStartupTimeout(timeout))
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts(exposed...),
		testcontainers.WithWaitStrategy(wait.ForAll(waits...).WithDeadline(timeout)),
		testcontainers.WithLabels(map[string]string{"org.mqttfleet.target": t.TargetName}),
	}
	if t.hostNet {
		opts = append(opts, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }))
	} else if t.pin {
		pin, err := pinPorts(t.Ports)
		if err != nil {
			return fmt.Errorf("start %s: %w", t.TargetName, err)
		}
		opts = append(opts, testcontainers.WithHostConfigModifier(pin))
	}
	for _, f := range t.withBridges(t.files()) {
		opts = append(opts, testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader: bytes.NewReader(f.Content), ContainerFilePath: f.Path, FileMode: 0o644,
		}))
	}
	if len(t.Entrypoint) > 0 {
		opts = append(opts, testcontainers.WithEntrypoint(t.Entrypoint...))
	}
	if len(t.Cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(t.Cmd...))
	}
	if len(t.Env) > 0 {
		opts = append(opts, testcontainers.WithEnv(t.Env))
	}
	c, err := testcontainers.Run(ctx, t.Image, opts...)
	if err != nil {
		if c != nil {
			t.keepLogs(ctx, c)
			_ = c.Terminate(context.WithoutCancel(ctx))
		}
		return fmt.Errorf("start %s container from %s: %w", t.TargetName, t.Image, err)
	}
	t.c = c
	if err := t.resolve(ctx); err != nil {
		t.stopLocked(ctx)
		return err
	}
	return nil
}

// resolve maps each container port to its host URL.
func (t *Container) resolve(ctx context.Context) error {
	t.urls = map[string]string{}
	if t.hostNet {
		t.urls["tcp"] = "tcp://" + t.hostAddr
		return nil
	}
	for transport, p := range t.Ports {
		scheme := "tcp"
		if transport == "ws" {
			scheme = "ws"
		}
		ep, err := t.c.PortEndpoint(ctx, p.Port, "")
		if err != nil {
			return fmt.Errorf("map %s port %s: %w", t.TargetName, p.Port, err)
		}
		t.urls[transport] = (&url.URL{Scheme: scheme, Host: ep, Path: p.Path}).String()
	}
	return nil
}

// Stop terminates the container, keeping its logs for Logs.
func (t *Container) Stop(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopLocked(ctx)
}

func (t *Container) stopLocked(ctx context.Context) error {
	if t.c == nil {
		return nil
	}
	c := t.c
	t.c, t.urls, t.killed = nil, nil, false
	t.keepLogs(ctx, c)
	if err := c.Terminate(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("terminate %s container: %w", t.TargetName, err)
	}
	return nil
}

// Restart stops and starts the same container. Docker may map new host
// ports, so callers read Addr again afterwards.
func (t *Container) Restart(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c == nil {
		return fmt.Errorf("restart %s: not started", t.TargetName)
	}
	seen := t.logCount(ctx)
	if !t.killed {
		// SIGTERM, then SIGKILL if the broker has not exited within the grace.
		grace := 30 * time.Second
		if err := t.c.Stop(ctx, &grace); err != nil {
			return fmt.Errorf("stop %s container: %w", t.TargetName, err)
		}
	}
	return t.startAgain(ctx, seen)
}

// startAgain starts the stopped container and waits for the broker to
// serve (seen: WaitLog lines printed before it stopped).
func (t *Container) startAgain(ctx context.Context, seen int) error {
	if err := t.c.Start(ctx); err != nil {
		return fmt.Errorf("start %s container again: %w", t.TargetName, err)
	}
	t.killed = false
	if err := t.waitLogAfter(ctx, seen); err != nil {
		return err
	}
	return t.resolve(ctx)
}

// logCount counts the WaitLog lines the container printed so far.
func (t *Container) logCount(ctx context.Context) int {
	if t.WaitLog == "" {
		return 0
	}
	b, err := readLogs(ctx, t.c)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(t.WaitLog))
}

// waitLogAfter waits until the container prints WaitLog once more than
// seen: the logs of a restarted container still hold the line of its first
// start, so the start wait alone would pass before the broker serves.
func (t *Container) waitLogAfter(ctx context.Context, seen int) error {
	if t.WaitLog == "" {
		return nil
	}
	timeout := t.StartupTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if t.logCount(ctx) > seen {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart %s: %w", t.TargetName, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("restart %s: no %q in its logs within %v", t.TargetName, t.WaitLog, timeout)
}

// Logs returns the logs of earlier containers of this target followed by
// those of the running one.
func (t *Container) Logs(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]byte(nil), t.logs...)
	if t.c == nil {
		return out, nil
	}
	b, err := readLogs(ctx, t.c)
	if err != nil {
		return out, fmt.Errorf("read %s container logs: %w", t.TargetName, err)
	}
	return append(out, b...), nil
}

func (t *Container) keepLogs(ctx context.Context, c *testcontainers.DockerContainer) {
	if b, err := readLogs(ctx, c); err == nil {
		t.logs = append(t.logs, b...)
	}
}

func readLogs(ctx context.Context, c *testcontainers.DockerContainer) ([]byte, error) {
	rc, err := c.Logs(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 64<<20))
}

// checkImage turns "no Docker" and "image not here" into ErrUnavailable.
func (t *Container) checkImage(ctx context.Context) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("%s: no Docker engine (%v): %w", t.TargetName, err, ErrUnavailable)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, t.Image); err != nil {
		if os.Getenv("MQTTFLEET_PULL") == "1" {
			return nil
		}
		hint := ""
		if t.ImageEnv != "" {
			hint = fmt.Sprintf(", or point %s at a local image", t.ImageEnv)
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%s: no Docker engine (%v): %w", t.TargetName, err, ErrUnavailable)
		}
		return fmt.Errorf("%s: image %s is not present locally (build it with `make images`, set MQTTFLEET_PULL=1 to pull it%s): %w",
			t.TargetName, t.Image, hint, ErrUnavailable)
	}
	return nil
}

var quietTestcontainers sync.Once

// debugLogger sends testcontainers' progress lines (one per container step,
// with emoji) to slog at debug level instead of stderr, so test output shows
// only the suite's own report.
type debugLogger struct{}

func (debugLogger) Printf(format string, v ...any) {
	slog.Debug(fmt.Sprintf(format, v...), "component", "testcontainers")
}

var localDockerOnce sync.Once

// setLocalDockerDefaults applies the two testcontainers settings a local
// engine without a registry needs (see ENVIRONMENT.md), unless the user set
// them: no reaper (its image cannot be pulled; Stop terminates instead) and
// the host is loopback (testcontainers otherwise dials the default gateway
// when it finds /.dockerenv).
func setLocalDockerDefaults() {
	localDockerOnce.Do(func() {
		if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
			return
		}
		for k, v := range map[string]string{
			"TESTCONTAINERS_RYUK_DISABLED": "true",
			"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
		} {
			if _, set := os.LookupEnv(k); !set {
				_ = os.Setenv(k, v)
			}
		}
	})
}
