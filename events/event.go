// Package events is the one event model of mqttfleet: typed, timestamped
// records of what a client, the broker, the network emulator or the simulator
// observed or decided. Every part writes events to a Sink; assertions, reports
// and tests read them back.
//
// An Event is a flat record so that it serialises to one JSON line and can be
// matched with a plain predicate. Kind says which fields are meaningful.
package events

import (
	"time"
)

// Kind names what happened.
type Kind string

// The kinds of event. The comment on each says which fields it fills.
const (
	// Connect: a CONNECT was sent (client) or received (broker). ClientID, Remote, KeepAlive, Clean.
	Connect Kind = "connect"
	// ConnAck: a CONNACK was sent or received. ClientID, Code, SessionPresent, Latency (client: CONNECT->CONNACK).
	ConnAck Kind = "connack"
	// Disconnect: a connection ended. ClientID, Cause, Statement (for violations), Detail.
	Disconnect Kind = "disconnect"
	// Takeover: a connection was closed because another one arrived with its client ID. ClientID, Remote (the new one).
	Takeover Kind = "takeover"
	// KeepaliveExpired: the broker saw nothing from a client for 1.5x its keepalive,
	// or a client saw no PINGRESP in time. ClientID, KeepAlive, Latency (silence observed).
	KeepaliveExpired Kind = "keepalive_expired"
	// WillPublished: the broker published a client's will. ClientID, Topic, QoS, Retain, Cause.
	WillPublished Kind = "will_published"
	// WillCancelled: the broker discarded an MQTT 5 client's will that was waiting out its Will Delay
	// Interval, because a new connection for the client ID came first [MQTT-3.1.3-9]. ClientID, Topic,
	// QoS, Retain, Statement, Detail.
	WillCancelled Kind = "will_cancelled"
	// PublishSent: a PUBLISH was written. ClientID, Topic, QoS, Retain, PacketID, Dup, Size;
	// with an MQTT 5 Topic Alias, Alias and Detail (the client's: "topic alias set" when the
	// PUBLISH carried the topic too, "topic alias only" when its topic was empty; Topic is the full one).
	PublishSent Kind = "publish_sent"
	// PublishReceived: a PUBLISH was read. ClientID, Topic, QoS, Retain, PacketID, Dup, Size, Latency (end to end when known);
	// Alias when it carried an MQTT 5 Topic Alias (client: Topic is the resolved topic).
	PublishReceived Kind = "publish_received"
	// PublishAcked: the QoS 1/2 flow of an outgoing PUBLISH completed. ClientID, PacketID, QoS, Latency,
	// Code (the PUBACK reason code for QoS 1, the PUBREC one for QoS 2; 0 for 3.1.1).
	PublishAcked Kind = "publish_acked"
	// PublishFailed: an MQTT 5 ack refused an outgoing PUBLISH (reason code 0x80 or more).
	// ClientID, PacketID, QoS, Code, Detail (the packet that carried it: PUBACK, PUBREC or PUBCOMP).
	PublishFailed Kind = "publish_failed"
	// Subscribed: a SUBACK arrived (client) or was sent (broker). ClientID, Topic (filter), QoS (granted or 0x80), Latency.
	Subscribed Kind = "subscribed"
	// Unsubscribed: an UNSUBACK arrived or was sent. ClientID, Topic.
	Unsubscribed Kind = "unsubscribed"
	// Ping: a PINGREQ was sent (client) or answered (broker). ClientID, Latency (client: round trip).
	Ping Kind = "ping"
	// Drop: a message was dropped. ClientID, Topic, QoS, Cause (queue_full, not_authorized, inflight_full, ...).
	Drop Kind = "drop"
	// FaultInjected and FaultRemoved: netem changed a link. Link, Group, Direction, Fault, Detail.
	FaultInjected Kind = "fault_injected"
	FaultRemoved  Kind = "fault_removed"
	// LinkOpened and LinkClosed: netem accepted or finished a proxied connection. Link, Group, Remote, Detail.
	LinkOpened Kind = "link_opened"
	LinkClosed Kind = "link_closed"
	// SessionExpired: an offline MQTT 5 session reached its Session Expiry Interval and was discarded. ClientID.
	SessionExpired Kind = "session_expired"
	// Violation: a protocol rule was broken. ClientID, Statement, Detail.
	Violation Kind = "violation"
	// Auth: an MQTT 5 enhanced authentication step (AUTH sent or received, or an
	// authentication completed). ClientID, Code (the AUTH reason code), Detail (method, what happened).
	Auth Kind = "auth"
	// KafkaProduced: the Kafka bridge's producer had a record acknowledged (acks 0: handed to the
	// network). ClientID (bridge), Topic (MQTT topic), Seq, Device, Latency (device send -> ack),
	// Detail (kafka topic/partition@offset).
	KafkaProduced Kind = "kafka_produced"
	// KafkaFailed: the bridge's producer gave a record up. ClientID (bridge), Topic (MQTT topic), Seq, Device, Detail (error).
	KafkaFailed Kind = "kafka_failed"
	// KafkaRetry: the bridge's producer backed off to retry a partition's records. ClientID (bridge), Detail.
	KafkaRetry Kind = "kafka_retry"
	// KafkaRebalance: a Kafka watcher's consumer group member was given or lost partitions. ClientID (watcher), Detail.
	KafkaRebalance Kind = "kafka_rebalance"
	// Log: anything else worth keeping in the stream. Detail.
	// BridgeForwarded: a message crossed a broker bridge (Link: the
	// bridge's name; Direction "out" to the remote once acknowledged, "in"
	// published locally).
	BridgeForwarded Kind = "bridge_forwarded"
	// BridgeQueued: a message for a bridge's remote was queued while the
	// remote was down.
	BridgeQueued Kind = "bridge_queued"
	// PacketIn and PacketOut are the packets the adversarial broker
	// (package adversary) read from and wrote to a client, for verdicts
	// on what the client did after what the broker did (Detail: the
	// packet type; PacketID, QoS, Dup, Topic, Code where it has them).
	PacketIn  Kind = "packet_in"
	PacketOut Kind = "packet_out"
	Log       Kind = "log"
)

