package targets

import (
	"bytes"
	_ "embed"
	"os"
	"time"
)

// Image defaults are the official names users have; the environment
// variables point a target at a locally built image instead.
const (
	DefaultMosquittoImage = "eclipse-mosquitto:2"
	MosquittoImageEnv     = "MQTTFLEET_MOSQUITTO_IMAGE"
	DefaultEMQXImage      = "emqx/emqx:5"
	EMQXImageEnv          = "MQTTFLEET_EMQX_IMAGE"
)

// mosquittoConf is the config the suite runs Mosquitto with: one listener on
// every interface of the container, anonymous access, no persistence, and
// all log types on stderr so the logs show the packet trace of a failure.
//
//go:embed mosquitto.conf
var mosquittoConf []byte

// NewMosquitto returns the Mosquitto container target: the image in
// $MQTTFLEET_MOSQUITTO_IMAGE, else eclipse-mosquitto:2, run with the suite's
// config at /mosquitto/config/mosquitto.conf (the path both the official
// image and the locally built one read).
func NewMosquitto() *Container {
	conf := append(append([]byte(nil), mosquittoConf...), "acl_file /mosquitto/config/acl\n"...)
	return &Container{
		TargetName: "mosquitto",
		Image:      imageFromEnv(MosquittoImageEnv, DefaultMosquittoImage),
		ImageEnv:   MosquittoImageEnv,
		Ports:      map[string]ContainerPort{"tcp": {Port: "1883/tcp"}},
		Files: []File{
			{Path: "/mosquitto/config/mosquitto.conf", Content: conf},
			{Path: "/mosquitto/config/acl", Content: []byte(ACLFile)},
		},
		PersistFiles: []File{{Path: "/mosquitto/config/mosquitto.conf", Content: mosquittoPersistConf(conf)}},
		BridgeConf:   "/mosquitto/config/mosquitto.conf",
		// The official image's entrypoint script only fixes ownership of
		// directories this config does not use; the local image has no shell.
		Entrypoint: []string{"/usr/sbin/mosquitto"},
		Cmd:        []string{"-c", "/mosquitto/config/mosquitto.conf"},
		WaitLog:    " running",
		Caps: Capabilities{MaxQoS: 2, Retain: true, Wildcards: true, MQTT5: true,
			EmptyClientID: true, PersistentSessions: true, Restartable: true, ACL: true,
			SharedSubscriptions: true, SubscriptionIDs: true, Kill: true, Persistence: true, Bridges: true},
	}
}

// NewEMQX returns the EMQX container target: the image in
// $MQTTFLEET_EMQX_IMAGE, else emqx/emqx:5, with its default listeners (MQTT
// on 1883, WebSocket on 8083 at /mqtt). Where the image is absent the target
// is unavailable and suites skip it with that reason.
func NewEMQX() *Container {
	return &Container{
		TargetName: "emqx",
		Image:      imageFromEnv(EMQXImageEnv, DefaultEMQXImage),
		ImageEnv:   EMQXImageEnv,
		Ports: map[string]ContainerPort{
			"tcp": {Port: "1883/tcp"},
			"ws":  {Port: "8083/tcp", Path: "/mqtt"},
		},
		Caps: Capabilities{MaxQoS: 2, Retain: true, Wildcards: true, WebSocket: true, MQTT5: true,
			EmptyClientID: true, PersistentSessions: true, Restartable: true,
			SharedSubscriptions: true, SubscriptionIDs: true, Kill: true},
		// EMQX 5 prints "EMQX <version> is running now!" once its listeners serve.
		WaitLog:        "is running now",
		StartupTimeout: 120 * time.Second,
	}
}

func imageFromEnv(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// mosquittoPersistConf turns Mosquitto's own persistence on in conf, as
// safely against a kill -9 as Mosquitto allows. Mosquitto keeps its state in
// memory and writes the whole database file at autosave points, never per
// message; autosave_on_changes with autosave_interval 1 writes it after every
// change (a retained message, a subscription, a queued message), which is
// the nearest it has to the reference broker's sync: every_write. The
// PUBACK is still sent before that write, so a kill in between loses the
// message (docs/deviations.md). /tmp/ is writable by the user the broker
// runs as in both images, and lives in the container's own filesystem, so
// it survives a stop and start (or kill and start) of the same container.
func mosquittoPersistConf(conf []byte) []byte {
	out := bytes.Replace(conf, []byte("persistence false\n"), nil, 1)
	return append(out, "persistence true\npersistence_location /tmp/\nautosave_interval 1\nautosave_on_changes true\n"...)
}

// NATS defaults: no official image carries our config, so the default is
// the locally built one (scripts/images/nats.sh, from Debian's nats-server).
const (
	DefaultNATSImage = "mqttfleet/nats:2.9.10"
	NATSImageEnv     = "MQTTFLEET_NATS_IMAGE"
)

// natsConf runs NATS with its MQTT listener (JetStream on, as MQTT needs).
//
//go:embed nats.conf
var natsConf []byte

// NewNATS returns the NATS server target with its MQTT listener: MQTT
// 3.1.1 only, QoS 0 and 1 (a QoS 2 subscription is granted QoS 1; a QoS 2
// PUBLISH is refused), retained messages, wills and persistent sessions
// kept in JetStream.
func NewNATS() *Container {
	return &Container{
		TargetName: "nats",
		Image:      imageFromEnv(NATSImageEnv, DefaultNATSImage),
		ImageEnv:   NATSImageEnv,
		Ports:      map[string]ContainerPort{"tcp": {Port: "1883/tcp"}},
		Files:      []File{{Path: "/etc/nats/mqttfleet.conf", Content: natsConf}},
		Entrypoint: []string{"/usr/sbin/nats-server"},
		Cmd:        []string{"-c", "/etc/nats/mqttfleet.conf"},
		WaitLog:    "Server is ready",
		Caps: Capabilities{MaxQoS: 1, Retain: true, Wildcards: true,
			PersistentSessions: true, Restartable: true, Kill: true},
	}
}

// RabbitMQ defaults: the locally built image (scripts/images/rabbitmq.sh,
// from Debian's rabbitmq-server with the rabbitmq_mqtt plugin on).
const (
	DefaultRabbitMQImage = "mqttfleet/rabbitmq:3.10.8"
	RabbitMQImageEnv     = "MQTTFLEET_RABBITMQ_IMAGE"
)

// rabbitmqConf runs RabbitMQ's MQTT plugin with anonymous clients as guest.
//
//go:embed rabbitmq.conf
var rabbitmqConf []byte

// NewRabbitMQ returns the RabbitMQ target with its MQTT plugin: MQTT 3.1.1
// only (5.0 came in RabbitMQ 3.13), QoS 0 and 1 (a QoS 2 subscription is
// granted QoS 1), retained messages (in a per-node store), wills, and
// persistent sessions as durable queues.
func NewRabbitMQ() *Container {
	return &Container{
		TargetName: "rabbitmq",
		Image:      imageFromEnv(RabbitMQImageEnv, DefaultRabbitMQImage),
		ImageEnv:   RabbitMQImageEnv,
		Ports:      map[string]ContainerPort{"tcp": {Port: "1883/tcp"}},
		Files:      []File{{Path: "/etc/rabbitmq/rabbitmq.conf", Content: rabbitmqConf}},
		WaitLog:    "Server startup complete",
		// Erlang boots, then the MQTT plugin waits for a Raft election.
		StartupTimeout: 120 * time.Second,
		Caps: Capabilities{MaxQoS: 1, Retain: true, Wildcards: true,
			PersistentSessions: true, Restartable: true, Kill: true},
	}
}
