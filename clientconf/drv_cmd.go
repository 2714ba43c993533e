package clientconf

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// runProgram starts cmd, feeds it stdin lines from feed (nil: no stdin),
// parses each stdout line with parse, and ends it when ctx ends: SIGINT or
// SIGTERM (stop) for a clean end, SIGKILL otherwise. It returns when the
// program has exited.
func runProgram(ctx context.Context, cmd *exec.Cmd, stop os.Signal, clean bool, feed func(w io.WriteCloser), parse func(string) (Msg, bool)) (Received, error) {
	var (
		mu   sync.Mutex
		got  Received
		errb strings.Builder
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &errb
	var stdin io.WriteCloser
	if feed != nil {
		if stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	read := make(chan struct{})
	go func() { // owned: ends when the program's stdout closes
		defer close(read)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m, ok := parse(sc.Text()); ok {
				mu.Lock()
				got = append(got, m)
				mu.Unlock()
			}
		}
	}()
	fed := make(chan struct{})
	go func() { // owned: ends when feed returns, at the latest when ctx ends
		defer close(fed)
		if feed != nil {
			feed(stdin)
		}
	}()
	exited := make(chan error, 1)
	go func() { <-read; exited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-exited:
	case <-ctx.Done():
		if clean && feed != nil {
			// The feed closes stdin at ctx's end: a program reading its
			// input (mosquitto_pub -l) then finishes and disconnects itself.
			select {
			case werr = <-exited:
				<-fed
				return finish(&mu, got, werr)
			case <-time.After(3 * time.Second):
			}
		}
		sig := os.Signal(syscall.SIGKILL)
		if clean {
			sig = stop
		}
		_ = cmd.Process.Signal(sig)
		select {
		case werr = <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			werr = <-exited
		}
	}
	<-fed
	return finish(&mu, got, werr)
}

func finish(mu *sync.Mutex, got Received, werr error) (Received, error) {
	mu.Lock()
	defer mu.Unlock()
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return got, werr
	}
	return got, nil
}

// Mosquitto drives Debian's mosquitto_sub and mosquitto_pub (libmosquitto):
// a job that publishes runs mosquitto_pub -l (one message per stdin line),
// any other job mosquitto_sub. Neither takes a keepalive under 5 s.
type Mosquitto struct{}

// Name is "mosquitto_sub/pub".
func (Mosquitto) Name() string { return "mosquitto_sub/pub" }

// Protocols are 3.1.1 and 5.0.
func (Mosquitto) Protocols() []byte { return []byte{packet.V311, packet.V5} }

// Available says whether both programs are on PATH.
func (Mosquitto) Available() error {
	for _, p := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s is not installed (Debian package mosquitto-clients; `make deps` installs it)", p)
		}
	}
	return nil
}

// Run runs mosquitto_pub or mosquitto_sub for the job.
func (Mosquitto) Run(ctx context.Context, job Job) (Received, error) {
	host, port, err := net.SplitHostPort(job.Addr)
	if err != nil {
		return nil, err
	}
	ver := "mqttv311"
	if job.Protocol == packet.V5 {
		ver = "mqttv5"
	}
	args := []string{"-h", host, "-p", port, "-i", job.ClientID, "-V", ver,
		"-k", strconv.Itoa(int(job.KeepAlive / time.Second))}
	if !job.Clean {
		args = append(args, "-c")
	}
	if job.Username != "" {
		args = append(args, "-u", job.Username)
		if job.Password != "" {
			args = append(args, "-P", job.Password)
		}
	}
	if w := job.Will; w != nil {
		args = append(args, "--will-topic", w.Topic, "--will-payload", w.Payload, "--will-qos", strconv.Itoa(int(w.QoS)))
		if w.Retain {
			args = append(args, "--will-retain")
		}
	}
	if len(job.Publish) > 0 || job.PublishEvery > 0 {
		topic, qos := job.Topic, byte(0)
		if len(job.Publish) > 0 {
			topic, qos = job.Publish[0].Topic, job.Publish[0].QoS
		}
		args = append(args, "-t", topic, "-q", strconv.Itoa(int(qos)), "-l")
		cmd := exec.Command("mosquitto_pub", args...)
		feed := func(w io.WriteCloser) {
			defer w.Close() // end of input: mosquitto_pub finishes its flows and disconnects
			for _, m := range job.Publish {
				fmt.Fprintln(w, m.Payload)
			}
			if job.DisconnectEarly {
				return
			}
			tick, stop := busyTicks(job)
			defer stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick:
					fmt.Fprintln(w, "busy")
				}
			}
		}
		return runProgram(ctx, cmd, syscall.SIGINT, job.Disconnect, feed, nil)
	}
	var qos byte
	for _, s := range job.Subscribe {
		args = append(args, "-t", s.Filter)
		qos = max(qos, s.QoS)
	}
	if len(job.Subscribe) == 0 {
		return nil, errors.New("mosquitto_sub needs a subscription")
	}
	for _, f := range job.Unsubscribe {
		args = append(args, "-U", f)
	}
	args = append(args, "-q", strconv.Itoa(int(qos)), "-F", "%t\t%q\t%r\t%p")
	cmd := exec.Command("mosquitto_sub", args...)
	return runProgram(ctx, cmd, syscall.SIGINT, job.Disconnect, nil, func(line string) (Msg, bool) {
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			return Msg{}, false
		}
		q, _ := strconv.Atoi(f[1])
		return Msg{Topic: f[0], QoS: byte(q), Retain: f[2] == "1", Payload: f[3]}, true
	})
}

//go:embed drivers/paho_mqtt.py
var pahoPy []byte

