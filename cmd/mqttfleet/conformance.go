package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/conformance"
	"github.com/mqttfleet/mqttfleet/targets"
)

func init() {
	register("conformance", "run the MQTT 3.1.1 conformance suite against brokers (JUnit + matrix)", runConformance)
}

// targetList is a repeatable, comma-separated --target flag.
type targetList []string

func (l *targetList) String() string { return strings.Join(*l, ",") }

func (l *targetList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func runConformance(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	var names targetList
	fs.Var(&names, "target", "broker under test: inprocess, mosquitto, emqx, tcp://host:port or ws://host:port/path (repeatable or comma-separated; default inprocess)")
	junit := fs.String("junit", "", "write JUnit XML here")
	matrix := fs.String("matrix", "", "write the statement x target matrix as JSON here")
	html := fs.String("html", "", "write the matrix as a self-contained HTML page here")
	md := fs.String("md", "", "write the matrix as Markdown here")
	out := fs.String("out", "", "write junit.xml, matrix.json, matrix.md and matrix.html into this directory")
	labels := fs.String("label-filter", "", `run only specs matching this Ginkgo label filter, e.g. "retain" or "MQTT-3.1.2-24"`)
	timeout := fs.Duration("timeout", 30*time.Minute, "bound on the whole run")
	verbose := fs.Bool("v", false, "report every spec, not only failures")
	deviations := fs.String("deviations", "", `expected deviations of a known broker (e.g. "mosquitto") for targets given by URL`)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mqttfleet conformance [--target NAME]... [--junit F] [--matrix F] [--html F] [--md F] [--out DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	if len(names) == 0 {
		names = targetList{"inprocess"}
	}
	ts, err := targets.List(names.String())
	if err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	outs := conformance.Outputs{JUnit: *junit, JSON: *matrix, HTML: *html, Markdown: *md}
	if *out != "" {
		d := conformance.OutputsInDir(*out)
		outs.JUnit = cmp.Or(outs.JUnit, d.JUnit)
		outs.JSON = cmp.Or(outs.JSON, d.JSON)
		outs.HTML = cmp.Or(outs.HTML, d.HTML)
		outs.Markdown = cmp.Or(outs.Markdown, d.Markdown)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m, passed, err := conformance.Run(conformance.Options{
		Targets: ts, Outputs: outs, LabelFilter: *labels, Timeout: *timeout, Verbose: *verbose, Deviations: *deviations,
	})
	if err != nil {
		return err
	}
	if m != nil {
		fmt.Fprintln(os.Stderr, m.CoverageLine())
	}
	if !passed {
		return fmt.Errorf("conformance: specs failed (see the report above)")
	}
	return nil
}
