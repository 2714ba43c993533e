package netem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kind names a fault.
type Kind string

// The faults a Proxy can apply. Each file named after a kind holds its behaviour.
const (
	// Latency delays every chunk by Latency plus a Jitter sample drawn from Distribution.
	Latency Kind = "latency"
	// Bandwidth paces forwarding to Rate bytes per second.
	Bandwidth Kind = "bandwidth"
	// Blackhole keeps reading and discards: no bytes and no FIN pass, neither socket closes.
	Blackhole Kind = "blackhole"
	// Stall stops reading, so the sender's kernel buffers fill and its writes block.
	Stall Kind = "stall"
	// Reset closes both sockets with an RST (SO_LINGER 0).
	Reset Kind = "reset"
	// Close closes both sockets with a FIN.
	Close Kind = "close"
	// CloseAfter forwards exactly Bytes more bytes, then closes both sockets with a FIN.
	CloseAfter Kind = "close_after"
	// Slice splits every write into ChunkSize-byte pieces with ChunkDelay between them.
	Slice Kind = "slice"
)

// oneShot reports whether the kind acts once on a link rather than changing how it forwards.
func (k Kind) oneShot() bool { return k == Reset || k == Close }

// timing reports whether the kind needs the delivery goroutine (it holds bytes for a while).
func (k Kind) timing() bool { return k == Latency || k == Bandwidth || k == Slice }

// Direction says which way of a link a fault acts on.
type Direction string

// Directions. The empty Direction means Both.
const (
	Upstream   Direction = "upstream"   // device -> broker (bytes the accepted connection sends)
	Downstream Direction = "downstream" // broker -> device
	Both       Direction = "both"
)

// has reports whether d covers the single direction one.
func (d Direction) has(one Direction) bool { return d == "" || d == Both || d == one }

// Distribution is the shape of latency jitter.
type Distribution string

// Jitter distributions. The empty Distribution means Uniform.
const (
	Uniform Distribution = "uniform" // Latency ± Jitter, every value equally likely
	Normal  Distribution = "normal"  // Latency + N(0, Jitter²), clamped at 0
)

// Fault is one misbehaviour, as a value. Which fields matter depends on Kind;
// Share and the schedule (Start, Duration, Every) apply to every kind.
type Fault struct {
	Kind      Kind      `json:"kind"`
	Direction Direction `json:"direction,omitempty"`

	Latency      time.Duration `json:"latency,omitempty"`
	Jitter       time.Duration `json:"jitter,omitempty"`
	Distribution Distribution  `json:"distribution,omitempty"`
	Rate         int64         `json:"rate,omitempty"`        // Bandwidth: bytes per second
	Bytes        int64         `json:"bytes,omitempty"`       // CloseAfter: bytes still forwarded per direction
	ChunkSize    int           `json:"chunk_size,omitempty"`  // Slice: bytes per piece
	ChunkDelay   time.Duration `json:"chunk_delay,omitempty"` // Slice: pause after each piece

	// Share is the fraction of matching links affected, chosen by the proxy
	// seed, the fault ID and each link's group and ordinal; 0 means all.
	Share float64 `json:"share,omitempty"`

	Start    time.Duration `json:"start,omitempty"`    // delay from Apply to the first activation
	Duration time.Duration `json:"duration,omitempty"` // how long each activation lasts; 0 = until removed
	Every    time.Duration `json:"every,omitempty"`    // period of activations; 0 = once
}