// PythonPaho drives Python paho-mqtt through drivers/paho_mqtt.py with
// Debian's /usr/bin/python3 (package python3-paho-mqtt).
type PythonPaho struct {
	// Python is the interpreter (default /usr/bin/python3).
	Python string
}

// Name is "paho-mqtt (Python)".
func (PythonPaho) Name() string { return "paho-mqtt-python" }

// Protocols are 3.1.1 and 5.0.
func (PythonPaho) Protocols() []byte { return []byte{packet.V311, packet.V5} }

func (d PythonPaho) python() string {
	if d.Python != "" {
		return d.Python
	}
	return "/usr/bin/python3"
}

// Available says whether the interpreter imports paho.mqtt.client.
func (d PythonPaho) Available() error {
	if out, err := exec.Command(d.python(), "-c", "import paho.mqtt.client").CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot import paho.mqtt.client (Debian package python3-paho-mqtt; `make deps` installs it): %s",
			d.python(), strings.TrimSpace(string(out)))
	}
	return nil
}

var pyScript = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mqttfleet-clientconf-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "paho_mqtt.py")
	return p, os.WriteFile(p, pahoPy, 0o644)
})

// Run runs the driver script with the job as JSON.
func (d PythonPaho) Run(ctx context.Context, job Job) (Received, error) {
	script, err := pyScript()
	if err != nil {
		return nil, err
	}
	j := map[string]any{
		"addr": job.Addr, "client_id": job.ClientID, "protocol": job.Protocol, "clean": job.Clean,
		"keepalive_s": int(job.KeepAlive / time.Second), "username": job.Username, "password": job.Password,
		"subscribe": subsJSON(job.Subscribe), "unsubscribe": job.Unsubscribe, "publish": msgsJSON(job.Publish),
		"topic": job.Topic, "publish_every_ms": job.PublishEvery.Milliseconds(),
		"reconnect": job.Reconnect, "disconnect": job.Disconnect, "disconnect_early": job.DisconnectEarly,
	}
	if job.Will != nil {
		j["will"] = msgsJSON([]Msg{*job.Will})[0]
	}
	b, _ := json.Marshal(j)
	cmd := exec.Command(d.python(), script, string(b))
	return runProgram(ctx, cmd, syscall.SIGTERM, job.Disconnect, nil, func(line string) (Msg, bool) {
		var m struct {
			Topic   string `json:"topic"`
			QoS     byte   `json:"qos"`
			Retain  bool   `json:"retain"`
			Payload string `json:"payload"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			return Msg{}, false
		}
		return Msg{Topic: m.Topic, QoS: m.QoS, Retain: m.Retain, Payload: m.Payload}, true
	})
}

func subsJSON(subs []Sub) []map[string]any {
	out := []map[string]any{}
	for _, s := range subs {
		out = append(out, map[string]any{"filter": s.Filter, "qos": s.QoS})
	}
	return out
}

func msgsJSON(ms []Msg) []map[string]any {
	out := []map[string]any{}
	for _, m := range ms {
		out = append(out, map[string]any{"topic": m.Topic, "qos": m.QoS, "retain": m.Retain, "payload": m.Payload})
	}
	return out
}

// Command runs any program as the client under test: Args is its command
// line with placeholders {host}, {port}, {id} (the probe's client ID) and
// {keepalive} (seconds). It does what its command line says, so the suite
// runs only the probes that ask nothing more than connecting, subscribing
// (as the program does) and staying, and grades nothing that needs to know
// what it delivered. At a probe's end it gets SIGTERM.
type Command struct {
	Label string   // the column name (default "cmd:" + the program's base name)
	Args  []string // program and arguments
}

// ParseCommand splits a command line on blanks (no shell quoting).
func ParseCommand(line string) (Command, error) {
	args := strings.Fields(line)
	if len(args) == 0 {
		return Command{}, errors.New("empty command line")
	}
	if !strings.Contains(line, "{port}") {
		return Command{}, fmt.Errorf("command line %q has no {port}: the client would not find the suite's broker", line)
	}
	return Command{Args: args}, nil
}

// Name is the label.
func (c Command) Name() string {
	if c.Label != "" {
		return c.Label
	}
	return "cmd:" + filepath.Base(c.Args[0])
}

// Protocols: whatever the program speaks; the suite grades 3.1.1 unless
// asked for 5 (the program's own CONNECT says which it is).
func (Command) Protocols() []byte { return []byte{packet.V311, packet.V5} }

// Available says whether the program is on PATH.
func (c Command) Available() error {
	if _, err := exec.LookPath(c.Args[0]); err != nil {
		return fmt.Errorf("%s: %w", c.Args[0], err)
	}
	return nil
}

// Can: jobs that only connect, subscribe and stay (with or without the
// program's own reconnect), with no credentials or will it cannot be told.
func (Command) Can(job Job) bool {
	return len(job.Publish) == 0 && job.PublishEvery == 0 && len(job.Unsubscribe) == 0 && job.Clean &&
		job.Will == nil && job.Username == "" && !job.DisconnectEarly
}

// Blind: a program's deliveries are not known.
func (Command) Blind() bool { return true }

// Run starts the program with the placeholders filled.
func (c Command) Run(ctx context.Context, job Job) (Received, error) {
	host, port, err := net.SplitHostPort(job.Addr)
	if err != nil {
		return nil, err
	}
	r := strings.NewReplacer("{host}", host, "{port}", port, "{id}", job.ClientID,
		"{keepalive}", strconv.Itoa(int(job.KeepAlive/time.Second)))
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = r.Replace(a)
	}
	_, err = runProgram(ctx, exec.Command(args[0], args[1:]...), syscall.SIGTERM, true, nil, func(string) (Msg, bool) { return Msg{}, false })
	return nil, err
}
