package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/xdg-go/scram"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 enhanced authentication (section 4.12), client side: with
// Options.Auth set, CONNECT carries the Authentication Method and the
// method's first data, the handshake answers each AUTH 0x18 (Continue) of
// the server with one of its own, and a successful CONNACK must name the
// same method and pass the method's check of the server (for SCRAM, the
// server signature). Reauthenticate repeats the exchange on a live link.

// Authenticator is the client side of an enhanced authentication method.
type Authenticator interface {
	// Method is the Authentication Method name, e.g. "SCRAM-SHA-256".
	Method() string
	// Start begins one exchange (at CONNECT or Reauthenticate).
	Start() (AuthExchange, error)
}

// AuthExchange is one conversation of an Authenticator.
type AuthExchange interface {
	// Step returns the client's next Authentication Data: called with nil
	// for the data of CONNECT or AUTH 0x19, then with the data of each AUTH
	// 0x18 from the server.
	Step(in []byte) (out []byte, err error)
	// Finish checks the data the server sent with its success (CONNACK
	// 0x00 or AUTH 0x00); an error fails the connection.
	Finish(in []byte) error
}

// ErrAuth: the server's side of an enhanced authentication failed the
// method's check, or its AUTH packets broke the exchange.
var ErrAuth = errors.New("mqtt client: enhanced authentication failed")

// SCRAM returns the SCRAM-SHA-256 (RFC 5802, RFC 7677) authenticator for
// user and password. The server must store at least 4096 iterations.
func SCRAM(user, password string) Authenticator {
	return scramAuth{user: user, password: password}
}

type scramAuth struct{ user, password string }

func (scramAuth) Method() string { return "SCRAM-SHA-256" }

func (a scramAuth) Start() (AuthExchange, error) {
	c, err := scram.SHA256.NewClient(a.user, a.password, "")
	if err != nil {
		return nil, fmt.Errorf("SCRAM-SHA-256: %w", err)
	}
	return &scramExchange{conv: c.WithMinIterations(4096).NewConversation()}, nil
}

type scramExchange struct{ conv *scram.ClientConversation }

func (x *scramExchange) Step(in []byte) ([]byte, error) {
	out, err := x.conv.Step(string(in))
	if err != nil {
		return nil, fmt.Errorf("SCRAM-SHA-256: %w", err)
	}
	if x.conv.Done() {
		return nil, fmt.Errorf("SCRAM-SHA-256: the server sent a final message in AUTH Continue: %w", ErrAuth)
	}
	return []byte(out), nil
}

func (x *scramExchange) Finish(in []byte) error {
	if x.conv.Done() {
		return fmt.Errorf("SCRAM-SHA-256: exchange already finished: %w", ErrAuth)
	}
	// The server's final message carries its signature: without it, or
	// with a wrong one, the server did not prove it knows our key.
	if _, err := x.conv.Step(string(in)); err != nil || !x.conv.Valid() {
		return fmt.Errorf("SCRAM-SHA-256: server not verified (%v): %w", err, ErrAuth)
	}
	return nil
}

// reauthState is a re-authentication in progress: the reader hands each
// AUTH the server sends to the waiting Reauthenticate. Kept out of line;
// most clients never re-authenticate.
type reauthState struct {
	mu  sync.Mutex
	in  chan *packet.Auth // one slot: the server answers one AUTH at a time
	run bool              // a Reauthenticate is waiting on in
}

// startAuth builds the CONNECT properties of an enhanced authentication:
// the caller's properties (copied, never changed) plus the method and its
// first data.
func (c *Client) startAuth(cp *packet.Connect) (AuthExchange, error) {
	a := c.opts.Auth
	x, err := a.Start()
	if err != nil {
		return nil, err
	}
	data, err := x.Step(nil)
	if err != nil {
		return nil, err
	}
	props := packet.Properties{}
	if cp.Props != nil {
		props = *cp.Props
	}
	props.AuthMethod, props.HasAuthMethod, props.AuthData = a.Method(), true, data
	cp.Props = &props
	return x, nil
}

// authContinue answers one AUTH of the server during an exchange: it must
// be 0x18 with our method [MQTT-4.12.0-2] [MQTT-4.12.0-5]; the answer is
// AUTH 0x18 with the method's next data [MQTT-4.12.0-3].
func (c *Client) authContinue(x AuthExchange, p *packet.Auth) (*packet.Auth, error) {
	method := c.opts.Auth.Method()
	if c.sink != nil {
		c.emit(events.Event{Kind: events.Auth, Code: int(p.ReasonCode), Detail: method + ": AUTH received"})
	}
	if p.ReasonCode != 0x18 {
		return nil, fmt.Errorf("AUTH reason 0x%02x from the server, want 0x18 (Continue): %w", p.ReasonCode, ErrProtocol)
	}
	if p.Props == nil || !p.Props.HasAuthMethod || p.Props.AuthMethod != method {
		return nil, fmt.Errorf("AUTH without our Authentication Method %s: %w", strconv.Quote(method), ErrProtocol)
	}
	out, err := x.Step(p.Props.AuthData)
	if err != nil {
		return nil, err
	}
	return &packet.Auth{ReasonCode: 0x18, Props: &packet.Properties{AuthMethod: method, HasAuthMethod: true, AuthData: out}}, nil
}

