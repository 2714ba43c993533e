package profile

import (
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/internal/yamlpos"
)

// HeaderSize is the size of the measurement header at the start of every
// payload (see package payload, which checks that the two agree).
const HeaderSize = 28

// Validate checks a profile built in Go and fills in defaults. Parse and
// Load call it for YAML profiles.
func (p *Profile) Validate() error { return p.validate(nil) }

// checker collects the first error with its position.
type checker struct {
	pos *yamlpos.Index
	err *Error
}

func (c *checker) fail(field, format string, args ...any) {
	if c.err != nil {
		return
	}
	line, col := c.pos.At(field)
	c.err = &Error{Field: field, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (c *checker) qos(field string, q int) {
	if q < 0 || q > 2 {
		c.fail(field, "QoS must be 0, 1 or 2, not %d", q)
	}
}

func (c *checker) template(field, text string) {
	if _, err := Compile(field, text); err != nil {
		c.fail(field, "%v", err)
	}
}

func (c *checker) nonNegative(field string, d time.Duration) {
	if d < 0 {
		c.fail(field, "must not be negative, got %s", d)
	}
}

func (p *Profile) validate(pos *yamlpos.Index) error {
	c := &checker{pos: pos}
	c.nonNegative("duration", p.Duration)
	c.nonNegative("drain", p.Drain)
	if p.Drain == 0 {
		p.Drain = DefaultDrain
	}
	if p.MaxConnecting < 0 {
		c.fail("max_connecting", "must not be negative, got %d", p.MaxConnecting)
	}
	if p.MaxConnecting == 0 {
		p.MaxConnecting = DefaultMaxConnecting
	}
	if len(p.Groups) == 0 {
		c.fail("groups", "a profile needs at least one device group")
	}
	names := map[string]bool{}
	total := 0
	for i := range p.Groups {
		g := &p.Groups[i]
		f := fmt.Sprintf("groups[%d]", i)
		if g.Name == "" {
			g.Name = fmt.Sprintf("group%d", i)
		}
		if names[g.Name] {
			c.fail(f+".name", "group name %q is used twice", g.Name)
		}
		names[g.Name] = true
		g.validate(c, f)
		total += g.Count
		if total > math.MaxInt32 {
			c.fail(f+".count", "fleet of more than %d devices", math.MaxInt32)
		}
	}
	if c.err != nil {
		return c.err
	}
	return nil
}

func (g *Group) validate(c *checker, f string) {
	if g.Count <= 0 {
		c.fail(f+".count", "must be at least 1, got %d", g.Count)
	}
	if g.ClientID == "" {
		g.ClientID = "{{.Group}}-{{.Index}}"
	}
	c.template(f+".client_id", g.ClientID)
	c.template(f+".username", g.Username)
	c.template(f+".password", g.Password)
	switch g.Protocol {
	case 0:
		g.Protocol = 4
	case 3, 4, 5:
	default:
		c.fail(f+".protocol", "protocol level must be 3, 4 (MQTT 3.1.1) or 5, not %d", g.Protocol)
	}
	if g.KeepAlive != nil && (*g.KeepAlive < 0 || *g.KeepAlive > 65535*time.Second) {
		c.fail(f+".keepalive", "must be between 0 and 65535s, got %s", *g.KeepAlive)
	}
	if w := g.Will; w != nil {
		if w.Topic == "" {
			c.fail(f+".will.topic", "a will needs a topic")
		} else if strings.ContainsAny(w.Topic, "+#") {
			c.fail(f+".will.topic", "a will topic must not contain wildcards: %q", w.Topic)
		}
		c.template(f+".will.topic", w.Topic)
		c.template(f+".will.payload", w.Payload)
		c.qos(f+".will.qos", w.QoS)
	}
	for j, s := range g.Subscriptions {
		sf := fmt.Sprintf("%s.subscriptions[%d]", f, j)
		if s.Filter == "" {
			c.fail(sf+".filter", "a subscription needs a filter")
		} else if err := CheckFilter(s.Filter); err != nil {
			c.fail(sf+".filter", "%v", err)
		}
		c.template(sf+".filter", s.Filter)
		c.qos(sf+".qos", s.QoS)
	}
	if g.Publish != nil {
		g.Publish.validate(c, f+".publish")
	}
	g.validateV5(c, f)
	g.Lifecycle.validate(c, f+".lifecycle")
	g.Reconnect.validate(c, f+".reconnect")
	switch g.Transport.Kind {
	case "":
		g.Transport.Kind = TransportTCP
	case TransportTCP, TransportTLS:
	case TransportWS, TransportWSS:
		if g.Transport.Path == "" {
			g.Transport.Path = DefaultWSPath
		}
	default:
		c.fail(f+".transport.kind", "transport must be tcp, ws, tls or wss, not %q", g.Transport.Kind)
	}
	for j, a := range g.SourceAddresses {
		if net.ParseIP(a) == nil {
			c.fail(fmt.Sprintf("%s.source_addresses[%d]", f, j), "%q is not an IP address", a)
		}
	}
	if n := g.Netem; n != nil {
		if n.Proxy != "" {
			if _, _, err := net.SplitHostPort(n.Proxy); err != nil {
				c.fail(f+".netem.proxy", "proxy must be host:port: %v", err)
			}
		}
		if n.Namespace != "" {
			c.fail(f+".netem.namespace", "the simulator does not enter network namespaces: run it inside %q with ip netns exec", n.Namespace)
		}
		if n.Group == "" {
			n.Group = g.Name
		}
	}
}

// parseSessionExpiry reads a session_expiry value: empty (none sent),
// "never" or a duration in whole seconds below "never".
func parseSessionExpiry(s string) (uint32, bool, error) {
	switch strings.TrimSpace(s) {
	case "":
		return 0, false, nil
	case "never":
		return SessionExpiryNever, true, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, false, fmt.Errorf("must be a duration such as 10m or 0s, or never, not %q", s)
	}
	if d < 0 || d%time.Second != 0 || d/time.Second >= SessionExpiryNever {
		return 0, false, fmt.Errorf("must be a whole number of seconds from 0s to 4294967294s (or never), not %s", s)
	}
	return uint32(d / time.Second), true, nil
}

// validateV5 checks the MQTT 5 knobs: each is refused on a group that does
// not speak MQTT 5, and the PUBLISH ones on a group that does not publish.
func (g *Group) validateV5(c *checker, f string) {
	set := []struct {
		field string
		on    bool
	}{
		{"session_expiry", g.SessionExpiry != ""}, {"receive_maximum", g.ReceiveMaximum != 0},
		{"user_properties", len(g.UserProperties) > 0}, {"message_expiry", g.MessageExpiry != 0},
		{"response_topic", g.ResponseTopic != ""}, {"content_type", g.ContentType != ""},
		{"topic_alias", g.TopicAlias},
	}
	if g.Protocol != 5 {
		for _, k := range set {
			if k.on {
				c.fail(f+"."+k.field, "%s is an MQTT 5 property: set protocol: 5 on the group (it is %d)", k.field, g.Protocol)
			}
		}
		return
	}
	if _, _, err := parseSessionExpiry(g.SessionExpiry); err != nil {
		c.fail(f+".session_expiry", "%v", err)
	}
	if g.ReceiveMaximum < 0 || g.ReceiveMaximum > 65535 {
		c.fail(f+".receive_maximum", "must be between 1 and 65535, got %d", g.ReceiveMaximum)
	}
	for j, u := range g.UserProperties {
		uf := fmt.Sprintf("%s.user_properties[%d]", f, j)
		if u.Name == "" {
			c.fail(uf+".name", "a user property needs a name")
		}
		c.template(uf+".value", u.Value)
	}
	if g.MessageExpiry < 0 || g.MessageExpiry%time.Second != 0 || g.MessageExpiry/time.Second > math.MaxUint32 {
		c.fail(f+".message_expiry", "must be a whole number of seconds from 1s to 4294967295s, got %s", g.MessageExpiry)
	}
	if g.ResponseTopic != "" {
		if strings.ContainsAny(g.ResponseTopic, "+#") {
			c.fail(f+".response_topic", "a response topic must not contain wildcards: %q", g.ResponseTopic)
		}
		c.template(f+".response_topic", g.ResponseTopic)
	}
	if g.Publish == nil {
		for _, k := range set[3:] {
			if k.on {
				c.fail(f+"."+k.field, "%s applies to every PUBLISH: the group needs publish", k.field)
			}
		}
	}
}

func (p *Publish) validate(c *checker, f string) {
	if p.Interval <= 0 {
		c.fail(f+".interval", "must be positive, got %s", p.Interval)
	}
	if p.Jitter < 0 || (p.Interval > 0 && p.Jitter >= p.Interval) {
		c.fail(f+".jitter", "must be at least 0 and less than the interval (%s), got %s", p.Interval, p.Jitter)
	}
	c.qos(f+".qos", p.QoS)
	switch {
	case p.Topic == "":
		c.fail(f+".topic", "publishing needs a topic")
	case strings.ContainsAny(p.Topic, "+#"):
		c.fail(f+".topic", "a topic name must not contain wildcards: %q", p.Topic)
	case strings.Contains(p.Topic, ".Seq") || strings.Contains(p.Topic, ".Time"):
		c.fail(f+".topic", "the topic may depend on the device, not on the message (.Seq, .Time)")
	}
	c.template(f+".topic", p.Topic)
	if p.Count < 0 {
		c.fail(f+".count", "must not be negative, got %d", p.Count)
	}
	pl := &p.Payload
	pf := f + ".payload"
	switch pl.Kind {
	case "", PayloadFixed:
		pl.Kind = PayloadFixed
		min := HeaderSize
		if p.NoHeader {
			min = 0
		}
		if pl.Size == 0 {
			pl.Size = min
		}
		if pl.Size < min || pl.Size > 256<<20 {
			c.fail(pf+".size", "must be between %d (the header) and 256 MiB, got %d", min, pl.Size)
		}
	case PayloadTemplate:
		if pl.Template == "" {
			c.fail(pf+".template", "payload kind template needs a template")
		}
		c.template(pf+".template", pl.Template)
	case PayloadRandomWalk:
		if pl.Max == 0 && pl.Min == 0 {
			pl.Min, pl.Max = -math.MaxFloat64, math.MaxFloat64
		}
		if pl.Min >= pl.Max {
			c.fail(pf+".max", "max (%g) must be above min (%g)", pl.Max, pl.Min)
		}
		if pl.Step <= 0 {
			c.fail(pf+".step", "a random walk needs a positive step, got %g", pl.Step)
		}
	case PayloadSine:
		if pl.Period <= 0 {
			c.fail(pf+".period", "a sine needs a positive period, got %s", pl.Period)
		}
	default:
		c.fail(pf+".kind", "payload kind must be fixed, template, random_walk or sine, not %q", pl.Kind)
	}
}

func (l *Lifecycle) validate(c *checker, f string) {
	if l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) {
		c.fail(f+".rate", "must be a finite rate of at least 0 per second, got %g", l.Rate)
	}
	c.nonNegative(f+".spread", l.Spread)
	if l.Rate > 0 && l.Spread > 0 {
		c.fail(f+".spread", "give a ramp-up rate or a spread, not both")
	}
	c.nonNegative(f+".online", l.Online)
	if ch := l.Churn; ch != nil {
		if ch.Every <= 0 {
			c.fail(f+".churn.every", "must be positive, got %s", ch.Every)
		}
		if ch.Probability < 0 || ch.Probability > 1 || math.IsNaN(ch.Probability) {
			c.fail(f+".churn.probability", "must be between 0 and 1, got %g", ch.Probability)
		}
		switch ch.Mode {
		case "":
			ch.Mode = ChurnClean
		case ChurnClean, ChurnDrop:
		default:
			c.fail(f+".churn.mode", "churn mode must be clean or drop, not %q", ch.Mode)
		}
		c.nonNegative(f+".churn.offline", ch.Offline)
	}
}

func (r *Reconnect) validate(c *checker, f string) {
	switch r.Policy {
	case "":
		r.Policy = ReconnectNone
	case ReconnectNone:
	case ReconnectFixed:
		if r.Delay <= 0 {
			c.fail(f+".delay", "a fixed reconnect policy needs a positive delay, got %s", r.Delay)
		}
	case ReconnectExponential:
		if r.Delay <= 0 {
			c.fail(f+".delay", "an exponential backoff needs a positive first delay, got %s", r.Delay)
		}
		if r.Max == 0 {
			r.Max = DefaultMaxDelay
		}
		if r.Max < r.Delay {
			c.fail(f+".max", "the cap (%s) must not be below the first delay (%s)", r.Max, r.Delay)
		}
		if r.Multiplier == 0 {
			r.Multiplier = 2
		}
		if r.Multiplier < 1 {
			c.fail(f+".multiplier", "must be at least 1, got %g", r.Multiplier)
		}
	default:
		c.fail(f+".policy", "reconnect policy must be none, fixed or exponential, not %q", r.Policy)
	}
	if r.Jitter < 0 || r.Jitter >= 1 {
		c.fail(f+".jitter", "must be in [0, 1), got %g", r.Jitter)
	}
	if r.ResetAfter < 0 {
		c.fail(f+".reset_after", "must not be negative, got %s", r.ResetAfter)
	}
	if r.MaxAttempts < 0 {
		c.fail(f+".max_attempts", "must not be negative, got %d", r.MaxAttempts)
	}
}

// CheckFilter applies the topic filter rules: '#' only as the last level,
// '+' only as a whole level [MQTT-4.7.1-2] [MQTT-4.7.1-3]. Scenario files
// check their filters with it too, so both say the same thing.
func CheckFilter(f string) error {
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("'#' must be a whole level and the last one [MQTT-4.7.1-2]: %q", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("'+' must be a whole level [MQTT-4.7.1-3]: %q", f)
		}
	}
	return nil
}
