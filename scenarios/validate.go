package scenarios

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// Defaults applied by validation.
const (
	DefaultTimeout     = 5 * time.Minute
	DefaultDrain       = time.Second
	DefaultWaitTimeout = time.Minute
)

// Step actions.
const (
	DoUp        = "up"
	DoDown      = "down"
	DoBlackhole = "blackhole"
	DoStall     = "stall"
	DoReset     = "reset"
	DoClose     = "close"
	DoDelay     = "delay"
	DoBandwidth = "bandwidth"
	DoSlice     = "slice"
	DoRestore   = "restore"
	DoConnect   = "connect"
	DoDisconn   = "disconnect"
	DoDrop      = "drop"
	DoViolate   = "violate"
	DoPublish   = "publish"
	DoSubscribe = "subscribe"
	DoWait      = "wait"
	DoRestart   = "restart_broker"
	DoStopB     = "stop_broker"
	DoStartB    = "start_broker"
	DoMark      = "mark"
)

// timing fields every step may have.
var timingFields = []string{"name", "at", "after", "when", "delay", "do"}

// faultFields may be given to every fault action.
var faultFields = []string{"group", "devices", "client", "direction", "share", "bridge"}

// actionFields lists, per action, the fields it reads besides the timing ones.
var actionFields = map[string][]string{
	DoUp:          {"group"},
	DoDown:        {"group"},
	DoBlackhole:   append([]string{"for"}, faultFields...),
	DoStall:       append([]string{"for"}, faultFields...),
	DoReset:       append([]string{"every", "for"}, faultFields...),
	DoClose:       append([]string{"every", "for"}, faultFields...),
	DoDelay:       append([]string{"for", "latency", "jitter"}, faultFields...),
	DoBandwidth:   append([]string{"for", "rate"}, faultFields...),
	DoSlice:       append([]string{"for", "chunk_size", "chunk_delay"}, faultFields...),
	DoRestore:     {"group", "devices", "client", "bridge"},
	DoDropPackets: {"group", "devices", "client"},
	DoConnect:     {"client"},
	DoDisconn:     {"client"},
	DoDrop:        {"client"},
	DoViolate:     {"client", "bytes", "violation"},
	DoPublish:     {"client", "topic", "payload", "qos", "retain", "count", "interval"},
	DoSubscribe:   {"client", "topic", "qos"},
	DoWait:        {"until", "count", "connected", "timeout"},
	DoRestart:     {"mode", "broker"},
	DoStopB:       {"mode", "broker"},
	DoStartB:      {"broker"},
	DoMark:        nil,
}

// Assertion kinds.
const (
	ExpectCount    = "count"
	ExpectRate     = "rate"
	ExpectLatency  = "latency"
	ExpectDelivery = "delivery"
	ExpectRecord   = "record"
	ExpectCounter  = "counter"
)

// Target kinds.
var targetKinds = []string{"inprocess", "process", "mosquitto", "emqx", "address"}

var perKeys = []string{"client", "topic", "group", "device", "link", "code"}

var capabilityNames = []string{"qos1", "qos2", "retain", "wildcards", "ws", "mqtt5", "empty-client-id",
	"persistent-sessions", "acl", "restart", "shared-subs", "sub-ids", "kill", "persistence", "bridges"}

var eventKinds = []events.Kind{events.Connect, events.ConnAck, events.Disconnect, events.Takeover,
	events.KeepaliveExpired, events.WillPublished, events.PublishSent, events.PublishReceived,
	events.PublishAcked, events.PublishFailed, events.Subscribed, events.Unsubscribed, events.Ping, events.Drop,
	events.FaultInjected, events.FaultRemoved, events.LinkOpened, events.LinkClosed, events.Violation, events.Log,
	events.SessionExpired, events.WillCancelled, events.BridgeForwarded, events.BridgeQueued}

var eventSources = []events.Source{events.SourceBroker, events.SourceClient, events.SourceNetem,
	events.SourceSimulator, events.SourceScenario}

