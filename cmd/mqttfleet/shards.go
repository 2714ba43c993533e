package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/shards"
)

func init() {
	registerGroup("shards", "run a fleet past one machine: Kubernetes Indexed Job manifests, and their local rehearsal", shardsCommands)
}

func shardsCommands() []*cobra.Command {
	m := &cobra.Command{Use: "manifests --profile fleet.yaml --shards N --image IMG [-o fleet.yaml]",
		Short: "write the Kubernetes objects of a sharded fleet (Job, ConfigMap, optional broker Deployment + Service)",
		Long: "Builds the objects from the k8s.io/api types: an Indexed Job of N pods, each running\n" +
			"`mqttfleet simulate --shards N` on its slice of the profile's devices (index from $JOB_COMPLETION_INDEX),\n" +
			"writing /results/shard-<index>.json; the profile in a ConfigMap; without --broker, the reference broker\n" +
			"as a Deployment and Service. Apply with kubectl apply -f; merge with `mqttfleet report merge`."}
	mf := m.Flags()
	profile := mf.String("profile", "", "fleet profile (YAML, see docs/simulator.md) the ConfigMap carries (required)")
	n := mf.Int("shards", 4, "pods of the Job, one shard each")
	image := mf.String("image", "mqttfleet/mqttfleet:dev", "image holding "+shards.Binary)
	broker := mf.String("broker", "", "broker address the shards use (default: deploy the reference broker and use its Service)")
	name := mf.String("name", "mqttfleet", "prefix of the objects' names")
	ns := mf.String("namespace", "default", "namespace")
	runID := mf.String("run-id", "", "run ID shared by the shards (default <name>-run)")
	claim := mf.String("results-claim", "", "PersistentVolumeClaim (ReadWriteMany) for /results (default emptyDir)")
	out := mf.StringP("output", "o", "", "output file (default: standard output)")
	m.RunE = func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if *profile == "" {
			return fmt.Errorf("%w: shards manifests needs --profile", errUsage)
		}
		data, err := os.ReadFile(*profile)
		if err != nil {
			return err
		}
		set, err := shards.Build(shards.Options{Name: *name, Namespace: *ns, Image: *image, Shards: *n, Profile: data,
			Broker: *broker, RunID: *runID, ResultsClaim: *claim})
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		y, err := set.YAML()
		if err != nil {
			return err
		}
		if *out == "" {
			_, err = os.Stdout.Write(y)
			return err
		}
		return os.WriteFile(*out, y, 0o644)
	}

	r := &cobra.Command{Use: "rehearse --manifests fleet.yaml --out DIR",
		Short: "run the manifests' Job on this machine exactly as the cluster would, then merge the shards' results",
		Long: "Reads the manifests strictly (the k8s.io/api types), starts the broker Deployment's command when there is one,\n" +
			"then one process per completion index with the Job's command line and $JOB_COMPLETION_INDEX, and merges\n" +
			"the shards' results into DIR/results.json, report.html and junit.xml. Exit status as `simulate`."}
	rf := r.Flags()
	manifests := rf.String("manifests", "", "the YAML `shards manifests` wrote (required)")
	dir := rf.String("out", "shards-out", "directory for the shards' files and the merged report")
	timeout := rf.Duration("timeout", 30*time.Minute, "bound on the whole rehearsal")
	r.RunE = func(cmd *cobra.Command, args []string) error {
		if *manifests == "" {
			return fmt.Errorf("%w: shards rehearse needs --manifests", errUsage)
		}
		data, err := os.ReadFile(*manifests)
		if err != nil {
			return err
		}
		set, err := shards.Parse(data)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, *manifests, err)
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return err
		}
		paths, err := (&shards.Rehearsal{Set: set, Exe: exe, Dir: abs, Log: os.Stderr}).Run(ctx)
		if err != nil {
			return err
		}
		merged := filepath.Join(abs, "results.json")
		if err := mergeResults(merged, paths); err != nil {
			return err
		}
		res, err := reports.Read(merged)
		if err != nil {
			return err
		}
		for _, f := range []struct {
			name   string
			render func(*os.File, *reports.Results) error
		}{
			{"report.html", func(w *os.File, r *reports.Results) error { return reports.HTML(w, r) }},
			{"junit.xml", func(w *os.File, r *reports.Results) error { return reports.JUnit(w, r) }},
		} {
			fh, err := os.Create(filepath.Join(abs, f.name))
			if err != nil {
				return err
			}
			werr := f.render(fh, res)
			if cerr := fh.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return werr
			}
		}
		fmt.Fprintf(os.Stderr, "merged report: %s (report.html, junit.xml beside it)\n", merged)
		return outcome(res)
	}
	return []*cobra.Command{m, r}
}
