// Package reports holds the versioned results file every mqttfleet run
// writes, the Collector that fills it from an event stream, the merge of
// shard results, and the renderers people read: a self-contained HTML page,
// JUnit XML for CI, and a Markdown summary.
//
//	events ──> Collector ──> Results ──> Write(results.json)
//	                            │            │
//	          assertions, ──────┘            └──> Read ──> Merge ──> HTML / JUnit / Markdown
//	          conformance matrix
//
// The file format is documented field by field in docs/results.md.
package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/histogram"
)

// SchemaVersion is the version of the results file this package writes and
// the newest it reads. Adding a field keeps the version; renaming, removing
// or changing the meaning of one bumps it.
const SchemaVersion = 1

// MaxEvidence bounds the events kept as evidence for one assertion.
const MaxEvidence = 20

// Kind says what produced a results file.
type Kind string

// Kinds of results file.
const (
	KindScenario    Kind = "scenario"
	KindSimulate    Kind = "simulate"
	KindConformance Kind = "conformance"
	KindMerged      Kind = "merged"
	KindNetem       Kind = "netem" // the standalone fault proxy: its links and fault windows
)

// Results is the content of one results file.
type Results struct {
	SchemaVersion int              `json:"schema_version"`
	Kind          Kind             `json:"kind"`
	Run           Run              `json:"run"`
	Counters      map[string]int64 `json:"counters"`
	// Histograms by name: connect_latency, publish_ack_latency, e2e_latency,
	// subscribe_latency, ping_rtt (fleet view).
	Histograms map[string]*histogram.Histogram `json:"histograms"`
	Series     *Series                         `json:"series,omitempty"`
	// Disconnects counts connections ended, by cause, as the fleet saw them.
	Disconnects map[string]int64 `json:"disconnects"`
	// BrokerDisconnects is the broker's own view, when its events were in the stream.
	BrokerDisconnects map[string]int64 `json:"broker_disconnects,omitempty"`
	Faults            []FaultWindow    `json:"faults"`
	Assertions        []Assertion      `json:"assertions"`
	Conformance       *Matrix          `json:"conformance,omitempty"`
	Events            EventsSummary    `json:"events"`
	// Steps are the scenario timeline's steps, for chart markers.
	Steps []StepWindow `json:"steps,omitempty"`
	// Groups holds each device group's own totals, by group name.
	Groups map[string]*Group `json:"groups,omitempty"`
	// Timelines are the event histories of the devices that failed an
	// assertion (bounded by MaxTimelines), for the report's drill-down.
	Timelines []Timeline `json:"timelines,omitempty"`
}

// Run is the metadata of a run.
type Run struct {
	// ID identifies one run of a fleet; every shard of that run carries the
	// same ID, so Merge can key shards by (ID, shard index).
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// Status says how the run ended; empty in files older than this field
	// reads as completed.
	Status Status `json:"status,omitempty"`
	// StatusReason says why a run did not complete (the target's error,
	// the signal that stopped it).
	StatusReason  string  `json:"status_reason,omitempty"`
	Target        string  `json:"target"`
	TargetVersion string  `json:"target_version,omitempty"`
	Version       string  `json:"mqttfleet_version"`
	Seed          int64   `json:"seed"`
	Shard         Shard   `json:"shard"`
	Shards        []Shard `json:"shards,omitempty"` // merged files: the parts
	// MissingShards lists, in a merged file, the shard indexes of the run
	// that no part covered.
	MissingShards []int     `json:"missing_shards,omitempty"`
	Devices       int       `json:"devices,omitempty"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Command       []string  `json:"command,omitempty"`
	Host          string    `json:"host,omitempty"`
}

// Duration returns End-Start, or 0 when either is unset.
func (r Run) Duration() time.Duration {
	if r.Start.IsZero() || r.End.IsZero() {
		return 0
	}
	return r.End.Sub(r.Start)
}

// Shard says which part of a sharded fleet a run covered: Index of Count
// (0-based). An unsharded run is 0 of 1.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// String formats a shard as "i/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// FaultWindow is one fault netem held on a link or group of links.
type FaultWindow struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Open      bool      `json:"open,omitempty"` // never removed: End is the end of the run
	Target    string    `json:"target"`         // the link, or the group when the fault hit a group
	Link      string    `json:"link,omitempty"`
	Group     string    `json:"group,omitempty"`
	Kind      string    `json:"kind"` // the fault: half_open, latency, rst, ...
	Direction string    `json:"direction,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Shard     string    `json:"shard,omitempty"` // set by Merge
}

// Verdict is the outcome of an assertion.
type Verdict string