// authFinish checks the success (CONNACK 0x00 or AUTH 0x00) that ends an
// exchange: it names our method [MQTT-4.12.0-5] and passes the method's check.
func (c *Client) authFinish(x AuthExchange, props *packet.Properties) error {
	method := c.opts.Auth.Method()
	if props == nil || !props.HasAuthMethod || props.AuthMethod != method {
		return fmt.Errorf("success without our Authentication Method %s: %w", strconv.Quote(method), ErrAuth)
	}
	return x.Finish(props.AuthData)
}

// Reauthenticate runs the enhanced authentication of Options.Auth again on
// the live connection (MQTT 5.0 section 4.12.1): AUTH 0x19, then AUTH 0x18
// both ways until the server answers AUTH 0x00. Other operations go on
// meanwhile. A server that refuses closes the connection (DISCONNECT 0x87,
// say): the error then wraps the link's end, a *ReasonError. MQTT cannot
// cancel a re-authentication, so one that ctx abandons, or that the server
// breaks, closes the connection too. One runs at a time.
func (c *Client) Reauthenticate(ctx context.Context) error {
	if c.opts.Auth == nil || c.version != packet.V5 {
		return errors.New("reauthenticate: needs MQTT 5 and Options.Auth")
	}
	ra := c.reauth
	ra.mu.Lock()
	if ra.run {
		ra.mu.Unlock()
		return errors.New("reauthenticate: a re-authentication is already running")
	}
	ra.run = true
	select {
	case <-ra.in: // a stray AUTH the server sent after the last exchange ended
	default:
	}
	ra.mu.Unlock()
	defer func() {
		ra.mu.Lock()
		ra.run = false
		ra.mu.Unlock()
	}()
	x, err := c.opts.Auth.Start()
	if err != nil {
		return fmt.Errorf("reauthenticate: %w", err)
	}
	data, err := x.Step(nil)
	if err != nil {
		return fmt.Errorf("reauthenticate: %w", err)
	}
	method := c.opts.Auth.Method()
	next := &packet.Auth{ReasonCode: 0x19, Props: &packet.Properties{AuthMethod: method, HasAuthMethod: true, AuthData: data}}
	for {
		if _, err := c.send(ctx, next); err != nil {
			return fmt.Errorf("reauthenticate: %w", err)
		}
		if c.sink != nil {
			c.emit(events.Event{Kind: events.Auth, Code: int(next.ReasonCode), Detail: method + ": AUTH sent"})
		}
		var p *packet.Auth
		select {
		case p = <-ra.in:
		case <-c.done:
			return fmt.Errorf("reauthenticate: %w", c.linkErr())
		case <-ctx.Done():
			c.fail(fmt.Errorf("re-authentication abandoned: %w", ctx.Err()), events.CauseShutdown)
			<-c.done
			return fmt.Errorf("reauthenticate: %w", ctx.Err())
		}
		if p.ReasonCode == 0x00 {
			if c.sink != nil {
				c.emit(events.Event{Kind: events.Auth, Code: 0, Detail: method + ": re-authenticated"})
			}
			if err := c.authFinish(x, p.Props); err != nil {
				c.fail(err, events.CauseViolation)
				<-c.done
				return fmt.Errorf("reauthenticate: %w", err)
			}
			return nil
		}
		if next, err = c.authContinue(x, p); err != nil {
			c.fail(err, events.CauseViolation)
			<-c.done
			return fmt.Errorf("reauthenticate: %w", err)
		}
	}
}

// onAuth hands an AUTH from the server to the running Reauthenticate; one
// nobody waits for breaks the protocol [MQTT-4.12.0-6].
func (c *Client) onAuth(p *packet.Auth) error {
	ra := c.reauth
	if ra != nil {
		ra.mu.Lock()
		run := ra.run
		ra.mu.Unlock()
		if run {
			select {
			case ra.in <- p:
				return nil
			default: // a second AUTH before we answered the first
			}
		}
	}
	return fmt.Errorf("unexpected AUTH 0x%02x from the broker: %w", p.ReasonCode, ErrProtocol)
}
