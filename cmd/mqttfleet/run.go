package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/scenarios"
	"github.com/mqttfleet/mqttfleet/simulator"
	"github.com/mqttfleet/mqttfleet/targets"
)

func init() {
	register("run [flags] scenario.yaml...", "run scenario files and check their assertions", runLong, runCmd)
}

const runLong = `Runs each scenario against its target (default: the in-process reference
broker), prints live progress and every assertion's verdict, and writes
results.json, report.html and junit.xml into the output directory.
Assertions keep the standard's windows. A miss that a known deviation of
the target explains (declared in docs/deviations.md for a statement the
assertion cites) is reported as a deviation, not a failure; --strict makes
it a failure.
Exit status: 0 when every assertion passed, was skipped or deviated as
known, 1 when one failed or the run was interrupted, 2 for bad flags or scenario files,
3 when the target could not be started or reached.`

// setFlags collects repeated --set name=value flags.
type setFlags map[string]string

func (s setFlags) String() string { return fmt.Sprint(map[string]string(s)) }

func (s setFlags) Type() string { return "name=value" }

func (s setFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	s[k] = val
	return nil
}

func runCmd(fs *pflag.FlagSet) runFunc {
	target := fs.String("target", "", "broker under test: inprocess, mosquitto, emqx or a tcp:// URL (default: the scenario's target)")
	out := fs.String("out", "", "output directory (default ./results/<scenario>-<timestamp>; one subdirectory per scenario when several run)")
	dry := fs.Bool("dry-run", false, "validate, check the target and print the resolved timeline without running")
	prog := progressFlags(fs)
	eventsPath := fs.String("events", "", "write every event as JSON lines to this file (several scenarios: events.jsonl in each output directory)")
	verbose := fs.BoolP("verbose", "v", false, "log what the fleet, proxy and broker do (to stderr)")
	strict := fs.Bool("strict", false, "count a miss that a known deviation of the target explains (docs/deviations.md) as a failure, not a deviation")
	deviations := fs.String("deviations", "", `known deviations of a broker (e.g. "mosquitto") for a target given by URL`)
	vars := setFlags{}
	fs.Var(vars, "set", "override a scenario variable: --set devices=500 (repeatable)")
	return func(ctx context.Context, args []string) error {
		if err := prog.check(); err != nil {
			return err
		}
		if *deviations != "" {
			if err := targets.DeviationTable(*deviations); err != nil {
				return fmt.Errorf("%w: --deviations: %v", errUsage, err)
			}
		}
		return runScenarios(ctx, args, runOptions{target: *target, out: *out, dry: *dry, every: prog.interval(),
			events: *eventsPath, verbose: *verbose, vars: vars, strict: *strict, deviations: *deviations})
	}
}

// runOptions are the flags of `mqttfleet run`.
type runOptions struct {
	target, out, events string
	dry, verbose        bool
	every               time.Duration // progress lines; 0: none
	vars                setFlags
	strict              bool   // known deviations fail
	deviations          string // deviation table for a target given by URL
}

func runScenarios(ctx context.Context, args []string, o runOptions) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: run needs at least one scenario file", errUsage)
	}
	target, out, dry, vars := &o.target, &o.out, &o.dry, o.vars
	var scs []*scenarios.Scenario
	for _, path := range args {
		sc, err := scenarios.Load(path, vars)
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		scs = append(scs, sc)
	}
	if *dry {
		// A dry run resolves and checks the target a real run would use,
		// so it fails (exit 3) where the run would.
		if *target != "" {
			t, err := targets.ByName(*target)
			if err != nil {
				return fmt.Errorf("%w: --target: %v", errUsage, err)
			}
			if err := targets.Check(ctx, t); err != nil {
				return fmt.Errorf("--target %s: %w", *target, err)
			}
		}
		for _, sc := range scs {
			if err := scenarios.Describe(os.Stdout, sc); err != nil {
				return err
			}
			fmt.Println()
		}
		return nil
	}
	if _, _, err := simulator.RaiseOpenFileLimit(); err != nil {
		fmt.Fprintf(os.Stderr, "warning: raise the open-file limit: %v\n", err)
	}
	failed, unavailable, interrupted := 0, 0, 0
	stamp := time.Now().Format("20060102-150405")
	for _, sc := range scs {
		dir := *out
		switch {
		case dir == "":
			dir = filepath.Join("results", sc.Name+"-"+stamp)
		case len(scs) > 1:
			dir = filepath.Join(dir, sc.Name)
		}
		evPath := o.events
		if evPath != "" && len(scs) > 1 {
			evPath = filepath.Join(dir, "events.jsonl")
		}
		res, err := runOne(ctx, sc, dir, evPath, o)
		if err != nil {
			return err
		}
		switch {
		case res.Run.Status == reports.StatusTargetUnavailable:
			unavailable++
		case res.Run.Status == reports.StatusInterrupted:
			interrupted++
		case reports.ExitCode(res, nil) != reports.ExitPass:
			failed++
		}
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case unavailable > 0:
		return fmt.Errorf("%d of %d scenarios could not reach their target: %w", unavailable, len(scs), reports.ErrTargetUnavailable)
	case interrupted > 0:
		return fmt.Errorf("interrupted: the results written are partial")
	case failed > 0:
		return fmt.Errorf("%d of %d scenarios failed", failed, len(scs))
	}
	return nil
}

