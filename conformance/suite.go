// Package conformance is the MQTT 3.1.1 and 5.0 broker conformance suite: Ginkgo
// specs, each citing the normative statements it checks, registered once and
// expanded per target (the csi-test sanity pattern). A spec needing a
// capability the target lacks is skipped with that reason; a spec failing on
// a target that declares a deviation for its statement is recorded as a
// deviation. After the run the results become a statement x target matrix
// (JSON, Markdown, HTML) and JUnit XML.
//
//	registry (specs, once) --Define(targets)--> Describe per target --RunSpecs--> Report
//	                                                                               |
//	                              JUnit / matrix.json / .md / .html  <--ReportAfterSuite
package conformance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // the Ginkgo DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/targets"
)

// specDef is one conformance spec as registered: expanded once per target.
type specDef struct {
	Area       string   // label for --label-filter, such as "connect"
	Text       string   // what the broker must do, in words
	Statements []string // normative statement IDs the spec checks
	Needs      []string // capabilities (targets.Capabilities.Has) the spec needs
	// V5 makes a 5.0 spec: it connects at protocol level 5, cites 5.0
	// statements (written as in the 5.0 list; register keys them with
	// V5Prefix), needs the "mqtt5" capability, and its text starts with
	// V5Text so a 5.0 spec never reads like the 3.1.1 one beside it.
	V5   bool
	Body func(e *env)
}

// V5Text starts the text of every 5.0 spec.
const V5Text = "MQTT 5.0: "

// protocol is the protocol label value of a spec ("protocol=5.0").
func (d specDef) protocol() string {
	if d.V5 {
		return Protocol5
	}
	return Protocol311
}

var registry []specDef

// register adds a spec to the suite; spec files call it from package-level vars.
func register(d specDef) bool {
	if len(d.Statements) == 0 {
		panic("conformance: spec " + d.Text + " cites no statement")
	}
	idx := statementIndex()
	if d.V5 {
		ids := make([]string, len(d.Statements))
		for i, id := range d.Statements {
			ids[i] = V5Prefix + strings.TrimPrefix(id, V5Prefix)
		}
		d.Statements = ids
		d.Needs = append([]string{"mqtt5"}, d.Needs...)
		d.Text = V5Text + d.Text
	}
	for _, id := range d.Statements {
		st, ok := idx[id]
		if !ok {
			panic("conformance: spec " + d.Text + " cites unknown statement " + id)
		}
		if st.Protocol != d.protocol() {
			panic("conformance: " + d.protocol() + " spec " + d.Text + " cites " + st.Protocol + " statement " + id)
		}
	}
	registry = append(registry, d)
	return true
}

// Areas returns the area labels in use, sorted.
func Areas() []string {
	seen := map[string]bool{}
	for _, d := range registry {
		seen[d.Area] = true
	}
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// TargetLabel is the label every spec of a target carries ("target=mosquitto"),
// with characters Ginkgo labels cannot hold replaced.
func TargetLabel(name string) string {
	return "target=" + strings.NewReplacer("/", "_", ":", "_", "&", "_", "|", "_", "!", "_", ",", "_", "(", "_", ")", "_").Replace(name)
}

// startTimeout bounds starting one target (a container takes seconds).
const startTimeout = 2 * time.Minute

// targetState is a target started lazily by its first spec and stopped after the suite.
type targetState struct {
	once sync.Once
	err  error
}

// Define registers every spec once per target, under a container labelled
// with the target, and an AfterSuite that stops the targets it started. Call
// it before RunSpecs.
func Define(ts []targets.Target) {
	var mu sync.Mutex
	var started []targets.Target
	for _, t := range ts {
		st := &targetState{}
		Describe("target "+t.Name(), Label(TargetLabel(t.Name())), func() {
			BeforeEach(func(ctx SpecContext) {
				st.once.Do(func() {
					sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
					defer cancel()
					st.err = t.Start(sctx)
					if st.err == nil {
						mu.Lock()
						started = append(started, t)
						mu.Unlock()
					}
				})
				if errors.Is(st.err, targets.ErrUnavailable) {
					Skip(fmt.Sprintf("target %s unavailable: %v", t.Name(), st.err))
				}
				Expect(st.err).NotTo(HaveOccurred(), "start target %s", t.Name())
			})
			for _, d := range registry {
				It(d.Text, Label(specLabels(d)...), SpecTimeout(specTimeout), func(ctx SpecContext) {
					runSpec(ctx, t, d)
				})
			}
		})
	}
	AfterSuite(func(ctx SpecContext) {
		mu.Lock()
		defer mu.Unlock()
		for _, t := range started {
			Expect(t.Stop(ctx)).To(Succeed(), "stop target %s", t.Name())
		}
	}, NodeTimeout(time.Minute))
}

// specTimeout bounds one spec; the slowest (keepalive, against a broker with
// a coarse keepalive timer) take about 10 s.
const specTimeout = 30 * time.Second

func specLabels(d specDef) []string {
	ls := append([]string{d.Area}, d.Statements...)
	ls = append(ls, "protocol="+d.protocol())
	for _, n := range d.Needs {
		if strings.HasPrefix(n, "!") {
			ls = append(ls, "needs-no="+n[1:])
		} else {
			ls = append(ls, "needs="+n)
		}
	}
	return ls
}

// runSpec runs one spec against one target: capability gate, then the body,
// with the declared deviation (if any) turning a failure into a recorded
// deviation, and the broker's logs and the probe's packet trace attached
// whenever the spec fails or deviates.
func runSpec(ctx SpecContext, t targets.Target, d specDef) {
	caps := t.Capabilities()
	for _, n := range d.Needs {
		if without, ok := strings.CutPrefix(n, "!"); ok {
			if caps.Has(without) {
				Skip(fmt.Sprintf("applies only to brokers without capability %q, which %s has", without, t.Name()))
			}
		} else if !caps.Has(n) {
			Skip(fmt.Sprintf("target %s lacks capability %q", t.Name(), n))
		}
	}
	e := newEnv(ctx, t)
	e.v5 = d.V5
	logsFrom := 0
	if b, err := t.Logs(ctx); err == nil {
		logsFrom = len(b)
	}
	attach := func() {
		AddReportEntry(EntryTrace, e.trace.String(), ReportEntryVisibilityFailureOrVerbose)
		if b, err := t.Logs(context.WithoutCancel(ctx)); err == nil && len(b) > logsFrom {
			AddReportEntry(EntryLogs, string(b[logsFrom:]), ReportEntryVisibilityFailureOrVerbose)
		}
	}
	DeferCleanup(func() {
		e.close()
		if CurrentSpecReport().Failed() {
			attach()
		}
	})
	dev, declared := deviationFor(t.Name(), d)
	id := dev.Statement
	if !declared {
		d.Body(e)
		return
	}
	err := InterceptGomegaFailure(func() { d.Body(e) })
	if err != nil {
		attach()
		AddReportEntry(EntryDeviation, fmt.Sprintf("%s: %s (%s)\nobserved: %v", id, dev.Reason, dev.Doc(), err))
		Skip(fmt.Sprintf("expected deviation of %s from %s: %s", t.Name(), id, dev.Reason))
	}
	AddReportEntry(EntryNotReproduced, fmt.Sprintf("%s: declared deviation %q did not reproduce; revisit %s", id, dev.Reason, dev.Doc()))
}

// Report entry names the matrix reads back.
const (
	EntryDeviation     = "mqttfleet-deviation"
	EntryNotReproduced = "mqttfleet-deviation-not-reproduced"
	EntryTrace         = "packet trace"
	EntryLogs          = "broker logs"
)
