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
	// Loss drops whole MQTT packets (raw reads for other traffic): each with
	// Probability, or in bursts by the Gilbert-Elliott model (P, R, LossBad, LossGood).
	Loss Kind = "loss"
	// Duplicate sends whole MQTT packets (raw reads for other traffic) twice, each with Probability.
	Duplicate Kind = "duplicate"
	// Reorder holds up to Window packets (at most Hold) and sends them in a seeded random order.
	Reorder Kind = "reorder"
	// NATIdle forgets a link silent in both directions for longer than Idle:
	// from then on nothing passes either way and no FIN or RST is sent.
	NATIdle Kind = "nat_idle"
	// NATRebind re-originates the broker side of a link: the broker sees a
	// new TCP connection from a new source port, the device keeps its socket.
	NATRebind Kind = "nat_rebind"
)

// DefaultHold is how long Reorder holds packets when Hold is not given, so a
// quiet link never keeps a packet back for long.
const DefaultHold = 50 * time.Millisecond

// packetTypes are the MQTT control packet names a Fault's Packets may list, by type number.
var packetTypes = [16]string{"", "connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp",
	"subscribe", "suback", "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect", "auth"}

// PacketTypes lists the names Fault.Packets accepts.
func PacketTypes() []string { return append([]string(nil), packetTypes[1:]...) }