// Verdicts.
const (
	Pass    Verdict = "pass"
	Fail    Verdict = "fail"
	Error   Verdict = "error" // the check itself could not run
	Skipped Verdict = "skipped"
	// Deviation: the check missed on a target whose known deviation (one
	// declared in docs/deviations.md for a statement the check cites)
	// explains the miss. Neither pass nor fail: the run does not fail on it
	// unless it is strict, and then the verdict is Fail.
	Deviation Verdict = "deviation"
)

// KnownDeviation is the declared deviation behind a Deviation verdict, or
// behind a Fail in a strict run.
type KnownDeviation struct {
	Statement string `json:"statement"`
	Reason    string `json:"reason"`
	Doc       string `json:"doc"`              // docs/deviations.md#anchor
	Strict    bool   `json:"strict,omitempty"` // a strict run counted it as a failure
}

// Assertion is one check of a scenario and its outcome.
type Assertion struct {
	Name       string   `json:"name"`
	Verdict    Verdict  `json:"verdict"`
	Message    string   `json:"message,omitempty"`
	Statements []string `json:"statements,omitempty"` // normative statements it checks, e.g. MQTT-3.1.4-2
	// Deviation is set when a known deviation of the target explains a miss.
	Deviation *KnownDeviation `json:"deviation,omitempty"`
	Evidence  []events.Event  `json:"evidence,omitempty"`
	// EvidenceOmitted counts matching events left out to keep Evidence bounded.
	EvidenceOmitted int           `json:"evidence_omitted,omitempty"`
	Duration        time.Duration `json:"duration_ns"`
	Shard           string        `json:"shard,omitempty"` // set by Merge
}

// AddAssertion appends a, keeping at most MaxEvidence events of evidence and
// counting the rest in EvidenceOmitted.
func (r *Results) AddAssertion(a Assertion) {
	if n := len(a.Evidence); n > MaxEvidence {
		a.EvidenceOmitted += n - MaxEvidence
		a.Evidence = append([]events.Event(nil), a.Evidence[:MaxEvidence]...)
	}
	r.Assertions = append(r.Assertions, a)
}

// EventsSummary describes the event stream without keeping all of it.
type EventsSummary struct {
	Total    int64            `json:"total"`
	ByKind   map[string]int64 `json:"by_kind"`
	BySource map[string]int64 `json:"by_source"`
	First    []events.Event   `json:"first,omitempty"`   // the first MaxFirstEvents events
	Notable  []events.Event   `json:"notable,omitempty"` // the first violations, wills, keepalive expiries, drops, takeovers
}

// Verdict is the verdict of the whole run: fail when any assertion or
// conformance cell failed, error when one errored and none failed or when the
// run did not complete (target unavailable, interrupted), else pass.
func (r *Results) Verdict() Verdict {
	v := Pass
	switch r.Run.Status {
	case StatusTargetUnavailable, StatusInterrupted:
		// The work did not (all) happen: never a pass.
		v = Error
	}
	for _, a := range r.Assertions {
		switch a.Verdict {
		case Fail:
			return Fail
		case Error:
			v = Error
		}
	}
	if r.Conformance != nil {
		for _, row := range r.Conformance.Cells {
			for _, c := range row {
				if c.Status == CellFail {
					return Fail
				}
			}
		}
	}
	return v
}

// count returns how many assertions have verdict v.
func (r *Results) count(v Verdict) int {
	n := 0
	for _, a := range r.Assertions {
		if a.Verdict == v {
			n++
		}
	}
	return n
}

// Write stores r as indented JSON at path, atomically (a reader never sees a
// half-written file). It sets SchemaVersion.
func (r *Results) Write(path string) error {
	r.SchemaVersion = SchemaVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results for %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".results-*.json")
	if err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	// CreateTemp makes the file private; a results file is a CI artifact.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write results %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write results %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	return nil
}

// Read loads a results file. It rejects files without a schema version and
// files written by a newer mqttfleet, naming the file.
func Read(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	r, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("read results %s: %w", path, err)
	}
	return r, nil
}

// Decode parses the bytes of a results file; see Read.
func Decode(b []byte) (*Results, error) {
	var head struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("not a results file: %w", err)
	}
	switch {
	case head.SchemaVersion == nil || *head.SchemaVersion < 1:
		return nil, fmt.Errorf("not a mqttfleet results file: no schema_version")
	case *head.SchemaVersion > SchemaVersion:
		return nil, fmt.Errorf("schema version %d is newer than this mqttfleet reads (%d): upgrade mqttfleet", *head.SchemaVersion, SchemaVersion)
	}
	var r Results
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode results: %w", err)
	}
	if r.Series != nil {
		if err := r.Series.check(); err != nil {
			return nil, err
		}
	}
	return &r, nil
}
