package shards

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Parse reads a YAML stream of the objects Build makes, strictly: a field
// the k8s.io/api types do not have, or a kind this package does not make,
// is an error naming the document. It is the schema check of the manifests.
func Parse(data []byte) (*Set, error) {
	set := &Set{}
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		var into any
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/ConfigMap":
			set.ConfigMap = &corev1.ConfigMap{}
			into = set.ConfigMap
		case "batch/v1/Job":
			set.Job = &batchv1.Job{}
			into = set.Job
		case "apps/v1/Deployment":
			set.Broker = &appsv1.Deployment{}
			into = set.Broker
		case "v1/Service":
			set.Service = &corev1.Service{}
			into = set.Service
		default:
			return nil, fmt.Errorf("document %d: kind %q (apiVersion %q) is not one of ConfigMap, Job, Deployment, Service", i+1, tm.Kind, tm.APIVersion)
		}
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i+1, tm.Kind, err)
		}
	}
	if set.Job == nil || set.ConfigMap == nil {
		return nil, errors.New("manifests: need a Job and its ConfigMap")
	}
	j := set.Job.Spec
	if j.CompletionMode == nil || *j.CompletionMode != batchv1.IndexedCompletion || j.Completions == nil || *j.Completions < 1 {
		return nil, errors.New("manifests: the Job must be an Indexed Job with completions set")
	}
	if len(j.Template.Spec.Containers) != 1 {
		return nil, errors.New("manifests: the Job's pod must have one container")
	}
	return set, nil
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// Rehearsal runs a Set on this machine as the cluster would.
type Rehearsal struct {
	Set *Set
	// Exe is the mqttfleet binary standing in for the image's.
	Exe string
	// Dir holds the ConfigMap's files (for its mount), the results volume
	// and each process's log.
	Dir string
	// Log receives progress lines.
	Log io.Writer
}

// Run starts the broker Deployment's command (when the Set has one) on a
// free loopback port, then one process per completion index with the Job's
// command and args, JOB_COMPLETION_INDEX set, the mount paths pointed at
// Dir; it waits for all of them and returns the results files they wrote.
// A shard that exits non-zero (its verdict failed) still counts if it
// wrote its results: the merged report judges the fleet.
func (r *Rehearsal) Run(ctx context.Context) ([]string, error) {
	if r.Log == nil {
		r.Log = io.Discard
	}
	profileDir := filepath.Join(r.Dir, "profile")
	resultsDir := filepath.Join(r.Dir, "results")
	for _, d := range []string{profileDir, resultsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for k, v := range r.Set.ConfigMap.Data {
		if err := os.WriteFile(filepath.Join(profileDir, k), []byte(v), 0o644); err != nil {
			return nil, err
		}
	}
	c := r.Set.Job.Spec.Template.Spec.Containers[0]
	repl := []string{ProfileDir, profileDir, ResultsDir, resultsDir}
	if r.Set.Broker != nil {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		local := fmt.Sprintf("127.0.0.1:%d", port)
		svc := fmt.Sprintf("%s.%s.svc:%d", r.Set.Service.Name, r.Set.Service.Namespace, BrokerPort)
		repl = append(repl, svc, local, fmt.Sprintf("tcp://0.0.0.0:%d", BrokerPort), "tcp://"+local)
		bc := r.Set.Broker.Spec.Template.Spec.Containers[0]
		stop, err := r.start(ctx, "broker", strings.NewReplacer(repl...), append(bc.Command, bc.Args...), nil)
		if err != nil {
			return nil, err
		}
		defer stop()
		if err := waitListening(ctx, local, 30*time.Second); err != nil {
			return nil, fmt.Errorf("rehearsal broker: %w", err)
		}
		fmt.Fprintf(r.Log, "broker (the Deployment's command) listening on %s\n", local)
	}
	rp := strings.NewReplacer(repl...)
	n := int(*r.Set.Job.Spec.Completions)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // owned: joined below
			defer wg.Done()
			cmd := r.command(rp, append(c.Command, c.Args...), []string{fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i)})
			logf, err := os.Create(filepath.Join(r.Dir, fmt.Sprintf("shard-%d.log", i)))
			if err != nil {
				errs[i] = err
				return
			}
			defer logf.Close()
			cmd.Stdout, cmd.Stderr = logf, logf
			fmt.Fprintf(r.Log, "shard %d/%d: %s\n", i, n, strings.Join(cmd.Args, " "))
			if err := runUntil(ctx, cmd); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					errs[i] = fmt.Errorf("shard %d: %w", i, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []string
	for i := range n {
		p := filepath.Join(resultsDir, fmt.Sprintf("shard-%d.json", i))
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("shard %d wrote no results (see %s): %w", i, filepath.Join(r.Dir, fmt.Sprintf("shard-%d.log", i)), err)
		}
		out = append(out, p)
	}
	return out, nil
}

// command makes the process for a container's command line: the image's
// binary is r.Exe, paths and the Service address are rewritten.
func (r *Rehearsal) command(rp *strings.Replacer, argv, env []string) *exec.Cmd {
	args := make([]string, len(argv))
	for i, a := range argv {
		args[i] = rp.Replace(a)
	}
	if args[0] == Binary {
		args[0] = r.Exe
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// start runs a long-lived process (the broker); stop ends it with SIGTERM
// and waits for it.
func (r *Rehearsal) start(ctx context.Context, name string, rp *strings.Replacer, argv, env []string) (func(), error) {
	cmd := r.command(rp, argv, env)
	logf, err := os.Create(filepath.Join(r.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // owned: ends with the process
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	}, nil
}

// runUntil runs cmd; when ctx ends first the process gets SIGINT, so it
// still writes its results.
func runUntil(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // owned: ends with the process
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(os.Interrupt)
		return <-done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts a TCP connection.
func waitListening(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var d net.Dialer
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(cctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections within %s: %w", addr, limit, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // the broker's start is not observable otherwise
		}
	}
}
