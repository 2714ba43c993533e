package conformance

import (
	"context"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/broker"
	"github.com/mqttfleet/mqttfleet/targets"
)

// useVariant moves the spec to a second broker of the target's kind,
// configured as the target but changed by edit (targets.Variants; specs
// calling it need the "variants" capability). Later connections go to the
// variant; it is stopped when the spec ends, after its logs are attached
// if the spec failed.
func (e *env) useVariant(edit func(*broker.Config)) {
	vt, ok := e.target.(targets.Variants)
	Expect(ok).To(BeTrue(), "target %s declares variants but cannot start one", e.target.Name())
	ctx, cancel := context.WithTimeout(e.ctx, startTimeout)
	defer cancel()
	v, err := vt.Variant(ctx, edit)
	Expect(err).NotTo(HaveOccurred(), "start a variant of %s", e.target.Name())
	DeferCleanup(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			if b, err := v.Logs(ctx); err == nil {
				AddReportEntry(EntryLogs+" (variant)", string(b), ReportEntryVisibilityFailureOrVerbose)
			}
		}
		Expect(v.Stop(ctx)).To(Succeed(), "stop the variant")
	})
	e.target = v
}
