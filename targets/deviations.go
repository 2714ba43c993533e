package targets

import (
	"fmt"
	"slices"
	"strings"
)

// Deviation is a normative statement a third-party broker is known not to
// meet. Conformance specs and scenario assertions that cite the statement
// and fail on that broker are recorded as a deviation — neither pass nor
// fail — unless the run is strict; a failure nobody declared still fails.
// The reference broker never has one: its failures are bugs to fix.
type Deviation struct {
	// ID is the entry's anchor in docs/deviations.md.
	ID string
	// Statement is the normative statement the broker does not meet.
	Statement string
	// With, when set, is a second statement a scenario assertion must also
	// cite to be explained: it narrows a broad statement to one trigger
	// (MQTT-3.1.2-8, "publish the will", only after a second CONNECT,
	// MQTT-3.1.0-2), so a will missing for any other reason stays a failure.
	With string
	// Spec narrows an entry to the conformance specs whose text contains it
	// (conformance ignores With: a spec cites only what it checks).
	Spec string
	// Reason is what the broker does instead, in a line.
	Reason string
}

// Doc is where the deviation is written up, with its packet trace.
func (d Deviation) Doc() string { return "docs/deviations.md#" + d.ID }

// Deviations holds the known deviations per target name.
var Deviations = map[string][]Deviation{
	"mosquitto": {
		{
			ID: "mosquitto-reserved-flags-pingreq-puback", Statement: "MQTT-2.2.2-2", Spec: "PINGREQ with a reserved flag bit set",
			Reason: "Mosquitto 2.0.11 answers a PINGREQ with flags 0001 with PINGRESP instead of closing the connection",
		},
		{
			ID: "mosquitto-reserved-flags-pingreq-puback", Statement: "MQTT-2.2.2-2", Spec: "PUBACK with a reserved flag bit set",
			Reason: "Mosquitto 2.0.11 accepts a PUBACK with flags 0010 and keeps the connection open",
		},
		{
			ID: "mosquitto-no-will-after-second-connect", Statement: "MQTT-3.1.2-8", With: "MQTT-3.1.0-2",
			Spec:   "closes the connection after a second CONNECT",
			Reason: "Mosquitto 2.0.11 closes the connection on a second CONNECT but does not publish the will (it does after other protocol errors)",
		},
		{
			ID: "mosquitto-qos0-dup", Statement: "MQTT-3.3.1-2", Spec: "QoS 0 PUBLISH with DUP set",
			Reason: "Mosquitto 2.0.11 accepts a QoS 0 PUBLISH with DUP 1 and routes it instead of closing the connection",
		},
		{
			ID: "mosquitto-unchecked-packets", Statement: "MQTT-4.8.0-1", Spec: "PINGREQ with bytes after its fixed header",
			Reason: "Mosquitto 2.0.11 answers a PINGREQ with remaining length 1 with PINGRESP instead of closing the connection",
		},
		{
			ID: "mosquitto-unchecked-packets", Statement: "MQTT-4.8.0-1", Spec: "SUBACK sent by a client",
			Reason: "Mosquitto 2.0.11 accepts a SUBACK from a client (its bridge code handles SUBACK) and keeps the connection open",
		},
		{
			ID: "mosquitto-keepalive-granularity", Statement: "MQTT-3.1.2-24", Spec: "silent for 1.5 times its keepalive",
			Reason: "Mosquitto 2.0.11 checks keepalives about every 5 s, so with Keep Alive 1 it disconnects 3.5 to 6.5 s after the last packet instead of 1.5 s",
		},
		// MQTT 5.0 (statements keyed "v5:", as conformance keys them).
		{
			ID: "mosquitto-keepalive-granularity", Statement: "v5:MQTT-3.1.2-22", Spec: "silent for 1.5 times its keepalive, with DISCONNECT 0x8D",
			Reason: "Mosquitto 2.0.11 checks keepalives about every 5 s, so a 5.0 client with Keep Alive 1 is closed 3.5 to 6.5 s after its last packet (without DISCONNECT 0x8D) instead of 1.5 s",
		},
		{
			ID: "mosquitto-v5-takeover-no-disconnect", Statement: "v5:MQTT-3.1.4-3", Spec: "sends DISCONNECT 0x8E to a connection whose session",
			Reason: "Mosquitto 2.0.11 closes a 5.0 connection whose session another CONNECT takes over without sending it DISCONNECT 0x8E (Session taken over)",
		},
		{
			ID: "mosquitto-v5-expiry-whole-seconds", Statement: "v5:MQTT-3.3.2-5", Spec: "whose Message Expiry Interval passed",
			Reason: "Mosquitto 2.0.11 keeps message expiry in whole seconds and compares strictly, so it still delivers a queued message up to about a second after its interval passed",
		},
		{
			ID: "mosquitto-v5-receive-maximum", Statement: "v5:MQTT-3.3.4-9", Spec: "within the client's Receive Maximum",
			Reason: "Mosquitto 2.0.11 sends two queued QoS 1 PUBLISHes when one PUBACK frees one slot of a client's Receive Maximum 2, so three are unacknowledged",
		},
		{
			// No conformance spec has this text: the entry serves the
			// v5-receive-maximum-exceeded scenario, whose check cites the
			// client's statement the server enforces.
			ID: "mosquitto-v5-receive-maximum-not-enforced", Statement: "v5:MQTT-3.3.4-7", Spec: "more QoS 2 PUBLISHes than its Receive Maximum",
			Reason: "Mosquitto 2.0.11 answers a QoS 2 PUBLISH beyond its Receive Maximum with PUBREC 0x97 (Quota exceeded) and keeps the connection, instead of DISCONNECT 0x93 (Receive Maximum exceeded)",
		},
		{
			// Serves the v5-topic-alias-misuse scenario.
			ID: "mosquitto-v5-alias-zero-malformed", Statement: "v5:MQTT-3.3.2-8", Spec: "a PUBLISH with Topic Alias 0",
			Reason: "Mosquitto 2.0.11 closes with DISCONNECT 0x81 (Malformed Packet) for a PUBLISH with Topic Alias 0, where 3.3.4 gives 0x94 (Topic Alias invalid)",
		},
		{
			ID: "mosquitto-v5-expiry-inflight-qos2", Statement: "v5:MQTT-4.3.3-7", Spec: "applies no Message Expiry to a QoS 2 PUBLISH it has sent",
			Reason: "Mosquitto 2.0.11 drops a QoS 2 message it sent but saw no PUBREC for once its Message Expiry Interval passes, instead of resending it to the reconnected session",
		},
		{
			ID: "mosquitto-v5-share-name-unchecked", Statement: "v5:MQTT-4.8.2-1", Spec: "shared subscription with an empty ShareName",
			Reason: "Mosquitto 2.0.11 grants $share//{filter} (an empty ShareName) instead of refusing it",
		},
		{
			ID: "mosquitto-v5-share-name-unchecked", Statement: "v5:MQTT-4.8.2-2", Spec: "shared subscription with no Topic Filter after the ShareName",
			Reason: "Mosquitto 2.0.11 grants $share/{name} and $share/{name}/ (no Topic Filter) instead of refusing them",
		},
		{
			ID: "mosquitto-v5-share-name-unchecked", Statement: "v5:MQTT-3.8.3-4", Spec: "No Local set on a shared subscription",
			Reason: "Mosquitto 2.0.11 grants a shared subscription with No Local 1 instead of closing the connection for the Protocol Error",
		},
	},
	// RabbitMQ 3.10.8's MQTT plugin (docs/deviations.md#rabbitmq-...): it parses
	// little of what MQTT forbids and answers much of it, and keeps MQTT state
	// in AMQP queues and a retained store looked up by exact topic.
	"rabbitmq": {
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-4.7.3-2", Spec: "closes the connection on U+0000 in a topic name",
			Reason: "RabbitMQ 3.10.8 accepts a PUBLISH whose topic holds U+0000 and keeps the connection"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-4.8.0-1", Spec: "closes the connection on a CONNACK sent by a client",
			Reason: "RabbitMQ 3.10.8 ignores a CONNACK sent by a client and keeps the connection"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-2.2.2-2", Spec: "closes the connection on a PINGREQ with a reserved flag bit set",
			Reason: "RabbitMQ 3.10.8 answers a PINGREQ with flags 0001 with PINGRESP"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-2.2.2-2", Spec: "closes the connection on a PUBACK with a reserved flag bit set",
			Reason: "RabbitMQ 3.10.8 ignores a PUBACK with flags 0010 and keeps the connection"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-3.3.2-2", Spec: "closes the connection on a PUBLISH whose topic name holds a wildcard",
			Reason: "RabbitMQ 3.10.8 accepts a PUBLISH to a topic name holding + and keeps the connection"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-4.8.0-1", Spec: "closes the connection on a PUBLISH with a remaining length longer than four bytes",
			Reason: "RabbitMQ 3.10.8 keeps the connection after a remaining length of five bytes (30 ff ff ff ff 01)"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-3.6.1-1", Spec: "closes the connection on a PUBREL with flags 0000 instead of 0010",
			Reason: "RabbitMQ 3.10.8 ignores a PUBREL with flags 0000 and keeps the connection"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-3.3.1-2", Spec: "closes the connection on a QoS 0 PUBLISH with DUP set",
			Reason: "RabbitMQ 3.10.8 accepts a QoS 0 PUBLISH with DUP 1 and keeps the connection"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-2.3.1-1", Spec: "closes the connection on a QoS 1 PUBLISH with packet identifier 0",
			Reason: "RabbitMQ 3.10.8 answers a QoS 1 PUBLISH with packet identifier 0 with PUBACK 0"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-2.3.1-1", Spec: "closes the connection on a QoS 2 PUBLISH with packet identifier 0",
			Reason: "RabbitMQ 3.10.8 answers a QoS 2 PUBLISH with packet identifier 0 (as QoS 1, with PUBACK 0)"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-4.8.0-1", Spec: "closes the connection on a SUBACK sent by a client",
			Reason: "RabbitMQ 3.10.8 ignores a SUBACK sent by a client and keeps the connection"},
		{ID: "rabbitmq-subscribe-unchecked", Statement: "MQTT-3.8.3-3", Spec: "closes the connection on a SUBSCRIBE with no topic filter",
			Reason: "RabbitMQ 3.10.8 answers a SUBSCRIBE with no topic filter with SUBACK (no return codes)"},
		{ID: "rabbitmq-subscribe-unchecked", Statement: "MQTT-2.3.1-1", Spec: "closes the connection on a SUBSCRIBE with packet identifier 0",
			Reason: "RabbitMQ 3.10.8 answers a SUBSCRIBE with packet identifier 0 with SUBACK 0"},
		{ID: "rabbitmq-subscribe-unchecked", Statement: "MQTT-3.8.3-4", Spec: "closes the connection on a SUBSCRIBE with reserved bits set in the options byte",
			Reason: "RabbitMQ 3.10.8 grants a SUBSCRIBE whose requested-QoS byte has reserved bits set"},
		{ID: "rabbitmq-subscribe-unchecked", Statement: "MQTT-4.7.1-2", Spec: "closes the connection on a filter with '#' not last or not alone in its level",
			Reason: "RabbitMQ 3.10.8 grants a filter with '#' not last (.../#/b)"},
		{ID: "rabbitmq-subscribe-unchecked", Statement: "MQTT-4.7.1-3", Spec: "closes the connection on a filter with '+' not filling a whole level",
			Reason: "RabbitMQ 3.10.8 grants a filter with '+' inside a level (.../a+)"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-4.8.0-1", Spec: "closes the connection on a packet of reserved type 0",
			Reason: "RabbitMQ 3.10.8 keeps the connection after a packet of reserved type 0"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-3.1.0-2", Spec: "closes the connection on a second CONNECT",
			Reason: "RabbitMQ 3.10.8 answers a second CONNECT on the connection with a second CONNACK 0"},
		{ID: "rabbitmq-subscribe-unchecked", Statement: "MQTT-4.7.3-1", Spec: "closes the connection on a zero-length topic filter",
			Reason: "RabbitMQ 3.10.8 grants an empty topic filter (SUBACK 0)"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-4.7.3-1", Spec: "closes the connection on a zero-length topic name",
			Reason: "RabbitMQ 3.10.8 accepts a PUBLISH with an empty topic name and keeps the connection"},
		{ID: "rabbitmq-subscribe-unchecked", Statement: "MQTT-3.10.3-2", Spec: "closes the connection on an UNSUBSCRIBE with no topic filter",
			Reason: "RabbitMQ 3.10.8 answers an UNSUBSCRIBE with no topic filter with UNSUBACK"},
		{ID: "rabbitmq-subscribe-unchecked", Statement: "MQTT-2.3.1-1", Spec: "closes the connection on an UNSUBSCRIBE with packet identifier 0",
			Reason: "RabbitMQ 3.10.8 answers an UNSUBSCRIBE with packet identifier 0 with UNSUBACK 0"},
		{ID: "rabbitmq-malformed-accepted", Statement: "MQTT-1.5.3-1", Spec: "closes the connection on ill-formed UTF-8 in a topic name or filter",
			Reason: "RabbitMQ 3.10.8 accepts a PUBLISH whose topic is ill-formed UTF-8 and keeps the connection"},
		{ID: "rabbitmq-connect-unchecked", Statement: "MQTT-1.5.3-2", Spec: "closes without CONNACK on U+0000 in the ClientId",
			Reason: "RabbitMQ 3.10.8 accepts a client identifier holding U+0000 (CONNACK 0)"},
		{ID: "rabbitmq-connect-unchecked", Statement: "MQTT-3.1.2-3", Spec: "closes without CONNACK on a CONNECT whose reserved flag is set",
			Reason: "RabbitMQ 3.10.8 accepts a CONNECT whose reserved flag bit is set (CONNACK 0)"},
		{ID: "rabbitmq-connect-unchecked", Statement: "MQTT-3.1.4-1", Spec: "closes without CONNACK on a CONNECT with Will QoS 1 without the Will Flag",
			Reason: "RabbitMQ 3.10.8 accepts Will QoS 1 without the Will Flag (CONNACK 0)"},
		{ID: "rabbitmq-connect-unchecked", Statement: "MQTT-3.1.4-1", Spec: "closes without CONNACK on a CONNECT with Will QoS 3",
			Reason: "RabbitMQ 3.10.8 accepts Will QoS 3 (CONNACK 0)"},
		{ID: "rabbitmq-connect-unchecked", Statement: "MQTT-3.1.4-1", Spec: "closes without CONNACK on a CONNECT with Will Retain without the Will Flag",
			Reason: "RabbitMQ 3.10.8 accepts Will Retain without the Will Flag (CONNACK 0)"},
		{ID: "rabbitmq-connect-unchecked", Statement: "MQTT-3.1.4-1", Spec: "closes without CONNACK on a CONNECT with a will topic holding a wildcard",
			Reason: "RabbitMQ 3.10.8 accepts a will topic holding a wildcard (CONNACK 0)"},
		{ID: "rabbitmq-connect-unchecked", Statement: "MQTT-3.1.4-1", Spec: "closes without CONNACK on a CONNECT with the Password Flag without the User Name Flag",
			Reason: "RabbitMQ 3.10.8 answers a password without a user name with CONNACK 4 (bad user name or password) instead of closing without CONNACK"},
		{ID: "rabbitmq-keepalive-late", Statement: "MQTT-3.1.2-24", Spec: "disconnects a client silent for 1.5 times its keepalive, not before the keepalive",
			Reason: "RabbitMQ 3.10.8 closes a client silent with keepalive 1 s only after about 3 s (1.5 x keepalive is 1.5 s; the suite allows 1.5 s more)"},
		{ID: "rabbitmq-sys-topics", Statement: "MQTT-4.7.2-1", Spec: "does not match topics starting with '$' by filters starting with '#' or '+'",
			Reason: "RabbitMQ 3.10.8 delivers a message on a topic starting with $ to a subscriber of a filter starting with '#' or '+'"},
		{ID: "rabbitmq-will-on-violation", Statement: "MQTT-3.1.2-8", Spec: "publishes the will when it closes the connection after a PUBLISH with QoS 3",
			Reason: "RabbitMQ 3.10.8 closes the connection on a PUBLISH with QoS 3 but does not publish the will"},
		{ID: "rabbitmq-will-on-violation", Statement: "MQTT-3.1.2-8", Spec: "publishes the will when it closes the connection after a SUBSCRIBE with flags 0000",
			Reason: "RabbitMQ 3.10.8 closes the connection on a SUBSCRIBE with flags 0000 (a frame it cannot parse) without publishing the will"},
		{ID: "rabbitmq-will-on-violation", Statement: "MQTT-3.1.2-8", Spec: "publishes the will when it closes the connection after a second CONNECT",
			Reason: "RabbitMQ 3.10.8 answers a second CONNECT with CONNACK instead of closing, so no will is published"},
		{ID: "rabbitmq-protocol-level", Statement: "MQTT-3.1.2-2", Spec: "refuses an unsupported protocol level with CONNACK 0x01, session present 0, then closes",
			Reason: "RabbitMQ 3.10.8 closes the connection on protocol level 9 without CONNACK 0x01 (a framing error to it)"},
		{ID: "rabbitmq-subscription-replace", Statement: "MQTT-3.8.4-3", Spec: "replaces an identical subscription, resending retained messages without doubling deliveries",
			Reason: "RabbitMQ 3.10.8 keeps the first subscription beside the second to the same filter: a later message arrives twice, at QoS 0 and QoS 1"},
		{ID: "rabbitmq-retained-wildcard", Statement: "MQTT-3.3.1-6", Spec: "sends retained messages of every topic a new wildcard subscription matches",
			Reason: "RabbitMQ 3.10.8 sends no retained message to a new wildcard subscription (its retained store is looked up by exact topic)"},
		{ID: "rabbitmq-dup-forwarded", Statement: "MQTT-3.3.1-3", Spec: "sets DUP on outgoing PUBLISH only for its own retransmissions, whatever the incoming DUP",
			Reason: "RabbitMQ 3.10.8 forwards DUP 1 from the publisher on the first delivery to a subscriber"},
	},
	// NATS 2.9.10's MQTT listener (docs/deviations.md#nats-...): it maps MQTT
	// onto NATS subjects and JetStream, and validates little of what MQTT
	// itself forbids.
	"nats": {
		{ID: "nats-malformed-accepted", Statement: "MQTT-2.2.2-2", Spec: "PINGREQ with a reserved flag bit set",
			Reason: "NATS 2.9.10 answers a PINGREQ with flags 0001 with PINGRESP instead of closing"},
		{ID: "nats-malformed-accepted", Statement: "MQTT-2.2.2-2", Spec: "PUBACK with a reserved flag bit set",
			Reason: "NATS 2.9.10 ignores a PUBACK with flags 0010 instead of closing"},
		{ID: "nats-malformed-accepted", Statement: "MQTT-4.8.0-1", Spec: "PINGREQ with",
			Reason: "NATS 2.9.10 answers a PINGREQ with a reserved flag or a body with PINGRESP instead of closing"},
		{ID: "nats-malformed-accepted", Statement: "MQTT-3.3.1-2", Spec: "QoS 0 PUBLISH with DUP set",
			Reason: "NATS 2.9.10 accepts a QoS 0 PUBLISH with DUP 1 and keeps the connection"},
		{ID: "nats-malformed-accepted", Statement: "MQTT-2.3.1-1", Spec: "SUBSCRIBE with packet identifier 0",
			Reason: "NATS 2.9.10 answers a SUBSCRIBE or UNSUBSCRIBE with packet identifier 0 (SUBACK/UNSUBACK 0) instead of closing"},
		{ID: "nats-topic-rules", Statement: "MQTT-1.5.3-2", Spec: "U+0000 in a topic name",
			Reason: "NATS 2.9.10 accepts a PUBLISH whose topic holds U+0000 and keeps the connection"},
		{ID: "nats-topic-rules", Statement: "MQTT-4.7.3-2", Spec: "U+0000 in a topic name",
			Reason: "NATS 2.9.10 accepts a PUBLISH whose topic holds U+0000 and keeps the connection"},
		{ID: "nats-topic-rules", Statement: "MQTT-1.5.3-1", Spec: "ill-formed UTF-8 in a topic",
			Reason: "NATS 2.9.10 accepts a PUBLISH whose topic is ill-formed UTF-8 and keeps the connection"},
		{ID: "nats-topic-rules", Statement: "MQTT-4.7.1-2", Spec: "'#' not last",
			Reason: "NATS 2.9.10 answers a filter with '#' not last with SUBACK 0x80 and keeps the connection (3.1.1 asks for a close)"},
		{ID: "nats-topic-rules", Statement: "MQTT-4.7.1-3", Spec: "'+' not filling",
			Reason: "NATS 2.9.10 grants a filter with '+' inside a level (a+) instead of closing"},
		{ID: "nats-topic-rules", Statement: "MQTT-4.7.3-4", Spec: "matches topics as they are",
			Reason: "NATS 2.9.10 closes the connection on a topic with a space (NATS subjects cannot hold one)"},
		{ID: "nats-connect-checks", Statement: "MQTT-1.5.3-2", Spec: "U+0000 in the ClientId",
			Reason: "NATS 2.9.10 accepts a client identifier holding U+0000 (CONNACK 0)"},
		{ID: "nats-connect-checks", Statement: "MQTT-3.1.4-1", Spec: "U+0000 in the ClientId",
			Reason: "NATS 2.9.10 accepts a client identifier holding U+0000 (CONNACK 0)"},
		{ID: "nats-connect-checks", Statement: "MQTT-3.1.4-1", Spec: "cut short by its remaining length",
			Reason: "NATS 2.9.10 answers CONNACK 0 to a CONNECT whose fields run past its remaining length"},
		{ID: "nats-sys-topics", Statement: "MQTT-4.7.2-1", Spec: "topics starting with '$'",
			Reason: "NATS 2.9.10 delivers its internal $MQTT/sess/... session records to a '#' subscriber"},
		{ID: "nats-resend-slow", Statement: "MQTT-4.4.0-1", Spec: "resends an unacknowledged QoS 1 PUBLISH",
			Reason: "NATS 2.9.10 does not answer the reconnect's CONNECT within 5 s while it moves the session (JetStream)"},
		{ID: "nats-resend-slow", Statement: "MQTT-3.3.1-1", Spec: "resends an unacknowledged QoS 1 PUBLISH",
			Reason: "NATS 2.9.10 does not answer the reconnect's CONNECT within 5 s while it moves the session (JetStream)"},
	},
}

// Explains returns the deviation declared for table (a key of Deviations)
// that explains a failed scenario assertion citing statements: its
// Statement is cited, and so is its With when it has one. ok is false when
// none does.
func Explains(table string, statements []string) (Deviation, bool) {
	for _, d := range Deviations[table] {
		if slices.Contains(statements, d.Statement) && (d.With == "" || slices.Contains(statements, d.With)) {
			return d, true
		}
	}
	return Deviation{}, false
}

// DeviationTable checks that name is a table of Deviations, for a flag
// that lets a target reached by address (a Mosquitto the user runs) carry
// a known broker's deviations.
func DeviationTable(name string) error {
	if _, ok := Deviations[name]; ok {
		return nil
	}
	known := make([]string, 0, len(Deviations))
	for k := range Deviations {
		known = append(known, k)
	}
	slices.Sort(known)
	return fmt.Errorf("no deviations declared for %q (known: %s)", name, strings.Join(known, ", "))
}