// Cause says why a connection ended or a message was dropped.
type Cause string

// Disconnect and drop causes.
const (
	CauseClientDisconnect Cause = "client_disconnect" // the client sent DISCONNECT
	CauseKeepalive        Cause = "keepalive"         // 1.5x keepalive of silence (broker) or no PINGRESP (client)
	CauseTakeover         Cause = "takeover"          // another connection used the same client ID
	CauseViolation        Cause = "violation"         // protocol violation; Statement names the rule
	CauseIOError          Cause = "io_error"          // the socket failed or the peer closed it without DISCONNECT
	CauseShutdown         Cause = "shutdown"          // the broker or the client was closed by its owner
	CauseRefused          Cause = "refused"           // CONNACK with a non-zero code
	CauseQueueFull        Cause = "queue_full"        // a bounded queue was full
	CauseNotAuthorized    Cause = "not_authorized"    // an ACL denied it, or an MQTT 5 re-authentication failed
	CauseTooLarge         Cause = "too_large"         // over the maximum packet size
	CauseFault            Cause = "fault"             // netem reset or closed the link
	CauseExpired          Cause = "expired"           // an MQTT 5 message's expiry interval passed before delivery
	CauseLimit            Cause = "limit"             // refused by a configured limit (subscriptions, topic size, queued bytes, ...)
	CauseServerDisconnect Cause = "server_disconnect" // an MQTT 5 server sent DISCONNECT; Code is its reason code
	CauseSessionEnded     Cause = "session_ended"     // MQTT 5 shared subscription: the member's session ended holding it
	CauseRejected         Cause = "rejected"          // MQTT 5 shared subscription: the member answered 0x80 or more; Code
)

// Source says which part wrote an event.
type Source string

// Event sources.
const (
	SourceBroker    Source = "broker"
	SourceClient    Source = "client"
	SourceNetem     Source = "netem"
	SourceSimulator Source = "simulator"
	SourceScenario  Source = "scenario"
	SourceKafka     Source = "kafka" // the Kafka leg: bridge, watchers, the embedded cluster's faults
)

// Event is one timestamped record. Fields a Kind does not use stay zero and
// are left out of the JSON form.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   Kind      `json:"kind"`
	Source Source    `json:"source"`

	ClientID string `json:"client_id,omitempty"`
	Device   int    `json:"device,omitempty"` // simulator device index + 1; 0 when not a fleet device
	Remote   string `json:"remote,omitempty"` // the peer's address as the writer saw it

	Topic    string `json:"topic,omitempty"`
	QoS      byte   `json:"qos,omitempty"`
	Retain   bool   `json:"retain,omitempty"`
	Dup      bool   `json:"dup,omitempty"`
	PacketID uint16 `json:"packet_id,omitempty"`
	Size     int    `json:"size,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	Alias    uint16 `json:"alias,omitempty"` // MQTT 5 Topic Alias a PUBLISH carried

	Code           int  `json:"code,omitempty"` // CONNACK return code or reason code
	SessionPresent bool `json:"session_present,omitempty"`
	Clean          bool `json:"clean,omitempty"`
	KeepAlive      int  `json:"keepalive,omitempty"` // seconds

	Cause     Cause  `json:"cause,omitempty"`
	Statement string `json:"statement,omitempty"` // normative statement ID, e.g. MQTT-3.1.2-24

	Link      string `json:"link,omitempty"`
	Group     string `json:"group,omitempty"`
	Direction string `json:"direction,omitempty"` // "upstream" (device->broker), "downstream" or "both"
	Fault     string `json:"fault,omitempty"`

	Latency time.Duration `json:"latency_ns,omitempty"`
	Detail  string        `json:"detail,omitempty"`
}

// Sink receives events. Emit must be safe for concurrent use and must not
// block for long: it is called on the hot paths of the broker and clients.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }

// Discard is a Sink that drops every event. It is a comparable value, so a
// caller may check `sink == events.Discard` to skip building events at all.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(Event) {}

// Multi returns a Sink that emits to every non-nil sink in order.
func Multi(sinks ...Sink) Sink {
	var live []Sink
	for _, s := range sinks {
		if s != nil {
			live = append(live, s)
		}
	}
	switch len(live) {
	case 0:
		return Discard
	case 1:
		return live[0]
	}
	return SinkFunc(func(e Event) {
		for _, s := range live {
			s.Emit(e)
		}
	})
}

// Stamp fills in Time (when zero) and Source (when empty) and returns e. Writers
// call it so that records without a time never reach a sink.
func Stamp(e Event, src Source) Event {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Source == "" {
		e.Source = src
	}
	return e
}

// Match is a predicate over events, used by Recorder.Wait and assertions.
type Match func(Event) bool

// Is matches events of any of the given kinds.
func Is(kinds ...Kind) Match {
	return func(e Event) bool {
		for _, k := range kinds {
			if e.Kind == k {
				return true
			}
		}
		return false
	}
}

// And matches when every predicate matches.
func And(ms ...Match) Match {
	return func(e Event) bool {
		for _, m := range ms {
			if !m(e) {
				return false
			}
		}
		return true
	}
}

// ForClient matches events about one client ID.
func ForClient(id string) Match {
	return func(e Event) bool { return e.ClientID == id }
}

// From matches events written by one source.
func From(src Source) Match {
	return func(e Event) bool { return e.Source == src }
}
