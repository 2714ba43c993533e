package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/conformance"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/targets"
)

func init() {
	register("conformance", "run the MQTT 3.1.1 and 5.0 conformance suite against brokers (results, JUnit, HTML matrix)",
		"Runs every spec against each --target. Exit status: 0 every spec passed or deviated as declared,\n"+
			"1 a spec failed, 2 bad flags, 3 a target could not be started or reached.", conformanceCmd)
}

// targetList is a repeatable, comma-separated --target flag.
type targetList []string

func (l *targetList) String() string { return strings.Join(*l, ",") }

func (l *targetList) Type() string { return "target" }

func (l *targetList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func conformanceCmd(fs *pflag.FlagSet) runFunc {
	var names targetList
	fs.Var(&names, "target", "broker under test: inprocess, mosquitto, emqx, tcp://host:port or ws://host:port/path (repeatable or comma-separated; default inprocess)")
	junit := fs.String("junit", "", "write JUnit XML here (a case per target and statement)")
	results := fs.String("results", "", "write the results file (JSON, readable by `mqttfleet report`) here")
	html := fs.String("html", "", "write the HTML report (statement x target matrix) here")
	md := fs.String("md", "", "write a Markdown summary here")
	out := fs.String("out", "", "write results.json, junit.xml and report.html into this directory")
	labels := fs.String("label-filter", "", `run only specs matching this Ginkgo label filter, e.g. "retain" or "MQTT-3.1.2-24"`)
	timeout := fs.Duration("timeout", 30*time.Minute, "bound on the whole run")
	verbose := fs.BoolP("verbose", "v", false, "report every spec, not only failures")
	deviations := fs.String("deviations", "", `expected deviations of a known broker (e.g. "mosquitto") for targets given by URL`)
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if len(names) == 0 {
			names = targetList{"inprocess"}
		}
		ts, err := targets.List(names.String())
		if err != nil {
			return fmt.Errorf("%v: %w", err, errUsage)
		}
		outs := conformance.Outputs{Results: *results, JUnit: *junit, HTML: *html, Markdown: *md}
		if *out != "" {
			d := conformance.OutputsInDir(*out)
			outs.Results = cmp.Or(outs.Results, d.Results)
			outs.JUnit = cmp.Or(outs.JUnit, d.JUnit)
			outs.HTML = cmp.Or(outs.HTML, d.HTML)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := conformance.Run(ctx, conformance.Options{
			Targets: ts, Outputs: outs, LabelFilter: *labels, Timeout: *timeout, Verbose: *verbose, Deviations: *deviations,
			Color: colorOK(os.Stdout),
		})
		if res != nil && res.Run.Status == reports.StatusTargetUnavailable {
			fmt.Fprintf(os.Stderr, "mqttfleet conformance: %s\n", res.Run.StatusReason)
		}
		return err
	}
}