// Validate reports the first field that makes f unusable.
func (f Fault) Validate() error {
	switch f.Kind {
	case Latency:
		if f.Latency < 0 || f.Jitter < 0 || (f.Latency == 0 && f.Jitter == 0) {
			return errors.New("latency: need latency >= 0, jitter >= 0, not both 0")
		}
		switch f.Distribution {
		case "", Uniform, Normal:
		default:
			return fmt.Errorf("latency: unknown distribution %q", f.Distribution)
		}
	case Bandwidth:
		if f.Rate <= 0 {
			return errors.New("bandwidth: rate must be > 0 bytes/s")
		}
	case CloseAfter:
		if f.Bytes < 0 {
			return errors.New("close_after: bytes must be >= 0")
		}
	case Slice:
		if f.ChunkSize <= 0 || f.ChunkDelay < 0 {
			return errors.New("slice: need chunk_size > 0 and chunk_delay >= 0")
		}
	case Blackhole, Stall, Reset, Close:
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	switch f.Direction {
	case "", Upstream, Downstream, Both:
	default:
		return fmt.Errorf("unknown direction %q", f.Direction)
	}
	if f.Share < 0 || f.Share > 1 {
		return fmt.Errorf("share %v outside [0, 1]", f.Share)
	}
	if f.Start < 0 || f.Duration < 0 || f.Every < 0 {
		return errors.New("start, duration and every must be >= 0")
	}
	if f.Every > 0 && (f.Duration == 0 || f.Duration >= f.Every) {
		return errors.New("every needs 0 < duration < every")
	}
	return nil
}

// scheduled reports whether f runs on a timer rather than once at Apply.
func (f Fault) scheduled() bool { return f.Start > 0 || f.Duration > 0 || f.Every > 0 }

// dir returns the direction with the empty value spelled out.
func (f Fault) dir() Direction {
	if f.Direction == "" {
		return Both
	}
	return f.Direction
}

// String is a compact form for logs and event details.
func (f Fault) String() string {
	s := string(f.Kind) + " " + string(f.dir())
	switch f.Kind {
	case Latency:
		s += fmt.Sprintf(" latency=%s jitter=%s", f.Latency, f.Jitter)
		if f.Distribution != "" {
			s += " dist=" + string(f.Distribution)
		}
	case Bandwidth:
		s += fmt.Sprintf(" rate=%dB/s", f.Rate)
	case CloseAfter:
		s += fmt.Sprintf(" bytes=%d", f.Bytes)
	case Slice:
		s += fmt.Sprintf(" chunk=%dB delay=%s", f.ChunkSize, f.ChunkDelay)
	}
	if f.Share > 0 && f.Share < 1 {
		s += fmt.Sprintf(" share=%g", f.Share)
	}
	if f.scheduled() {
		s += fmt.Sprintf(" start=%s duration=%s every=%s", f.Start, f.Duration, f.Every)
	}
	return s
}

// faultJSON is Fault with durations as Go duration strings ("50ms"), the form
// people type into curl.
type faultJSON struct {
	Kind         Kind         `json:"kind"`
	Direction    Direction    `json:"direction,omitempty"`
	Latency      string       `json:"latency,omitempty"`
	Jitter       string       `json:"jitter,omitempty"`
	Distribution Distribution `json:"distribution,omitempty"`
	Rate         int64        `json:"rate,omitempty"`
	Bytes        int64        `json:"bytes,omitempty"`
	ChunkSize    int          `json:"chunk_size,omitempty"`
	ChunkDelay   string       `json:"chunk_delay,omitempty"`
	Share        float64      `json:"share,omitempty"`
	Start        string       `json:"start,omitempty"`
	Duration     string       `json:"duration,omitempty"`
	Every        string       `json:"every,omitempty"`
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// MarshalJSON writes durations as strings such as "50ms".
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultJSON{
		Kind: f.Kind, Direction: f.Direction, Latency: durString(f.Latency), Jitter: durString(f.Jitter),
		Distribution: f.Distribution, Rate: f.Rate, Bytes: f.Bytes, ChunkSize: f.ChunkSize,
		ChunkDelay: durString(f.ChunkDelay), Share: f.Share, Start: durString(f.Start),
		Duration: durString(f.Duration), Every: durString(f.Every),
	})
}

// UnmarshalJSON reads durations as strings such as "50ms".
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a typo in a field name must not silently mean 0
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("decode fault: %w", err)
	}
	out := Fault{Kind: j.Kind, Direction: j.Direction, Distribution: j.Distribution, Rate: j.Rate,
		Bytes: j.Bytes, ChunkSize: j.ChunkSize, Share: j.Share}
	for _, d := range []struct {
		name string
		s    string
		to   *time.Duration
	}{
		{"latency", j.Latency, &out.Latency}, {"jitter", j.Jitter, &out.Jitter},
		{"chunk_delay", j.ChunkDelay, &out.ChunkDelay}, {"start", j.Start, &out.Start},
		{"duration", j.Duration, &out.Duration}, {"every", j.Every, &out.Every},
	} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("decode fault %s: %w", d.name, err)
		}
		*d.to = v
	}
	*f = out
	return nil
}
