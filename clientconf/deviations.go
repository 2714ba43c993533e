package clientconf

// Deviations are the declared departures of each client from a statement
// or behaviour, with the reason (docs/clients.md explains each with its
// trace). A failure declared here is a deviation, not a failure; a
// declaration that no longer reproduces is reported as stale.
var Deviations = map[string]map[string]string{
	"paho.mqtt.golang": {
		"MQTT-1.5.3-1":             "does not validate the UTF-8 of a received topic: a PUBLISH whose topic holds a surrogate is delivered and the connection kept",
		"MQTT-1.5.3-2":             "does not refuse U+0000 in a received topic: the PUBLISH is delivered and the connection kept",
		"MQTT-2.2.2-2":             "ignores the reserved flag bits of a received fixed header: PINGRESP 0xD1 is taken as a PINGRESP",
		"MQTT-3.3.1-4":             "does not refuse a received PUBLISH with QoS 3: the connection is kept",
		"MQTT-4.8.0-1":             "keeps the connection after each of the protocol violations above instead of closing it",
		"MQTT-4.3.3-1":             "after a reconnect resends a QoS 2 PUBLISH (DUP) whose PUBREC it had already received and answered with PUBREL, then sends the PUBREL again",
		"MQTT-4.6.0-1":             "resends unacknowledged QoS 2 PUBLISHes after a reconnect in an order of its store (IDs [2 1] for [1 2]), not the order they were first sent",
		"client:backoff-jitter":    "its reconnect waits are exactly 1, 2, 4, 8 s (after an immediate first retry): no jitter, so a fleet cut at once reconnects in step",
		"client:qos2-exactly-once": "hands a QoS 2 message to the application again when the server sends it a second time with DUP before PUBREL",
	},
	"mosquitto_sub/pub": {
		"MQTT-2.2.2-2":               "libmosquitto ignores the reserved flag bits of a received PINGRESP (0xD1)",
		"MQTT-4.8.0-1":               "libmosquitto keeps the connection after a PINGRESP with reserved flags set, and after a second CONNACK",
		"client:backoff-grows":       "mosquitto_sub reconnects every 1 s whatever happens (libmosquitto's default reconnect delay, no exponential backoff)",
		"client:backoff-jitter":      "mosquitto_sub's reconnect delay has no jitter",
		"client:closes-on-bad-input": "5.0: libmosquitto keeps the connection after a PINGRESP with reserved flags set",
		"client:twin-no-kick-loop":   "two mosquitto_sub with one client ID take it from each other about once a second for ever (fixed 1 s reconnect)",
	},
	"paho-mqtt-python": {
		"MQTT-1.5.3-2":               "paho-mqtt 1.6 decodes a received topic holding U+0000 and delivers it; the connection is kept",
		"MQTT-2.2.2-2":               "paho-mqtt 1.6 ignores the reserved flag bits of a received PINGRESP (0xD1)",
		"MQTT-4.8.0-1":               "paho-mqtt 1.6 keeps the connection after a PINGRESP with reserved flags set, after a topic with U+0000 and after a second CONNACK",
		"client:backoff-grows":       "paho-mqtt 1.6 resets its reconnect delay to the minimum at every CONNACK, so a link cut right after CONNACK is retried every 1 s",
		"client:backoff-jitter":      "paho-mqtt 1.6's reconnect delay has no jitter",
		"v5:MQTT-1.5.4-2":            "5.0: paho-mqtt 1.6 decodes a received topic holding U+0000 and delivers it; the connection is kept",
		"client:closes-on-bad-input": "5.0: paho-mqtt 1.6 keeps the connection after a PINGRESP with reserved flags set and after a topic with U+0000",
		"client:twin-no-kick-loop":   "two paho-mqtt 1.6 clients with one client ID take it from each other about once a second for ever (delay reset at every CONNACK)",
	},
}
