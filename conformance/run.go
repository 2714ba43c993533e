package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/targets"
)

// Outputs names the files a run writes; empty names are not written.
type Outputs struct {
	JUnit    string // JUnit XML (Ginkgo's JUnit reporter)
	JSON     string // matrix as JSON
	Markdown string // matrix as Markdown
	HTML     string // matrix as a self-contained HTML page
}

// OutputsInDir returns the four outputs under dir with their usual names.
func OutputsInDir(dir string) Outputs {
	return Outputs{
		JUnit:    filepath.Join(dir, "junit.xml"),
		JSON:     filepath.Join(dir, "matrix.json"),
		Markdown: filepath.Join(dir, "matrix.md"),
		HTML:     filepath.Join(dir, "matrix.html"),
	}
}

// lastMatrix is the matrix of the finished run, for callers of RunSpecs.
var lastMatrix *Matrix

// LastMatrix returns the matrix of the run that just finished in this
// process, or nil before one has.
func LastMatrix() *Matrix { return lastMatrix }

// ReportTo registers the ReportAfterSuite that builds the matrix, prints the
// coverage figure and writes outs. Call it, like Define, before RunSpecs.
func ReportTo(outs Outputs) {
	ReportAfterSuite("conformance matrix", func(r Report) {
		m := BuildMatrix(r)
		lastMatrix = m
		fmt.Fprintln(os.Stdout, m.CoverageLine())
		for _, sr := range m.Specs {
			if sr.Status == StatusNotReproduced {
				fmt.Fprintf(os.Stdout, "conformance: declared deviation did not reproduce on %s: %s (%s)\n", sr.Target, sr.Text, firstLine(sr.Reason))
			}
		}
		if err := writeOutputs(r, m, outs); err != nil {
			fmt.Fprintln(os.Stderr, "conformance:", err)
		}
	})
}

func writeOutputs(r types.Report, m *Matrix, outs Outputs) error {
	for _, p := range []string{outs.JUnit, outs.JSON, outs.Markdown, outs.HTML} {
		if p == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create results directory: %w", err)
		}
	}
	if outs.JUnit != "" {
		if err := reporters.GenerateJUnitReport(r, outs.JUnit); err != nil {
			return fmt.Errorf("write JUnit %s: %w", outs.JUnit, err)
		}
	}
	for _, o := range []struct {
		path  string
		write func(*os.File) error
	}{
		{outs.JSON, func(f *os.File) error { return m.WriteJSON(f) }},
		{outs.Markdown, func(f *os.File) error { return m.WriteMarkdown(f) }},
		{outs.HTML, func(f *os.File) error { return m.WriteHTML(f) }},
	} {
		if o.path == "" {
			continue
		}
		f, err := os.Create(o.path)
		if err != nil {
			return fmt.Errorf("create %s: %w", o.path, err)
		}
		werr := o.write(f)
		if err := f.Close(); werr == nil && err != nil {
			werr = fmt.Errorf("close %s: %w", o.path, err)
		}
		if werr != nil {
			return werr
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
	// Deviations names the Deviations table (such as "mosquitto") targets
	// without one of their own use; "" keeps each target's own.
	Deviations string
}

// stubT stands in for *testing.T outside go test: RunSpecs only calls Fail.
type stubT struct{ failed bool }

func (t *stubT) Fail() { t.failed = true }

// Run runs the suite in this process with Ginkgo's RunSpecs, exactly as
// go test does, and returns the matrix and whether every spec passed or
// deviated as declared. Ginkgo allows one run per process.
func Run(opts Options) (*Matrix, bool, error) {
	if len(opts.Targets) == 0 {
		return nil, false, fmt.Errorf("conformance: no target")
	}
	if opts.Deviations != "" {
		for _, t := range opts.Targets {
			if _, own := Deviations[t.Name()]; own {
				continue
			}
			if err := UseDeviations(t.Name(), opts.Deviations); err != nil {
				return nil, false, fmt.Errorf("conformance: %w", err)
			}
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
	t := &stubT{}
	passed := RunSpecs(t, "MQTT 3.1.1 conformance", suiteConfig, reporterConfig)
	return LastMatrix(), passed && !t.failed, nil
}
