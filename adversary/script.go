// Package adversary is an MQTT server that misbehaves on purpose, to grade
// device clients: it answers like a broker (CONNACK, SUBACK, PUBACK and the
// QoS 2 flow, PINGRESP, and routes PUBLISHes between its clients) except
// where its script says otherwise: delay or withhold an answer, refuse a
// CONNECT with a given code, close the connection, deliver a message twice,
// acknowledge out of order, send an unexpected packet, or end the
// connection as a takeover would. Every packet in and out and every
// misbehaviour is an event, so a verdict can say which of the client's
// actions followed which of the server's (docs/clients.md).
package adversary

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/mqttfleet/mqttfleet/internal/yamlpos"
)

// Triggers: the client packet (or server delivery) an action answers.
const (
	OnConnect   = "connect"   // the CONNECT
	OnPingreq   = "pingreq"   // a PINGREQ
	OnPublish   = "publish"   // a PUBLISH from the client
	OnPubrel    = "pubrel"    // a PUBREL from the client (QoS 2, part 2)
	OnSubscribe = "subscribe" // a SUBSCRIBE
	OnDeliver   = "deliver"   // a PUBLISH the server sends the client
)

// Misbehaviours.
const (
	// Delay sends the normal answer after Delay.
	Delay = "delay"
	// Withhold never sends the answer.
	Withhold = "withhold"
	// Refuse answers CONNECT with CONNACK Code and closes.
	Refuse = "refuse"
	// Close closes the connection instead of answering.
	Close = "close"
	// CloseAfter answers, then closes the connection.
	CloseAfter = "close_after"
	// Duplicate sends a delivered PUBLISH a second time with DUP set and
	// the same packet identifier (QoS 1 and 2).
	Duplicate = "duplicate"
	// Reorder holds the acknowledgements of Count PUBLISHes and sends them
	// in reverse order.
	Reorder = "reorder"
	// Unexpected answers, then sends a packet the client cannot expect: a
	// second CONNACK.
	Unexpected = "unexpected"
	// Takeover answers, then after Delay ends the connection as a second
	// connection with the client's ID would: DISCONNECT 0x8E (5.0) or a
	// plain close (3.1.1).
	Takeover = "takeover"
	// Send answers, then writes Bytes as they are: a malformed or
	// forbidden packet, to see whether the client closes the connection
	// as the standard asks of a receiver [MQTT-4.8.0-1].
	Send = "send"
)

var triggers = []string{OnConnect, OnPingreq, OnPublish, OnPubrel, OnSubscribe, OnDeliver}

// allowed lists the misbehaviours each trigger takes.
var allowed = map[string][]string{
	OnConnect:   {Delay, Withhold, Refuse, Close, CloseAfter, Unexpected, Takeover, Send},
	OnPingreq:   {Delay, Withhold, Close, CloseAfter},
	OnPublish:   {Delay, Withhold, Close, CloseAfter, Reorder},
	OnPubrel:    {Delay, Withhold, Close},
	OnSubscribe: {Delay, Withhold, Close, Send},
	OnDeliver:   {Duplicate, Close},
}

// Action is one misbehaviour of the script.
type Action struct {
	// On is the trigger; Nth picks its Nth occurrence on the connection (1
	// for the first; 0 for every one).
	On  string `yaml:"on"`
	Nth int    `yaml:"nth"`
	// Do is the misbehaviour.
	Do    string        `yaml:"do"`
	Delay time.Duration `yaml:"delay"`
	// Code is the CONNACK code of refuse (3.1.1: 1-5; 5.0: 0x80 and up).
	Code int `yaml:"code"`
	// Count is how many acknowledgements reorder holds (default 2).
	Count int `yaml:"count"`
	// Client limits the action to connections with this client ID ("" for all).
	Client string `yaml:"client"`
	// Conn limits the action to the client ID's Conn-th connection to this
	// server (1 for the first; 0 for every one), so a script can break the
	// first connection and let the reconnect through.
	Conn int `yaml:"conn"`
	// Bytes is what send writes (YAML: a list of byte values).
	Bytes []byte `yaml:"bytes"`
}

func (a Action) String() string {
	s := fmt.Sprintf("on %s", a.On)
	if a.Nth > 0 {
		s += fmt.Sprintf(" #%d", a.Nth)
	}
	s += ": " + a.Do
	switch a.Do {
	case Delay, Takeover:
		s += " " + a.Delay.String()
	case Refuse:
		s += fmt.Sprintf(" 0x%02X", a.Code)
	case Reorder:
		s += fmt.Sprintf(" %d", a.Count)
	case Send:
		s += fmt.Sprintf(" % X", a.Bytes)
	}
	if a.Conn > 0 {
		s += fmt.Sprintf(" (connection %d)", a.Conn)
	}
	return s
}

// Script is what the server does wrong, in order of precedence: the first
// action matching a packet decides.
type Script struct {
	Actions []Action `yaml:"actions"`
	// File is where the script was read from, for error messages.
	File string `yaml:"-"`
}

// Check validates the script and fills defaults; errors name the action.
func (s *Script) Check() error {
	var errs []string
	for i := range s.Actions {
		a := &s.Actions[i]
		f := fmt.Sprintf("actions[%d]", i)
		if !oneOf(a.On, triggers) {
			errs = append(errs, fmt.Sprintf("%s.on: %q: want one of %s", f, a.On, strings.Join(triggers, ", ")))
			continue
		}
		if !oneOf(a.Do, allowed[a.On]) {
			errs = append(errs, fmt.Sprintf("%s.do: %q on %s: want one of %s", f, a.Do, a.On, strings.Join(allowed[a.On], ", ")))
		}
		if a.Nth < 0 {
			errs = append(errs, f+".nth: must not be negative")
		}
		if a.Conn < 0 {
			errs = append(errs, f+".conn: must not be negative")
		}
		if a.Do == Send && len(a.Bytes) == 0 {
			errs = append(errs, f+".bytes: do: send needs the bytes to send")
		}
		if a.Delay < 0 {
			errs = append(errs, f+".delay: must not be negative")
		}
		if a.Do == Delay && a.Delay == 0 {
			errs = append(errs, f+".delay: do: delay needs a delay")
		}
		if a.Do == Refuse && (a.Code <= 0 || a.Code > 0xFF) {
			errs = append(errs, f+".code: do: refuse needs a CONNACK code (3.1.1: 1-5; 5.0: 0x80 and up)")
		}
		if a.Do == Reorder {
			if a.Count == 0 {
				a.Count = 2
			}
			if a.Count < 2 {
				errs = append(errs, f+".count: reorder needs at least 2 acknowledgements")
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// LoadScript reads a YAML script ({actions: [{on, nth, do, delay, code,
// count, client}]}); errors name the file and line.
func LoadScript(path string) (Script, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Script{}, fmt.Errorf("adversary script: %w", err)
	}
	var s Script
	if err := yamlpos.Unmarshal(data, &s, yaml.DisallowUnknownField()); err != nil {
		if p, ok := yamlpos.Explain(err); ok {
			return Script{}, fmt.Errorf("%s:%d: %s", path, p.Line, p.Msg)
		}
		return Script{}, fmt.Errorf("%s: %w", path, err)
	}
	s.File = path
	if err := s.Check(); err != nil {
		return Script{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
