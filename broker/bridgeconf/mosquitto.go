package bridgeconf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ParseMosquitto reads the bridges of a mosquitto.conf: every `connection
// <name>` block with the options that follow it up to the next one.
// Options that are not a bridge's (listener, persistence, ...) are skipped,
// as they configure the broker and not its bridges; a bridge option we do
// not implement, or a bad value, is an error naming file:line. name labels
// errors. The configurations are validated (defaults filled in).
func ParseMosquitto(name string, r io.Reader) ([]Config, error) {
	var out []Config
	var errs []error
	var cur *Config
	var curLine int
	sc := bufio.NewScanner(r)
	ln := 0
	for sc.Scan() {
		ln++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, ln, key, fmt.Sprintf(format, a...)))
		}
		if key == "connection" {
			if rest == "" || strings.Contains(rest, " ") {
				fail("want one name, got %q", rest)
			}
			out = append(out, Config{Name: rest})
			cur, curLine = &out[len(out)-1], ln
			continue
		}
		if !bridgeKey(key) {
			continue
		}
		if cur == nil {
			fail("a bridge option before any `connection <name>` line")
			continue
		}
		if err := cur.setMosquitto(key, rest); err != nil {
			fail("%v", err)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	for i := range out {
		if err := out[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: connection %s (line %d): %w", name, out[i].Name, curLine, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// mosquittoKeys are the bridge options ParseMosquitto knows.
var mosquittoKeys = []string{"address", "addresses", "topic", "cleansession", "remote_clientid", "clientid",
	"local_clientid", "remote_username", "username", "remote_password", "password", "bridge_protocol_version",
	"try_private", "keepalive_interval", "restart_timeout", "round_robin", "notifications", "notification_topic",
	"bridge_cafile", "bridge_insecure", "start_type"}

// bridgeKey reports whether key belongs to a bridge: one we know, or any
// other bridge_ option (refused as unsupported rather than ignored).
func bridgeKey(key string) bool {
	for _, k := range mosquittoKeys {
		if k == key {
			return true
		}
	}
	return strings.HasPrefix(key, "bridge_")
}

func (c *Config) setMosquitto(key, v string) error {
	need := func() error {
		if v == "" {
			return errors.New("missing value")
		}
		return nil
	}
	boolean := func(dst **bool) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q: want true or false", v)
		}
		*dst = &b
		return nil
	}
	switch key {
	case "address", "addresses":
		if err := need(); err != nil {
			return err
		}
		c.Addresses = append(c.Addresses, strings.Fields(v)...)
	case "topic":
		t, err := ParseTopic(v)
		if err != nil {
			return err
		}
		c.Topics = append(c.Topics, t)
	case "cleansession":
		return boolean(&c.CleanSession)
	case "try_private":
		return boolean(&c.TryPrivate)
	case "notifications":
		return boolean(&c.Notifications)
	case "round_robin":
		var b *bool
		if err := boolean(&b); err != nil {
			return err
		}
		c.RoundRobin = *b
	case "bridge_insecure":
		var b *bool
		if err := boolean(&b); err != nil {
			return err
		}
		c.Insecure = *b
	case "remote_clientid", "clientid":
		c.RemoteClientID = v
	case "local_clientid":
		c.LocalClientID = v
	case "remote_username", "username":
		c.RemoteUsername = v
	case "remote_password", "password":
		c.RemotePassword = v
	case "notification_topic":
		c.NotificationTopic = v
	case "bridge_cafile":
		c.CAFile = v
	case "bridge_protocol_version":
		c.Protocol = v
	case "keepalive_interval":
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		c.KeepAlive = Duration(d)
	case "restart_timeout":
		f := strings.Fields(v)
		if len(f) < 1 || len(f) > 2 {
			return fmt.Errorf("%q: want <seconds> or <base> <cap>", v)
		}
		base, err := parseDuration(f[0])
		if err != nil {
			return err
		}
		c.RestartTimeout = Duration(base)
		if len(f) == 2 {
			cp, err := parseDuration(f[1])
			if err != nil {
				return err
			}
			c.RestartMax = Duration(cp)
		} else {
			c.RestartMax = Duration(base) // Mosquitto: one value is a constant wait
		}
	case "start_type":
		if v != "automatic" {
			return fmt.Errorf("%q: only automatic is supported (the bridge starts with the broker)", v)
		}
	default:
		return errors.New("not supported by the reference broker's bridge")
	}
	return nil
}

// MosquittoConf writes the bridge as a mosquitto.conf `connection` block,
// for running the same bridge in Mosquitto (its own implementation).
// Validate first: defaults are written out explicitly.
func (c Config) MosquittoConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "connection %s\n", c.Name)
	fmt.Fprintf(&b, "address %s\n", strings.Join(c.Addresses, " "))
	for _, t := range c.Topics {
		fmt.Fprintf(&b, "topic %s\n", t)
	}
	fmt.Fprintf(&b, "cleansession %v\n", c.Clean())
	fmt.Fprintf(&b, "try_private %v\n", c.Private())
	fmt.Fprintf(&b, "remote_clientid %s\n", c.RemoteClientID)
	fmt.Fprintf(&b, "local_clientid %s\n", c.LocalClientID)
	if c.RemoteUsername != "" {
		fmt.Fprintf(&b, "remote_username %s\n", c.RemoteUsername)
	}
	if c.RemotePassword != "" {
		fmt.Fprintf(&b, "remote_password %s\n", c.RemotePassword)
	}
	fmt.Fprintf(&b, "bridge_protocol_version %s\n", c.Protocol)
	fmt.Fprintf(&b, "keepalive_interval %d\n", int(c.KeepAlive.D().Round(time.Second)/time.Second))
	fmt.Fprintf(&b, "restart_timeout %d %d\n", max(1, int(c.RestartTimeout.D().Round(time.Second)/time.Second)),
		max(1, int(c.RestartMax.D().Round(time.Second)/time.Second)))
	fmt.Fprintf(&b, "round_robin %v\n", c.RoundRobin)
	fmt.Fprintf(&b, "notifications %v\n", c.Notify())
	fmt.Fprintf(&b, "notification_topic %s\n", c.NotificationTopic)
	if c.CAFile != "" {
		fmt.Fprintf(&b, "bridge_cafile %s\nbridge_insecure %v\n", c.CAFile, c.Insecure)
	}
	return b.String()
}
