package payload

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// Body appends one message body after the header. Implementations keep
// per-device state (a random walk's position) so each device owns one.
type Body interface {
	Append(dst []byte, seq uint64, now time.Time) []byte
}

// NewBody returns the body generator a validated profile payload describes,
// for one device. rng is the device's own seeded source; vars are its
// template variables.
func NewBody(p profile.Payload, header bool, rng *rand.Rand, vars profile.Vars) Body {
	switch p.Kind {
	case profile.PayloadTemplate:
		return &templateBody{t: profile.MustCompile("payload", p.Template), vars: vars}
	case profile.PayloadRandomWalk:
		return &walkBody{v: p.Start, step: p.Step, min: p.Min, max: p.Max, rng: rng, device: vars.Index}
	case profile.PayloadSine:
		return &sineBody{amp: p.Amplitude, off: p.Offset, period: p.Period.Seconds(),
			phase: rng.Float64() * 2 * math.Pi, device: vars.Index}
	}
	n := p.Size
	if header {
		n -= HeaderSize
	}
	return fixedBody(max(n, 0))
}

// fixedBody pads to a fixed total size with a repeating pattern (not zeros,
// so compression on the path does not flatter the numbers).
type fixedBody int

func (f fixedBody) Append(dst []byte, _ uint64, _ time.Time) []byte {
	for i := 0; i < int(f); i++ {
		dst = append(dst, byte('a'+i%26))
	}
	return dst
}

type templateBody struct {
	t    *profile.Template
	vars profile.Vars
}

func (t *templateBody) Append(dst []byte, seq uint64, now time.Time) []byte {
	v := t.vars
	v.Seq, v.Time = seq, now
	return append(dst, t.t.Render(v)...)
}

// walkBody is a sensor reading that moves by at most step per message and
// reflects off its bounds.
type walkBody struct {
	v, step, min, max float64
	rng               *rand.Rand
	device            int
}

func (w *walkBody) Append(dst []byte, seq uint64, now time.Time) []byte {
	w.v += (w.rng.Float64()*2 - 1) * w.step
	if w.v > w.max {
		w.v = w.max - (w.v - w.max)
	}
	if w.v < w.min {
		w.v = w.min + (w.min - w.v)
	}
	w.v = math.Min(math.Max(w.v, w.min), w.max)
	return appendReading(dst, w.device, seq, now, w.v)
}

// sineBody is a periodic reading; each device has its own phase.
type sineBody struct {
	amp, off, period, phase float64
	device                  int
}

func (s *sineBody) Append(dst []byte, seq uint64, now time.Time) []byte {
	t := float64(now.UnixNano()) / 1e9
	v := s.off + s.amp*math.Sin(2*math.Pi*t/s.period+s.phase)
	return appendReading(dst, s.device, seq, now, v)
}

// appendReading writes {"device":N,"seq":N,"ts":unix_ms,"value":x} without
// reflection: this runs for every message of the fleet.
func appendReading(dst []byte, device int, seq uint64, now time.Time, v float64) []byte {
	dst = append(dst, `{"device":`...)
	dst = strconv.AppendInt(dst, int64(device), 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, now.UnixMilli(), 10)
	dst = append(dst, `,"value":`...)
	dst = strconv.AppendFloat(dst, math.Round(v*1000)/1000, 'f', -1, 64)
	return append(dst, '}')
}

// BodyOf returns the part of a payload after its header, or the whole payload
// when it has none.
func BodyOf(b []byte) []byte {
	if _, err := ParseHeader(b); err == nil {
		return b[HeaderSize:]
	}
	return b
}
