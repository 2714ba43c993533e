package simulator

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/simulator/profile"
)

// Driver connects one device to the broker with some MQTT client library.
// The native driver (package client) is lean, for scale; the paho driver
// shows what a widely used library really does, auto-reconnect included.
type Driver interface {
	// Name is "native" or "paho".
	Name() string
	// Connect dials and completes CONNECT -> CONNACK. A refused CONNACK
	// returns a *ConnackError. The returned Conn reports later events
	// through p.Handler.
	Connect(ctx context.Context, p *ConnectParams) (Conn, error)
}

// Conn is one live device connection.
type Conn interface {
	// Publish writes a message without waiting for its acknowledgement;
	// the ack arrives through Handler.Acked.
	Publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error
	// Subscribe sends one SUBSCRIBE and waits for its SUBACK; it returns the
	// granted QoS (0x80 for a refusal) per filter.
	Subscribe(ctx context.Context, subs []profile.Subscription) ([]byte, error)
	// Disconnect sends DISCONNECT and closes the link.
	Disconnect()
	// Drop closes the link without DISCONNECT, as a crashed device would.
	Drop()
}

// Handler receives what a Conn observes after Connect returned. Methods are
// called from the driver's goroutines and must not block.
type Handler interface {
	// Message is a delivered PUBLISH.
	Message(topic string, payload []byte, qos byte, dup, retain bool)
	// Acked is the completion of a QoS 1/2 publish flow, with its reason
	// code (PUBACK's, or PUBREC's for QoS 2; 0 before MQTT 5) and latency.
	Acked(qos, code byte, latency time.Duration)
	// Refused is an MQTT 5 ack refusing a publish: the packet that carried
	// the code (PUBACK, PUBREC or PUBCOMP) and the code, 0x80 or more.
	Refused(qos, code byte, pkt string)
	// Lost is the link ending by any cause but Disconnect or Drop.
	Lost(err error)
	// Reconnecting is a library's own reconnect attempt starting (paho).
	Reconnecting()
	// Reconnected is a library's own reconnect succeeding (paho
	// auto-reconnect), with its CONNECT -> CONNACK latency when known.
	Reconnected(latency time.Duration, sessionPresent bool)
}

// ConnectParams are what a driver needs to connect one device.
type ConnectParams struct {
	// Addr is host:port or a tcp://, ws://, tls:// or wss:// URL.
	Addr      string
	Transport profile.Transport
	TLS       *tls.Config
	// LocalAddr binds the source address when not nil (TCP and TLS).
	LocalAddr net.IP
	Device    int // global index
	ClientID  string
	Username  string
	Password  string
	Clean     bool
	KeepAlive time.Duration
	Protocol  int
	Will      *profile.Will // rendered
	// Props are the MQTT 5 CONNECT properties and PublishProps those of
	// every PUBLISH (rendered); nil for other protocol levels. Drivers that
	// speak no MQTT 5 ignore them (profile validation keeps them off).
	Props        *packet.Properties
	PublishProps *packet.Properties
	// Dial, when set, opens the transport instead of dialing Addr (a netem
	// proxy placing the device behind faults). TCP only.
	Dial func(ctx context.Context) (net.Conn, error)
	// Reconnect is handed to drivers that reconnect by themselves (paho).
	Reconnect profile.Reconnect
	Handler   Handler
	// Session is the device's client session when it uses persistent
	// sessions (Clean false), the same on every attempt, so the native
	// driver resends the device's unacknowledged messages after a
	// reconnect and does not deliver a resent QoS 2 message twice; nil
	// with clean sessions. Drivers with their own store ignore it (paho).
	Session *client.Session
	// TopicAliases has an MQTT 5 connection send Topic Aliases on its
	// PUBLISHes, within the broker's Topic Alias Maximum. A driver that
	// supports them reports each PUBLISH sent with one to the Handler when
	// it implements AliasObserver.
	TopicAliases bool
}

// AliasObserver is implemented by a Handler that counts Topic Aliases: a
// PUBLISH went out with an alias, set by it (fresh: topic and alias on the
// wire) or reused (an empty topic).
type AliasObserver interface {
	AliasSent(fresh bool)
}

// ConnackError is a refused CONNACK as a driver reports it.
type ConnackError struct {
	Code byte
	Err  error
}

// Error names the code.
func (e *ConnackError) Error() string { return e.Err.Error() }

// Unwrap returns the library's error.
func (e *ConnackError) Unwrap() error { return e.Err }

// dialTCP opens the TCP connection: through Dial when set, else from the
// source address to host.
func (p *ConnectParams) dialTCP(ctx context.Context, host string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial(ctx)
	}
	return p.dialer().DialContext(ctx, "tcp", host)
}

// dialer returns a net.Dialer bound to the params' source address.
func (p *ConnectParams) dialer() *net.Dialer {
	d := &net.Dialer{}
	if p.LocalAddr != nil {
		d.LocalAddr = &net.TCPAddr{IP: p.LocalAddr}
	}
	return d
}
