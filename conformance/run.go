package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/targets"
)

// Outputs names the files a run writes; empty names are not written. All of
// them render the one reports.Results the run fills, exactly as `mqttfleet
// run` and `simulate` write theirs.
type Outputs struct {
	Results  string // the results file (JSON), readable by `mqttfleet report`
	JUnit    string // JUnit XML: a case per (target, statement)
	HTML     string // self-contained page with the statement x target matrix
	Markdown string // short summary
}

// OutputsInDir returns the outputs under dir with their usual names: the
// same three files every mqttfleet command leaves (results.json,
// junit.xml, report.html).
func OutputsInDir(dir string) Outputs {
	return Outputs{
		Results: filepath.Join(dir, "results.json"),
		JUnit:   filepath.Join(dir, "junit.xml"),
		HTML:    filepath.Join(dir, "report.html"),
	}
}

// last is the outcome of the run that just finished in this process.
var last struct {
	matrix  *Matrix
	results *reports.Results
}

// LastMatrix returns the matrix of the run that just finished in this
// process, or nil before one has.
func LastMatrix() *Matrix { return last.matrix }

// LastResults returns the results of the run that just finished in this
// process, or nil before one has.
func LastResults() *reports.Results { return last.results }

// ReportTo registers the ReportAfterSuite that builds the matrix and its
// results, prints the coverage figure and writes outs. Call it, like
// Define, before RunSpecs.
func ReportTo(outs Outputs) {
	ReportAfterSuite("conformance matrix", func(r Report) {
		m := BuildMatrix(r)
		res := m.Results(r.StartTime, r.EndTime)
		last.matrix, last.results = m, res
		fmt.Fprintln(os.Stdout, m.CoverageLine())
		for _, sr := range m.Specs {
			if sr.Status == StatusNotReproduced {
				fmt.Fprintf(os.Stdout, "conformance: declared deviation did not reproduce on %s: %s (%s)\n", sr.Target, sr.Text, firstLine(sr.Reason))
			}
		}
		if err := WriteOutputs(res, outs); err != nil {
			fmt.Fprintln(os.Stderr, "conformance:", err)
		}
	})
}

// WriteOutputs writes res to every output named in outs.
func WriteOutputs(res *reports.Results, outs Outputs) error {
	for _, p := range []string{outs.Results, outs.JUnit, outs.Markdown, outs.HTML} {
		if p == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create results directory: %w", err)
		}
	}
	if outs.Results != "" {
		if err := res.Write(outs.Results); err != nil {
			return err
		}
	}
	for _, o := range []struct {
		path   string
		render func(io.Writer, *reports.Results) error
	}{{outs.JUnit, reports.JUnit}, {outs.Markdown, reports.Markdown}, {outs.HTML, reports.HTML}} {
		if o.path == "" {
			continue
		}
		f, err := os.Create(o.path)
		if err != nil {
			return fmt.Errorf("create %s: %w", o.path, err)
		}
		werr := o.render(f, res)
		if err := f.Close(); werr == nil && err != nil {
			werr = fmt.Errorf("close %s: %w", o.path, err)
		}
		if werr != nil {
			return fmt.Errorf("write %s: %w", o.path, werr)
		}
	}
	return nil
}

// Options configure a programmatic run (the mqttfleet conformance command).
type Options struct {
	Targets     []targets.Target
	Outputs     Outputs
	LabelFilter string        // Ginkgo label filter, such as "retain || MQTT-3.1.2-24"
	Timeout     time.Duration // whole run; 0 keeps Ginkgo's default (1 h)
	Verbose     bool          // report every spec, not only failures
	// Color lets Ginkgo's report use ANSI colours: set it only when the
	// output is a terminal and NO_COLOR is not set.
	Color bool
	// Deviations names the Deviations table (such as "mosquitto") targets
	// without one of their own use; "" keeps each target's own.
	Deviations string
}

// stubT stands in for *testing.T outside go test: RunSpecs only calls Fail.
type stubT struct{ failed bool }

func (t *stubT) Fail() { t.failed = true }

// ErrSpecsFailed is returned by Run when a spec failed (and no declared
// deviation explains it): the results hold which.
var ErrSpecsFailed = errors.New("conformance: specs failed")

// Run runs the suite in this process with Ginkgo's RunSpecs, exactly as
// go test does, writes the outputs and returns the results. Every target
// was asked for by the user: one that cannot run here (no Docker, image
// missing, address not answering) ends the run before any spec, with
// results whose status is target_unavailable and an error wrapping
// reports.ErrTargetUnavailable. A failed spec returns ErrSpecsFailed with
// the results. Ginkgo allows one run per process.
func Run(ctx context.Context, opts Options) (*reports.Results, error) {
	if len(opts.Targets) == 0 {
		return nil, fmt.Errorf("conformance: no target: %w", reports.ErrInvalid)
	}
	if opts.Deviations != "" {
		for _, t := range opts.Targets {
			if _, own := targets.Deviations[t.Name()]; own {
				continue
			}
			if err := UseDeviations(t.Name(), opts.Deviations); err != nil {
				return nil, fmt.Errorf("conformance: %w: %w", reports.ErrInvalid, err)
			}
		}
	}
	start := time.Now()
	names := make([]string, len(opts.Targets))
	for i, t := range opts.Targets {
		names[i] = t.Name()
	}
	for _, t := range opts.Targets {
		if err := targets.Check(ctx, t); err != nil {
			res := unavailableResults(start, names, err)
			if werr := WriteOutputs(res, opts.Outputs); werr != nil {
				return res, errors.Join(err, werr)
			}
			return res, fmt.Errorf("conformance: target %s: %w", t.Name(), err)
		}
	}
	Define(opts.Targets)
	ReportTo(opts.Outputs)
	RegisterFailHandler(Fail)
	suiteConfig, reporterConfig := GinkgoConfiguration()
	suiteConfig.LabelFilter = opts.LabelFilter
	if opts.Timeout > 0 {
		suiteConfig.Timeout = opts.Timeout
	}
	reporterConfig.Verbose = opts.Verbose
	reporterConfig.NoColor = !opts.Color
	t := &stubT{}
	passed := RunSpecs(t, "MQTT 3.1.1 and 5.0 conformance", suiteConfig, reporterConfig)
	res := LastResults()
	if res == nil {
		return nil, fmt.Errorf("conformance: the suite ended without a report")
	}
	if !passed || t.failed {
		return res, ErrSpecsFailed
	}
	return res, nil
}
