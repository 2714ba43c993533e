package targets

import (
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
	return &Container{
		TargetName: "mosquitto",
		Image:      imageFromEnv(MosquittoImageEnv, DefaultMosquittoImage),
		ImageEnv:   MosquittoImageEnv,
		Ports:      map[string]ContainerPort{"tcp": {Port: "1883/tcp"}},
		Files: []File{
			{Path: "/mosquitto/config/mosquitto.conf", Content: append(append([]byte(nil), mosquittoConf...), "acl_file /mosquitto/config/acl\n"...)},
			{Path: "/mosquitto/config/acl", Content: []byte(ACLFile)},
		},
		// The official image's entrypoint script only fixes ownership of
		// directories this config does not use; the local image has no shell.
		Entrypoint: []string{"/usr/sbin/mosquitto"},
		Cmd:        []string{"-c", "/mosquitto/config/mosquitto.conf"},
		WaitLog:    " running",
		Caps: Capabilities{MaxQoS: 2, Retain: true, Wildcards: true, MQTT5: true,
			EmptyClientID: true, PersistentSessions: true, Restartable: true, ACL: true,
			SharedSubscriptions: true, SubscriptionIDs: true},
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
			SharedSubscriptions: true, SubscriptionIDs: true},
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
