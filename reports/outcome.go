package reports

import (
	"errors"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/histogram"
)

// The exit-code contract every mqttfleet command keeps (written in the
// README and docs/results.md):
//
//	0  every verdict passed
//	1  a verdict failed (or errored)
//	2  usage, configuration or scenario error: nothing was run
//	3  the target could not be reached or started
//
// Commands report the last two by returning an error that wraps ErrInvalid
// or ErrTargetUnavailable; ExitCode maps an outcome to the number.
const (
	ExitPass              = 0
	ExitFail              = 1
	ExitInvalid           = 2
	ExitTargetUnavailable = 3
)

// ErrInvalid marks bad flags, configuration or scenario files: exit 2.
var ErrInvalid = errors.New("invalid input")

// ErrTargetUnavailable marks a broker under test that could not be started
// or reached: exit 3. The run's results say so in Run.Status.
var ErrTargetUnavailable = errors.New("target unavailable")

// Status says how a run ended, whatever its verdicts.
type Status string

// Statuses of a run.
const (
	// StatusCompleted: the run did all it was asked to.
	StatusCompleted Status = "completed"
	// StatusInterrupted: stopped early (Ctrl-C, SIGTERM); the results are
	// partial and the verdicts cover what ran.
	StatusInterrupted Status = "interrupted"
	// StatusTargetUnavailable: the target could not be started or reached;
	// nothing it should have been judged on happened.
	StatusTargetUnavailable Status = "target_unavailable"
)

// ExitCode maps a command's outcome to the exit code of the contract above.
// err is what the command returned; res is the results it wrote, or nil.
func ExitCode(res *Results, err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		return ExitInvalid
	case errors.Is(err, ErrTargetUnavailable):
		return ExitTargetUnavailable
	case err != nil:
		return ExitFail
	case res == nil:
		return ExitPass
	case res.Run.Status == StatusTargetUnavailable:
		return ExitTargetUnavailable
	case res.Run.Status == StatusInterrupted:
		return ExitFail // partial results are never a pass
	}
	switch res.Verdict() {
	case Fail, Error:
		return ExitFail
	}
	return ExitPass
}

// StepWindow is one step of a scenario's timeline, for the markers on the
// report's time charts: a span from Start to End, or a tick when End is
// zero or equal to Start (an instant step such as a reset).
type StepWindow struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitempty"`
	Shard string    `json:"shard,omitempty"` // set by Merge
}

// Group is one device group's own totals: the same accounting as the run's
// counters, restricted to the group's devices.
type Group struct {
	Devices  int              `json:"devices"`
	Counters map[string]int64 `json:"counters"`
	// E2E is the group's end-to-end latency, publish to receipt, in ns buckets.
	E2E *histogram.Histogram `json:"e2e_latency,omitempty"`
}

// Timeline is the event history of one device (or client) that an
// assertion failed on: the report's drill-down. Events are bounded by
// MaxTimelineEvents; Omitted counts the rest.
type Timeline struct {
	Device string `json:"device"`
	// Assertions names the failed assertions whose evidence named the device.
	Assertions []string       `json:"assertions,omitempty"`
	Events     []events.Event `json:"events"`
	Omitted    int            `json:"omitted,omitempty"`
}

// Bounds on drill-down timelines, so a failed run of 10,000 devices stays a
// file a browser opens.
const (
	MaxTimelines      = 20
	MaxTimelineEvents = 200
)
