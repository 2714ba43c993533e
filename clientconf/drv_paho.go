package clientconf

import (
	"context"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttfleet/mqttfleet/packet"
)

// Paho drives github.com/eclipse/paho.mqtt.golang with its defaults, as a
// device's firmware would use it: its own keepalive and ping timeout, its
// own auto-reconnect (first wait 1 s, doubling to MaxReconnectInterval),
// its in-memory store for resending in-flight messages after a reconnect.
type Paho struct{}

// Name is "paho.mqtt.golang".
func (Paho) Name() string { return "paho.mqtt.golang" }

// Protocols: paho.mqtt.golang speaks 3.1.1 only (5.0 is a separate module).
func (Paho) Protocols() []byte { return []byte{packet.V311} }

// Available is always nil: the library is linked in.
func (Paho) Available() error { return nil }

// Run connects with paho and does the job.
func (Paho) Run(ctx context.Context, job Job) (Received, error) {
	var (
		mu   sync.Mutex
		got  Received
		subs sync.WaitGroup // the goroutines waiting on SUBSCRIBE tokens
	)
	defer subs.Wait() // each ends within 10 s, sooner once the client is disconnected
	subscribe := func(c mqtt.Client) {
		if len(job.Subscribe) == 0 {
			return
		}
		filters := map[string]byte{}
		for _, s := range job.Subscribe {
			filters[s.Filter] = s.QoS
		}
		tok := c.SubscribeMultiple(filters, nil)
		subs.Add(1)
		go func() { // paho's callbacks must not block on a token
			defer subs.Done()
			if tok.WaitTimeout(10*time.Second) && tok.Error() == nil && len(job.Unsubscribe) > 0 {
				c.Unsubscribe(job.Unsubscribe...)
			}
		}()
	}
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + job.Addr).
		SetClientID(job.ClientID).
		SetCleanSession(job.Clean).
		SetKeepAlive(job.KeepAlive).
		SetProtocolVersion(uint(job.Protocol)).
		SetAutoReconnect(job.Reconnect).
		SetConnectRetry(job.Reconnect).
		SetOnConnectHandler(subscribe).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			mu.Lock()
			got = append(got, Msg{Topic: m.Topic(), QoS: m.Qos(), Retain: m.Retained(), Payload: string(m.Payload())})
			mu.Unlock()
		})
	if job.Username != "" {
		o.SetUsername(job.Username)
		o.SetPassword(job.Password)
	}
	if job.Will != nil {
		o.SetWill(job.Will.Topic, job.Will.Payload, job.Will.QoS, job.Will.Retain)
	}
	c := mqtt.NewClient(o)
	result := func() Received {
		mu.Lock()
		defer mu.Unlock()
		return append(Received(nil), got...)
	}
	tok := c.Connect()
	// With ConnectRetry the token completes on the first success only.
	select {
	case <-tok.Done():
	case <-ctx.Done():
		c.Disconnect(0)
		return result(), nil
	}
	if tok.Error() != nil {
		return result(), nil // refused, and paho does not retry a refused first connection
	}
	var toks []mqtt.Token
	for _, m := range job.Publish {
		toks = append(toks, c.Publish(m.Topic, m.QoS, m.Retain, m.Payload))
	}
	if job.DisconnectEarly {
		for _, t := range toks {
			select {
			case <-t.Done():
			case <-ctx.Done():
			}
		}
		c.Disconnect(250)
		return result(), nil
	}
	tick, stop := busyTicks(job)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			if job.Disconnect {
				c.Disconnect(250)
			} else {
				c.Disconnect(0)
			}
			return result(), nil
		case <-tick:
			c.Publish(job.Topic, 0, false, "busy")
		}
	}
}