// runOne runs one scenario, writes its output files and returns its results.
func runOne(ctx context.Context, sc *scenarios.Scenario, dir, eventsPath string, o runOptions) (*reports.Results, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	opts := scenarios.Options{Command: os.Args, Strict: o.strict, Deviations: o.deviations}
	every, verbose := o.every, o.verbose
	if o.target != "" {
		t, err := targets.ByName(o.target)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		opts.Target = t
	}
	if every > 0 {
		opts.Progress, opts.ProgressEvery = os.Stderr, every
	}
	if verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	var jl *events.JSONLines
	if eventsPath != "" {
		f, err := os.Create(eventsPath)
		if err != nil {
			return nil, fmt.Errorf("create events file: %w", err)
		}
		defer f.Close()
		jl = events.NewJSONLines(bufio.NewWriter(f))
		opts.Events = jl
	}
	fmt.Fprintf(os.Stderr, "running %s (%s)\n", sc.Name, sc.File)
	res, err := scenarios.Run(ctx, sc, opts)
	if jl != nil {
		if cerr := jl.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write events: %w", cerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	printVerdicts(os.Stdout, sc, res)
	paths, err := writeRunOutputs(dir, res)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		fmt.Printf("  wrote %s\n", p)
	}
	return res, nil
}

// printVerdicts prints one line per assertion and the summary.
func printVerdicts(w io.Writer, sc *scenarios.Scenario, res *reports.Results) {
	if n := len(res.Assertions); n > 0 && allSkipped(res) {
		fmt.Fprintf(w, "  SKIP  all %d assertions: %s\n", n, res.Assertions[0].Message)
		fmt.Fprintln(w, scenarios.Summary(sc, res))
		return
	}
	for _, a := range res.Assertions {
		mark := map[reports.Verdict]string{reports.Pass: "PASS", reports.Fail: "FAIL", reports.Error: "ERROR", reports.Skipped: "SKIP", reports.Deviation: "DEV"}[a.Verdict]
		fmt.Fprintf(w, "  %-5s %s: %s\n", mark, a.Name, a.Message)
		if d := a.Deviation; d != nil {
			what := "known deviation"
			if d.Strict {
				what = "known deviation, a failure under --strict"
			}
			fmt.Fprintf(w, "        %s from %s: %s (%s)\n", what, d.Statement, d.Reason, d.Doc)
		}
	}
	fmt.Fprintln(w, scenarios.Summary(sc, res))
}

// writeRunOutputs writes results.json, report.html and junit.xml.
func writeRunOutputs(dir string, res *reports.Results) ([]string, error) {
	resultsPath := filepath.Join(dir, "results.json")
	if err := res.Write(resultsPath); err != nil {
		return nil, err
	}
	paths := []string{resultsPath}
	for _, r := range []struct {
		name   string
		render func(io.Writer, *reports.Results) error
	}{{"report.html", reports.HTML}, {"junit.xml", reports.JUnit}} {
		p := filepath.Join(dir, r.name)
		f, err := os.Create(p)
		if err != nil {
			return paths, fmt.Errorf("write %s: %w", p, err)
		}
		err = r.render(f, res)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return paths, fmt.Errorf("write %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func allSkipped(res *reports.Results) bool {
	for _, a := range res.Assertions {
		if a.Verdict != reports.Skipped {
			return false
		}
	}
	return true
}
