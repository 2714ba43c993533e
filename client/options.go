package client

import (
	"crypto/tls"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Defaults applied by Connect to zero-valued Options fields.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultMaxInflight    = 65535
	DefaultMessageBuffer  = 256
	minPingTimeout        = time.Second
)

// Options configure a Client. The zero value connects with MQTT 3.1.1, an
// empty client ID, a persistent session and no keepalive.
type Options struct {
	// ClientID is sent in CONNECT; it also labels every event.
	ClientID string
	// ProtocolLevel is packet.V31, packet.V311 (default) or packet.V5.
	ProtocolLevel byte
	// CleanSession asks the broker to discard any previous session (Clean Start in MQTT 5).
	CleanSession bool
	// KeepAlive is sent in whole seconds (rounded up); zero disables keepalive.
	KeepAlive time.Duration
	// Username is sent when HasUsername is set or Username is not empty.
	Username string
	// HasUsername sends the user name even when it is empty.
	HasUsername bool
	// Password is sent when HasPassword is set or Password is not nil.
	Password []byte
	// HasPassword sends the password even when it is empty.
	HasPassword bool
	// Will is the will message; nil sends none.
	Will *packet.Will
	// Props are the MQTT 5 CONNECT properties; ignored for other levels.
	Props *packet.Properties
	// Auth, with MQTT 5, authenticates with an enhanced authentication
	// method (SCRAM for SCRAM-SHA-256): CONNECT carries its Authentication
	// Method and data (replacing any in Props), the handshake answers the
	// server's AUTH packets, and Reauthenticate repeats the exchange.
	// Ignored for other levels.
	Auth Authenticator
	// ConnectTimeout bounds the CONNECT -> CONNACK exchange (default 10 s), on
	// top of any deadline in the context given to Connect.
	ConnectTimeout time.Duration
	// PingTimeout is how long to wait for PINGRESP before declaring the link
	// dead; default KeepAlive, at least 1 s.
	PingTimeout time.Duration
	// MaxInflight bounds outgoing QoS 1/2 publishes awaiting their final ack;
	// a publisher waits (honouring its context) while the window is full.
	// Default and maximum 65535.
	MaxInflight int
	// MaxPacketSize refuses incoming packets larger than this (fixed header
	// included); zero means no limit.
	MaxPacketSize int
	// Events receives the client's events; nil costs nothing.
	Events events.Sink
	// Device is copied into every event (simulator device index + 1).
	Device int
	// OnMessage is called from the reader goroutine for every delivered
	// PUBLISH, before it is acknowledged; it must not block for long. It may
	// call PublishAsync but must not wait for acks (Publish with QoS > 0,
	// Token.Wait, Subscribe), Close or Disconnect: only this goroutine reads
	// what they wait for. When nil, messages go to the buffered channel
	// returned by Messages.
	OnMessage func(*packet.Publish)
	// MessageBuffer is the capacity of the Messages channel (default 256).
	// When it is full the reader waits, which back-pressures the broker.
	MessageBuffer int
	// OnConnectionLost is called once, from the reader goroutine after Done
	// is closed, when the link ends for any reason but Close or Disconnect.
	OnConnectionLost func(error)
	// TopicAliases, with MQTT 5, has the client send Topic Aliases on its
	// PUBLISHes, up to the Topic Alias Maximum the server's CONNACK gives
	// (none when it gives none or 0): the first topics published on a
	// connection get aliases 1, 2, ... in order, and later PUBLISHes on
	// them go out with an empty topic (alias_out.go). Ignored for other
	// levels. A publish whose props carry a Topic Alias is then refused.
	TopicAliases bool
	// Session, when set, carries the session state across connections: the
	// QoS 1/2 messages in flight are resent after a CONNACK with Session
	// Present 1, and QoS 2 messages received are not delivered twice (see
	// Session). Nil keeps no state beyond this connection.
	Session *Session
	// Bridge marks the connection as a bridge's (3.1 and 3.1.1 only): the
	// protocol level goes out with its top bit set, as Mosquitto's
	// try_private does, and a broker that knows the mark does not send the
	// bridge its own messages back (packet.Connect.Bridge).
	Bridge bool
	// TLSConfig is used by Dial for "tls://", "ssl://" and "wss://" addresses.
	TLSConfig *tls.Config
}

// keepAliveSeconds converts KeepAlive to the wire value, rounding up so the
// broker never expects packets more often than we send them.
func (o *Options) keepAliveSeconds() uint16 {
	if o.KeepAlive <= 0 {
		return 0
	}
	s := (o.KeepAlive + time.Second - 1) / time.Second
	if s > 65535 {
		s = 65535
	}
	return uint16(s)
}

// withDefaults returns a copy of o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.ProtocolLevel == 0 {
		o.ProtocolLevel = packet.V311
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxInflight <= 0 || o.MaxInflight > DefaultMaxInflight {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.MessageBuffer <= 0 {
		o.MessageBuffer = DefaultMessageBuffer
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = time.Duration(o.keepAliveSeconds()) * time.Second
	}
	if o.PingTimeout < minPingTimeout {
		o.PingTimeout = minPingTimeout
	}
	return o
}

// connectPacket builds the CONNECT packet the options describe.
func (o *Options) connectPacket() *packet.Connect {
	name := "MQTT"
	if o.ProtocolLevel == packet.V31 {
		name = "MQIsdp"
	}
	c := &packet.Connect{
		ProtocolName:  name,
		ProtocolLevel: o.ProtocolLevel,
		CleanSession:  o.CleanSession,
		KeepAlive:     o.keepAliveSeconds(),
		ClientID:      o.ClientID,
		Will:          o.Will,
		UsernameFlag:  o.HasUsername || o.Username != "",
		Username:      o.Username,
		PasswordFlag:  o.HasPassword || o.Password != nil,
		Password:      o.Password,
		Bridge:        o.Bridge,
	}
	if o.ProtocolLevel == packet.V5 {
		c.Props = o.Props
	}
	return c
}