// packetMask turns packet names into a bit per MQTT packet type; 0 means every packet.
func packetMask(names []string) (uint16, error) {
	var m uint16
	for _, n := range names {
		found := false
		for t, pn := range packetTypes {
			if t > 0 && pn == n {
				m |= 1 << t
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown MQTT packet type %q (known: %v)", n, PacketTypes())
		}
	}
	return m, nil
}

// oneShot reports whether the kind acts once on a link rather than changing how it forwards.
func (k Kind) oneShot() bool { return k == Reset || k == Close || k == NATRebind }

// timing reports whether the kind needs the delivery goroutine (it holds bytes for a while).
func (k Kind) timing() bool { return k == Latency || k == Bandwidth || k == Slice || k == Reorder }

// packets reports whether the kind acts on whole packets, so the pipe frames MQTT.
func (k Kind) packets() bool { return k == Loss || k == Duplicate || k == Reorder }

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
	Burst        int64         `json:"burst,omitempty"`       // Bandwidth: token bucket size in bytes; 0 = no bursts

	// Probability is the chance per packet of a Loss (random loss) or a Duplicate.
	Probability float64 `json:"probability,omitempty"`
	// Gilbert-Elliott loss: P is the chance per packet to go from the good
	// state to the bad one, R back; LossBad and LossGood are the loss
	// probabilities in each state (both 0 means 1 and 0: plain Gilbert).
	P        float64 `json:"p,omitempty"`
	R        float64 `json:"r,omitempty"`
	LossBad  float64 `json:"loss_bad,omitempty"`
	LossGood float64 `json:"loss_good,omitempty"`
	// Packets limits Loss, Duplicate and Reorder to these MQTT packet types
	// ("publish", "puback", ...); empty means every packet.
	Packets []string `json:"packets,omitempty"`
	// Window is how many packets Reorder holds and shuffles; Hold is the
	// longest it holds one (0 = DefaultHold).
	Window int           `json:"window,omitempty"`
	Hold   time.Duration `json:"hold,omitempty"`
	// Idle is the NATIdle timeout.
	Idle time.Duration `json:"idle,omitempty"`

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
	case Loss:
		if f.P > 0 {
			if f.P > 1 || f.R <= 0 || f.R > 1 || f.LossBad < 0 || f.LossBad > 1 || f.LossGood < 0 || f.LossGood > 1 || f.Probability != 0 {
				return errors.New("loss: Gilbert-Elliott needs 0 < p <= 1, 0 < r <= 1, loss_bad and loss_good in [0, 1], and no probability")
			}
		} else if f.Probability <= 0 || f.Probability > 1 {
			return errors.New("loss: need 0 < probability <= 1, or p and r for Gilbert-Elliott")
		}
	case Duplicate:
		if f.Probability <= 0 || f.Probability > 1 {
			return errors.New("duplicate: need 0 < probability <= 1")
		}
	case Reorder:
		if f.Window < 2 || f.Hold < 0 {
			return errors.New("reorder: need window >= 2 packets and hold >= 0")
		}
	case NATIdle:
		if f.Idle <= 0 {
			return errors.New("nat_idle: need idle > 0")
		}
	case Blackhole, Stall, Reset, Close, NATRebind:
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	switch f.Direction {
	case "", Upstream, Downstream, Both:
	default:
		return fmt.Errorf("unknown direction %q", f.Direction)
	}
	if (f.Kind == NATIdle || f.Kind == NATRebind) && f.dir() != Both {
		return fmt.Errorf("%s acts on the whole link: direction must be both", f.Kind)
	}
	if f.Burst < 0 {
		return errors.New("bandwidth: burst must be >= 0")
	}
	if _, err := packetMask(f.Packets); err != nil {
		return fmt.Errorf("%s: %w", f.Kind, err)
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
		if f.Burst > 0 {
			s += fmt.Sprintf(" burst=%dB", f.Burst)
		}
	case Loss:
		if f.P > 0 {
			s += fmt.Sprintf(" p=%g r=%g loss_bad=%g loss_good=%g", f.P, f.R, f.LossBad, f.LossGood)
		} else {
			s += fmt.Sprintf(" probability=%g", f.Probability)
		}
	case Duplicate:
		s += fmt.Sprintf(" probability=%g", f.Probability)
	case Reorder:
		s += fmt.Sprintf(" window=%d hold=%s", f.Window, f.Hold)
	case NATIdle:
		s += fmt.Sprintf(" idle=%s", f.Idle)
	case CloseAfter:
		s += fmt.Sprintf(" bytes=%d", f.Bytes)
	case Slice:
		s += fmt.Sprintf(" chunk=%dB delay=%s", f.ChunkSize, f.ChunkDelay)
	}
	if len(f.Packets) > 0 {
		s += fmt.Sprintf(" packets=%v", f.Packets)
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
	Burst        int64        `json:"burst,omitempty"`
	Probability  float64      `json:"probability,omitempty"`
	P            float64      `json:"p,omitempty"`
	R            float64      `json:"r,omitempty"`
	LossBad      float64      `json:"loss_bad,omitempty"`
	LossGood     float64      `json:"loss_good,omitempty"`
	Packets      []string     `json:"packets,omitempty"`
	Window       int          `json:"window,omitempty"`
	Hold         string       `json:"hold,omitempty"`
	Idle         string       `json:"idle,omitempty"`
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
		Burst: f.Burst, Probability: f.Probability, P: f.P, R: f.R, LossBad: f.LossBad, LossGood: f.LossGood,
		Packets: f.Packets, Window: f.Window, Hold: durString(f.Hold), Idle: durString(f.Idle),
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
		Bytes: j.Bytes, ChunkSize: j.ChunkSize, Share: j.Share,
		Burst: j.Burst, Probability: j.Probability, P: j.P, R: j.R, LossBad: j.LossBad, LossGood: j.LossGood,
		Packets: j.Packets, Window: j.Window}
	for _, d := range []struct {
		name string
		s    string
		to   *time.Duration
	}{
		{"latency", j.Latency, &out.Latency}, {"jitter", j.Jitter, &out.Jitter},
		{"chunk_delay", j.ChunkDelay, &out.ChunkDelay}, {"start", j.Start, &out.Start},
		{"duration", j.Duration, &out.Duration}, {"every", j.Every, &out.Every},
		{"hold", j.Hold, &out.Hold}, {"idle", j.Idle, &out.Idle},
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