// checker collects every problem with its position, so one pass lists
// them all (a user fixing a file should not meet its errors one by one).
type checker struct {
	pos  *positions
	errs Errors
	seen map[string]bool // field+message already reported
}

func (c *checker) fail(field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if c.seen[field+"\x00"+msg] {
		return
	}
	c.seen[field+"\x00"+msg] = true
	line, col := c.pos.at(field)
	if line == 0 && c.pos != nil {
		line, col = 1, 1 // a missing section: point at the top of the file
	}
	c.errs = append(c.errs, &Error{Field: field, Line: line, Column: col, Msg: msg})
}

// failed says whether any problem was found so far.
func (c *checker) failed() bool { return len(c.errs) > 0 }

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if a == v {
			return true
		}
	}
	return false
}

// suggest names the closest allowed value, for typos.
func suggest(v string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if d := editDistance(v, a); d < bestD {
			best, bestD = a, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (sc *Scenario) validate() error {
	c := &checker{pos: sc.pos}
	if sc.Timeout < 0 {
		c.fail("timeout", "must not be negative")
	}
	if sc.Timeout == 0 {
		sc.Timeout = DefaultTimeout
	}
	if sc.Drain == 0 {
		sc.Drain = DefaultDrain
	}
	for i, r := range sc.Requires {
		if !oneOf(r, capabilityNames) {
			c.fail(fmt.Sprintf("requires[%d]", i), "unknown capability %q%s; known: %s", r, suggest(r, capabilityNames), strings.Join(capabilityNames, ", "))
		}
	}
	sc.validateTarget(c)
	sc.validateTopology(c)
	sc.validateGroups(c)
	sc.validateClients(c)
	if len(sc.Groups) == 0 && len(sc.Clients) == 0 {
		c.fail("groups", "a scenario needs at least one device group or client")
	}
	sc.validateKafka(c)
	sc.validateSteps(c)
	if len(sc.Assertions) == 0 {
		c.fail("assertions", "a scenario needs at least one assertion: it is a test")
	}
	names := map[string]bool{}
	for i := range sc.Assertions {
		a := &sc.Assertions[i]
		f := fmt.Sprintf("assertions[%d]", i)
		if a.Name == "" {
			c.fail(f, "an assertion needs a name: it is what the results and CI show")
		} else if names[a.Name] {
			c.fail(f+".name", "assertion name %q is used twice", a.Name)
		}
		names[a.Name] = true
		sc.validateAssertion(c, a, f)
	}
	sc.validateIntegers(c)
	return c.errs.orNil()
}

func (sc *Scenario) validateTarget(c *checker) {
	t := &sc.Target
	if t.Kind == "" {
		t.Kind = "inprocess"
	}
	if !oneOf(t.Kind, targetKinds) {
		c.fail("target.kind", "unknown target %q%s; want one of %s", t.Kind, suggest(t.Kind, targetKinds), strings.Join(targetKinds, ", "))
	}
	if t.Kind == "address" && !strings.Contains(t.Address, "://") {
		c.fail("target.address", "target kind address needs a broker URL such as tcp://127.0.0.1:1883")
	}
	if t.Kind != "address" && t.Address != "" {
		c.fail("target.address", "an address is only used with kind: address")
	}
	if t.Persistence && (t.Kind == "address" || t.Kind == "inprocess") {
		c.fail("target.persistence", "persistence is turned on by the harness only for targets it runs out of process: kind process or mosquitto, not %s", t.Kind)
	}
}

func (sc *Scenario) validateGroups(c *checker) {
	if len(sc.Groups) == 0 {
		return
	}
	before := len(c.errs)
	p := profile.Profile{Name: "scenario", Broker: "127.0.0.1:1"}
	for i := range sc.Groups {
		g := &sc.Groups[i]
		f := fmt.Sprintf("groups[%d]", i)
		if g.Name == "" {
			c.fail(f, "a group needs a name: steps and assertions refer to it")
		}
		if g.Netem != nil {
			c.fail(f+".netem", "scenarios place groups behind the fault proxy with proxy: true")
		}
		switch g.Driver {
		case "":
			g.Driver = "native"
		case "native", "paho":
		default:
			c.fail(f+".driver", "driver must be native or paho, not %q", g.Driver)
		}
		p.Groups = append(p.Groups, g.Group)
	}
	if len(c.errs) > before {
		return // the profile's own checks would repeat these
	}
	if err := p.Validate(); err != nil {
		var pe *profile.Error
		if errors.As(err, &pe) {
			c.fail(pe.Field, "%s", pe.Msg)
			return
		}
		c.fail("groups", "%v", err)
		return
	}
	for i := range sc.Groups {
		sc.Groups[i].Group = p.Groups[i] // with the profile's defaults
	}
}

func (sc *Scenario) validateClients(c *checker) {
	seen := map[string]string{}
	for i := range sc.Groups {
		if n := sc.Groups[i].Name; n != "" {
			seen[n] = "group"
		}
	}
	for i := range sc.Clients {
		cl := &sc.Clients[i]
		f := fmt.Sprintf("clients[%d]", i)
		if cl.Name == "" {
			c.fail(f, "a client needs a name")
			continue
		}
		if what, ok := seen[cl.Name]; ok {
			c.fail(f+".name", "name %q is already used by a %s", cl.Name, what)
		}
		seen[cl.Name] = "client"
		if cl.ClientID == "" {
			cl.ClientID = cl.Name
		}
		switch cl.Protocol {
		case 0:
			cl.Protocol = 4
		case 3, 4, 5:
		default:
			c.fail(f+".protocol", "protocol level must be 3, 4 or 5, not %d", cl.Protocol)
		}
		if cl.KeepAlive != nil && (*cl.KeepAlive < 0 || *cl.KeepAlive > 65535*time.Second) {
			c.fail(f+".keepalive", "must be between 0 and 65535s")
		}
		if w := cl.Will; w != nil {
			if w.Topic == "" || strings.ContainsAny(w.Topic, "+#") {
				c.fail(f+".will.topic", "a will needs a topic without wildcards")
			}
			checkQoS(c, f+".will.qos", w.QoS)
			if w.Delay != 0 {
				checkV5Interval(c, f+".will.delay", w.Delay, cl.Protocol)
			}
		}
		if cl.SessionExpiry != nil {
			checkV5Interval(c, f+".session_expiry", *cl.SessionExpiry, cl.Protocol)
		}
		for j, s := range cl.Subscriptions {
			sf := fmt.Sprintf("%s.subscriptions[%d]", f, j)
			if err := checkFilter(s.Filter); err != nil {
				c.fail(sf+".filter", "%v", err)
			}
			checkQoS(c, sf+".qos", s.QoS)
		}
		if cl.Reconnect < 0 {
			c.fail(f+".reconnect", "must not be negative")
		}
	}
}

// checkV5Interval checks an MQTT 5 interval property given as a duration:
// the client speaks 5.0, and the value is whole seconds within 32 bits.
func checkV5Interval(c *checker, field string, d Duration, protocol int) {
	switch {
	case protocol != 5:
		c.fail(field, "an MQTT 5 property: add protocol: 5 to the client")
	case d < 0:
		c.fail(field, "must not be negative")
	case d.D()%time.Second != 0:
		c.fail(field, "%s is sent in whole seconds: write a whole number of seconds, such as 5s", d)
	case d.D()/time.Second > 0xFFFFFFFF:
		c.fail(field, "at most 4294967295s (an MQTT 5 interval is 32 bits of seconds)")
	}
}

func checkQoS(c *checker, field string, q int) {
	if q < 0 || q > 2 {
		c.fail(field, "QoS must be 0, 1 or 2, not %d", q)
	}
}

// checkFilter applies the topic filter rules of fleet profiles
// [MQTT-4.7.1-2] [MQTT-4.7.1-3], and refuses an empty filter [MQTT-4.7.3-1].
func checkFilter(f string) error {
	if f == "" {
		return errors.New("a topic filter must not be empty [MQTT-4.7.3-1]")
	}
	return profile.CheckFilter(f)
}

func (sc *Scenario) group(name string) *Group {
	for i := range sc.Groups {
		if sc.Groups[i].Name == name {
			return &sc.Groups[i]
		}
	}
	return nil
}

func (sc *Scenario) client(name string) *Client {
	for i := range sc.Clients {
		if sc.Clients[i].Name == name {
			return &sc.Clients[i]
		}
	}
	return nil
}

func (sc *Scenario) names(groups, clients bool) string {
	var out []string
	if groups {
		for _, g := range sc.Groups {
			out = append(out, g.Name)
		}
	}
	if clients {
		for _, cl := range sc.Clients {
			out = append(out, cl.Name)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func isFault(do string) bool {
	switch do {
	case DoBlackhole, DoStall, DoReset, DoClose, DoDelay, DoBandwidth, DoSlice:
		return true
	}
	return isLinkFault(do)
}

func (sc *Scenario) validateSteps(c *checker) {
	stepNames := map[string]int{}
	actions := make([]string, 0, len(actionFields))
	for a := range actionFields {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	for i := range sc.Steps {
		s := &sc.Steps[i]
		f := fmt.Sprintf("steps[%d]", i)
		s.line, _ = c.pos.at(f)
		if s.Do == "" {
			c.fail(f, "a step needs do: one of %s", strings.Join(actions, ", "))
			continue
		}
		allowed, ok := actionFields[s.Do]
		if !ok {
			c.fail(f+".do", "unknown action %q%s; actions: %s", s.Do, suggest(s.Do, actions), strings.Join(actions, ", "))
			continue
		}
		for _, k := range c.pos.keysUnder(f) {
			if !oneOf(k, timingFields) && !oneOf(k, allowed) {
				c.fail(f+"."+k, "do: %s does not use %s (it uses: %s)", s.Do, k, strings.Join(allowed, ", "))
			}
		}
		if s.Name == "" {
			s.Name = fmt.Sprintf("%s#%d", s.Do, i+1)
		}
		if _, dup := stepNames[s.Name]; dup {
			c.fail(f+".name", "step name %q is used twice", s.Name)
		}
		n := 0
		if s.At != nil {
			n++
			if *s.At < 0 {
				c.fail(f+".at", "must not be negative")
			}
		}
		if s.After != "" {
			n++
			if _, ok := stepNames[s.After]; !ok {
				c.fail(f+".after", "no earlier step is named %q (steps run in order; after: names one above this one)", s.After)
			}
		}
		if s.When != nil {
			n++
			sc.validateMatcher(c, s.When, f+".when")
		}
		if n > 1 {
			c.fail(f, "give at most one of at, after and when")
		}
		if s.Delay < 0 {
			c.fail(f+".delay", "must not be negative")
		}
		stepNames[s.Name] = i
		sc.validateAction(c, s, f)
	}
}

func (sc *Scenario) validateAction(c *checker, s *Step, f string) {
	if isKafkaAction(s.Do) {
		sc.validateKafkaStep(c, s, f)
		return
	}
	switch {
	case s.Do == DoUp || s.Do == DoDown:
		if sc.group(s.Group) == nil {
			c.fail(f+".group", "no group named %q (groups: %s)", s.Group, sc.names(true, false))
		}
	case isFault(s.Do) || s.Do == DoRestore || s.Do == DoDropPackets:
		sc.validateFaultTarget(c, s, f)
		switch s.Direction {
		case "", "upstream", "downstream", "both":
		default:
			c.fail(f+".direction", "direction must be upstream (device to broker), downstream or both, not %q", s.Direction)
		}
		if s.Share < 0 || s.Share > 1 {
			c.fail(f+".share", "must be between 0 and 1")
		}
		if s.For < 0 {
			c.fail(f+".for", "must not be negative")
		}
		if s.Every < 0 || (s.Every > 0 && s.Every.D() <= 10*time.Millisecond) {
			c.fail(f+".every", "must be more than 10ms")
		}
		validateLinkFault(c, s, f)
		switch s.Do {
		case DoDelay:
			if s.Latency <= 0 && s.Jitter <= 0 {
				c.fail(f+".latency", "do: delay needs a latency (and/or jitter), such as 100ms")
			}
		case DoBandwidth:
			if s.Rate <= 0 {
				c.fail(f+".rate", "do: bandwidth needs a rate in bytes per second")
			}
		case DoSlice:
			if s.ChunkSize <= 0 {
				c.fail(f+".chunk_size", "do: slice needs a chunk_size in bytes")
			}
		}
	case s.Do == DoWait:
		if (s.Until == nil) == (s.Connected == "") {
			c.fail(f, "do: wait needs exactly one of until (an event matcher) and connected (a group or client name)")
		}
		if s.Until != nil {
			sc.validateMatcher(c, s.Until, f+".until")
		}
		if s.Connected != "" && sc.group(s.Connected) == nil && sc.client(s.Connected) == nil {
			c.fail(f+".connected", "no group or client named %q (%s)", s.Connected, sc.names(true, true))
		}
		if s.Count < 0 {
			c.fail(f+".count", "must not be negative")
		}
		if s.Timeout < 0 {
			c.fail(f+".timeout", "must not be negative")
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(DefaultWaitTimeout)
		}
	case s.Do == DoRestart || s.Do == DoStopB:
		validateRestartMode(c, s, f)
	case s.Do == DoStartB || s.Do == DoMark:
	default: // client actions
		if sc.client(s.Client) == nil {
			c.fail(f+".client", "no client named %q (clients: %s)", s.Client, sc.names(false, true))
			return
		}
		switch s.Do {
		case DoPublish:
			if s.Topic == "" || strings.ContainsAny(s.Topic, "+#") {
				c.fail(f+".topic", "do: publish needs a topic name without wildcards")
			}
			checkQoS(c, f+".qos", s.QoS)
			if s.Count < 0 {
				c.fail(f+".count", "must not be negative")
			}
		case DoSubscribe:
			if err := checkFilter(s.Topic); err != nil {
				c.fail(f+".topic", "%v", err)
			}
			checkQoS(c, f+".qos", s.QoS)
		case DoViolate:
			if s.Violation != "" {
				switch {
				case s.Bytes != "":
					c.fail(f+".violation", "give bytes or violation, not both")
				case !oneOf(s.Violation, violationKinds):
					c.fail(f+".violation", "unknown violation %q%s; violations: %s", s.Violation, suggest(s.Violation, violationKinds), strings.Join(violationKinds, ", "))
				case sc.client(s.Client).Protocol != 5:
					c.fail(f+".violation", "violation %s is an MQTT 5 misbehaviour: client %q needs protocol: 5", s.Violation, s.Client)
				}
			}
			if s.Bytes != "" {
				if _, err := hex.DecodeString(strings.ReplaceAll(s.Bytes, " ", "")); err != nil {
					c.fail(f+".bytes", "bytes are hex, such as \"c0 01 00\": %v", err)
				}
			}
		}
	}
}

func (sc *Scenario) validateFaultTarget(c *checker, s *Step, f string) {
	if s.Bridge != "" {
		return // validateTopology checks it
	}
	if s.Group != "" && s.Client != "" {
		c.fail(f, "give a group or a client, not both")
		return
	}
	if s.Group == "" && s.Client == "" {
		if s.Do != DoRestore {
			c.fail(f+".group", "do: %s needs a group or a client whose links it changes", s.Do)
		}
		return
	}
	if s.Client != "" {
		cl := sc.client(s.Client)
		switch {
		case cl == nil:
			c.fail(f+".client", "no client named %q (clients: %s)", s.Client, sc.names(false, true))
		case !cl.Proxy:
			c.fail(f+".client", "client %q is not behind the fault proxy: add proxy: true to it", s.Client)
		case len(s.Devices) > 0:
			c.fail(f+".devices", "devices select devices of a group, not of a client")
		}
		return
	}
	g := sc.group(s.Group)
	switch {
	case g == nil:
		c.fail(f+".group", "no group named %q (groups: %s)", s.Group, sc.names(true, false))
		return
	case !g.Proxy:
		c.fail(f+".group", "group %q is not behind the fault proxy: add proxy: true to it", s.Group)
		return
	}
	for j, d := range s.Devices {
		if d < 0 || d >= g.Count {
			c.fail(fmt.Sprintf("%s.devices[%d]", f, j), "device %d is outside group %q (0..%d)", d, g.Name, g.Count-1)
		}
	}
	if len(s.Devices) > 0 && g.Driver == "paho" {
		c.fail(f+".devices", "single devices of a paho group cannot be addressed; split the group")
	}
}

func (sc *Scenario) validateMatcher(c *checker, m *Matcher, f string) {
	for i, k := range m.Kind {
		if !oneOf(k, kindNames()) {
			c.fail(fmt.Sprintf("%s.kind", f), "unknown event kind %q%s; kinds: %s", k, suggest(k, kindNames()), strings.Join(kindNames(), ", "))
			_ = i
		}
	}
	if m.Source != "" {
		var srcs []string
		for _, s := range eventSources {
			srcs = append(srcs, string(s))
		}
		if !oneOf(m.Source, srcs) {
			c.fail(f+".source", "unknown source %q; sources: %s", m.Source, strings.Join(srcs, ", "))
		}
	}
	if m.Topic != "" {
		if err := checkFilter(m.Topic); err != nil {
			c.fail(f+".topic", "%v", err)
		}
	}
	if m.Client != "" && !sc.anyClientID(m.Client) {
		// A matcher that can match nothing makes `equals: 0` pass on nothing.
		c.fail(f+".client", "no client or device of this scenario has a client ID matching %q (clients: %s)", m.Client, sc.names(false, true))
	}
	if m.Group != "" && sc.group(m.Group) == nil && sc.client(m.Group) == nil && sc.bridge(m.Group) == nil { // a bridge: its proxied links
		c.fail(f+".group", "no group named %q (groups: %s)", m.Group, sc.names(true, false))
	}
	if m.QoS != nil {
		checkQoS(c, f+".qos", *m.QoS)
	}
}

func kindNames() []string {
	out := make([]string, len(eventKinds))
	for i, k := range eventKinds {
		out[i] = string(k)
	}
	return out
}

// anyClientID says whether pattern (a client ID, or a glob with *) matches
// the client ID of a scenario client or of some device of a group. Device
// IDs are rendered from the group's template, up to a bound per group.
func (sc *Scenario) anyClientID(pattern string) bool {
	if sc.kafkaClientID(pattern) {
		return true
	}
	for _, cl := range sc.Clients {
		if globMatch(pattern, cmp.Or(cl.ClientID, cl.Name)) || globMatch(pattern, cl.Name) {
			return true
		}
	}
	for _, g := range sc.Groups {
		t, err := profile.Compile("client_id", cmp.Or(g.ClientID, "{{.Group}}-{{.Index}}"))
		if err != nil {
			return true // the group's own check reports the template
		}
		for i := 0; i < min(g.Count, 100_000); i++ {
			if globMatch(pattern, t.Render(profile.Vars{Index: i, N: g.Count, GroupIndex: i, Group: g.Name})) {
				return true
			}
		}
	}
	return false
}
