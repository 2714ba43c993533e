package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/clientconf"
	"github.com/mqttfleet/mqttfleet/conformance"
	"github.com/mqttfleet/mqttfleet/packet"
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
	var clients targetList
	fs.Var(&clients, "client", "grade device clients instead of brokers: paho (paho.mqtt.golang), native (mqttfleet's client), mosquitto (mosquitto_sub/pub), python (paho-mqtt), or all (repeatable or comma-separated)")
	cmds := fs.StringArray("client-cmd", nil, "grade any program as a client: its command line with {host}, {port}, {id} and {keepalive} (repeatable; only the probes that need no more than connecting and subscribing run)")
	probes := fs.String("probes", "", "with --client: run only these probes (comma-separated; default all)")
	protocol := fs.String("protocol", "3.1.1", "with --client: protocol level to grade: 3.1.1, 5 or both")
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if len(clients) > 0 || len(*cmds) > 0 {
			if len(names) > 0 {
				return fmt.Errorf("%w: --client grades clients against the adversarial broker; it does not take --target", errUsage)
			}
			protos, ok := map[string][]byte{"3.1.1": {packet.V311}, "4": {packet.V311}, "5": {packet.V5}, "5.0": {packet.V5},
				"both": {packet.V311, packet.V5}}[*protocol]
			if !ok {
				return fmt.Errorf("%w: --protocol %q: want 3.1.1, 5 or both", errUsage, *protocol)
			}
			return clientConformance(ctx, clients, *cmds, *probes, protos, outputs(*results, *junit, *html, *md, *out))
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

func outputs(results, junit, html, md, out string) conformance.Outputs {
	outs := conformance.Outputs{Results: results, JUnit: junit, HTML: html, Markdown: md}
	if out != "" {
		d := conformance.OutputsInDir(out)
		outs.Results = cmp.Or(outs.Results, d.Results)
		outs.JUnit = cmp.Or(outs.JUnit, d.JUnit)
		outs.HTML = cmp.Or(outs.HTML, d.HTML)
	}
	return outs
}

// clientDrivers maps --client names to the clients the suite can start.
var clientDrivers = map[string]clientconf.Driver{
	"paho":      clientconf.Paho{},
	"native":    clientconf.Native{},
	"mosquitto": clientconf.Mosquitto{},
	"python":    clientconf.PythonPaho{},
}

// clientConformance runs the client suite (clientconf) and writes the same
// outputs as the broker suite. Exit status: 0 every check passed or deviated
// as declared, 1 a check failed, 3 no client asked for could run here.
func clientConformance(ctx context.Context, names targetList, cmds []string, probes string, protos []byte, outs conformance.Outputs) error {
	var ds []clientconf.Driver
	for _, line := range cmds {
		c, err := clientconf.ParseCommand(line)
		if err != nil {
			return fmt.Errorf("%w: --client-cmd: %w", errUsage, err)
		}
		ds = append(ds, c)
	}
	for _, n := range names {
		if n == "all" {
			ds = append(ds, clientconf.Paho{}, clientconf.Native{}, clientconf.Mosquitto{}, clientconf.PythonPaho{})
			continue
		}
		d, ok := clientDrivers[n]
		if !ok {
			return fmt.Errorf("%w: --client %q: want paho, native, mosquitto, python or all", errUsage, n)
		}
		ds = append(ds, d)
	}
	var only []string
	for _, p := range strings.Split(probes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			found := false
			for _, x := range clientconf.Probes {
				found = found || x.Name == p
			}
			if !found {
				return fmt.Errorf("%w: --probes: no probe %q", errUsage, p)
			}
			only = append(only, p)
		}
	}
	done := 0
	res := clientconf.Run(ctx, clientconf.Options{Drivers: ds, Probes: only, Protocols: protos, Progress: func(client, probe string, failed bool) {
		done++
		mark := "ok"
		if failed {
			mark = "a check failed (declared deviations included)"
		}
		fmt.Fprintf(os.Stderr, "[%3d] %-20s %-34s %s\n", done, client, probe, mark)
	}})
	results := res.Results()
	for c, why := range res.Skipped {
		fmt.Fprintf(os.Stderr, "mqttfleet conformance: client %s skipped: %s\n", c, why)
	}
	if err := conformance.WriteOutputs(results, outs); err != nil {
		return err
	}
	rm := results.Conformance
	failed := false
	for _, c := range res.Clients {
		cov := rm.Coverage[c]
		fmt.Printf("%-20s %d graded: %d pass, %d fail, %d declared deviation\n", c, cov.Tested, cov.Pass, cov.Fail, cov.Deviation)
		failed = failed || cov.Fail > 0
	}
	if len(res.Clients) == 0 {
		return fmt.Errorf("conformance: no client could run here: %w", reports.ErrTargetUnavailable)
	}
	if failed {
		return conformance.ErrSpecsFailed
	}
	return nil
}
