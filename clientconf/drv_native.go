package clientconf

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/packet"
)

// Native drives this module's own client (package client), the one the
// simulator's native devices use. Its reconnect is the simulator's: the
// first wait 1 s, doubling to 8 s, with ±50% jitter,
// reset only by a connection that lasted 10 s; the client.Session
// carries QoS 1/2 state across connections.
type Native struct{}

// Name is "mqttfleet client".
func (Native) Name() string { return "mqttfleet-client" }

// Protocols are 3.1.1 and 5.0.
func (Native) Protocols() []byte { return []byte{packet.V311, packet.V5} }

// Available is always nil: the client is built in.
func (Native) Available() error { return nil }

// Run connects, reconnecting with backoff and jitter when job.Reconnect.
func (Native) Run(ctx context.Context, job Job) (Received, error) {
	var (
		mu   sync.Mutex
		got  Received
		sess = client.NewSession()
		wait = time.Second
		once bool
	)
	opts := client.Options{
		ClientID: job.ClientID, ProtocolLevel: job.Protocol, CleanSession: job.Clean, KeepAlive: job.KeepAlive,
		Username: job.Username, HasUsername: job.Username != "",
		HasPassword:    job.Password != "",
		ConnectTimeout: 10 * time.Second,
		OnMessage: func(p *packet.Publish) {
			mu.Lock()
			got = append(got, Msg{Topic: p.Topic, QoS: p.QoS, Retain: p.Retain, Payload: string(p.Payload)})
			mu.Unlock()
		},
	}
	if job.Password != "" {
		opts.Password = []byte(job.Password)
	}
	if !job.Clean {
		opts.Session = sess
	}
	if job.Will != nil {
		opts.Will = &packet.Will{Topic: job.Will.Topic, Payload: []byte(job.Will.Payload), QoS: job.Will.QoS, Retain: job.Will.Retain}
	}
	result := func() Received {
		mu.Lock()
		defer mu.Unlock()
		return append(Received(nil), got...)
	}
	for {
		c, _, err := client.Dial(ctx, job.Addr, opts)
		if err == nil {
			up := time.Now()
			err = nativeSession(ctx, c, job, !once)
			once = true
			// Only a link that stayed up resets the backoff: one cut
			// right after CONNACK (a twin taking the ID, a broker that
			// drops the client) keeps it growing, so twins damp their loop.
			if time.Since(up) >= stableAfter {
				wait = time.Second
			}
		}
		if ctx.Err() != nil || !job.Reconnect || (err == nil && job.DisconnectEarly) {
			return result(), nil
		}
		select {
		case <-ctx.Done():
			return result(), nil
		case <-time.After(jitter(wait)):
		}
		wait = min(2*wait, 8*time.Second)
	}
}

// nativeSession runs one connection: subscribe, publish (the first time
// only), then wait for the end.
func nativeSession(ctx context.Context, c *client.Client, job Job, first bool) error {
	defer c.Close()
	if len(job.Subscribe) > 0 {
		subs := make([]packet.Subscription, len(job.Subscribe))
		for i, s := range job.Subscribe {
			subs[i] = packet.Subscription{Filter: s.Filter, QoS: s.QoS}
		}
		if _, err := c.Subscribe(ctx, subs...); err != nil {
			return err
		}
		if len(job.Unsubscribe) > 0 {
			if err := c.Unsubscribe(ctx, job.Unsubscribe...); err != nil {
				return err
			}
		}
	}
	if first {
		var toks []*client.Token
		for _, m := range job.Publish {
			toks = append(toks, c.PublishAsync(ctx, m.Topic, m.QoS, m.Retain, []byte(m.Payload)))
		}
		if job.DisconnectEarly {
			for _, t := range toks {
				if err := t.Wait(ctx); err != nil {
					return err
				}
			}
			return c.Disconnect(context.Background())
		}
	}
	tick, stop := busyTicks(job)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			if job.Disconnect {
				return c.Disconnect(context.Background())
			}
			return nil
		case <-c.Done():
			return errors.Join(errors.New("connection lost"), c.Err())
		case <-tick:
			c.PublishAsync(ctx, job.Topic, 0, false, []byte("busy"))
		}
	}
}

// stableAfter is how long a connection must last to reset the backoff.
const stableAfter = 10 * time.Second

// jitter spreads d by ±50%, so twin devices fall out of step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}
