package clientconf

import (
	"context"
	"time"
)

// Driver starts one MQTT client under test and makes it do a Job. A driver
// is a thin shim: the behaviour graded (keepalive, reconnect, resend, packet
// rules) is the client library's own, so a driver never retries, acks or
// pings on the library's behalf.
type Driver interface {
	// Name is the client's column in the results ("paho.mqtt.golang").
	Name() string
	// Protocols lists the protocol levels the client speaks (4 and/or 5).
	Protocols() []byte
	// Available is nil when the client can run on this machine, else the
	// reason it cannot (the suite skips it and says why).
	Available() error
	// Run makes the client do job against job.Addr and returns when ctx
	// ends (or, for a client that exits by itself, when it exits). At the
	// end a client still connected disconnects cleanly when job.Disconnect
	// is set, and is dropped otherwise. Received lists the application
	// messages the client handed to its application.
	Run(ctx context.Context, job Job) (Received, error)
}

// Job is what the client under test does in one probe.
type Job struct {
	Addr      string // host:port of the adversarial broker
	ClientID  string
	Protocol  byte // 4 or 5
	KeepAlive time.Duration
	Clean     bool
	Username  string // "" for none
	Password  string // "" for none (only with a user name)
	Will      *Msg
	// Subscribe is sent once connected (and again after an automatic
	// reconnect when the library resubscribes).
	Subscribe []Sub
	// Publish is published once, after the first CONNACK, in order,
	// without waiting for each acknowledgement.
	Publish []Msg
	// PublishEvery, when set, publishes a QoS 0 message on Topic at this
	// interval until the end: a busy device.
	PublishEvery time.Duration
	Topic        string
	// Unsubscribe is sent after the subscriptions were acknowledged.
	Unsubscribe []string
	// Reconnect lets the library reconnect by itself after losing the link
	// or being refused (its own policy and timings).
	Reconnect bool
	// Disconnect ends the job with DISCONNECT: as soon as the publishes are
	// done when DisconnectEarly, else when ctx ends.
	Disconnect      bool
	DisconnectEarly bool
}

// Sub is a subscription.
type Sub struct {
	Filter string
	QoS    byte
}

// Msg is an application message.
type Msg struct {
	Topic   string
	QoS     byte
	Retain  bool
	Payload string
}

// Received is what the client delivered to its application.
type Received []Msg

// Limited is a Driver that can do only some jobs (a program with a fixed
// command line): the suite runs only the probes whose job it can do, and
// grades nothing for the others.
type Limited interface {
	Can(job Job) bool
}

// Blind is a Driver that cannot report what the client delivered to its
// application: checks that need the deliveries are not graded.
type Blind interface {
	Blind() bool
}

// busyTicks is the clock of a busy job: a tick per PublishEvery, or a
// channel that never fires when the job is idle. stop releases the ticker.
func busyTicks(job Job) (tick <-chan time.Time, stop func()) {
	if job.PublishEvery <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(job.PublishEvery)
	return t.C, t.Stop
}
