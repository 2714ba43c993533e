package broker

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mqttfleet/mqttfleet/broker/auth"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 enhanced authentication (section 4.12): a CONNECT with an
// Authentication Method is authenticated by that method (broker/auth
// Method, SCRAM-SHA-256 shipped) in an exchange of AUTH packets before
// CONNACK; afterwards the client may re-authenticate with AUTH 0x19. See
// docs/broker.md "Enhanced authentication".

// enhancedAuth is the state of a connection that authenticated with an
// Authentication Method; kept out of line, since most connections have none.
type enhancedAuth struct {
	method  auth.Method
	connack []byte        // Authentication Data for the CONNACK; nil once sent
	reauth  auth.Exchange // a re-authentication in progress; reader-owned
}

// authenticateEnhanced runs the exchange of a 5.0 CONNECT that names an
// Authentication Method, in the handshake: the CONNECT's data, then AUTH
// 0x18 (Continue) both ways until the method decides [MQTT-4.12.0-2]. The
// connect timeout of the handshake still bounds the whole exchange. It
// reports whether the client is authenticated; if not, the connection was
// refused or closed.
func (c *conn) authenticateEnhanced(cp *packet.Connect) bool {
	name := cp.Props.AuthMethod
	m := c.b.auth.Method(name)
	if m == nil {
		c.refuse(rcBadAuthMethod, "MQTT-4.12.0-1", "unsupported Authentication Method "+strconv.Quote(name))
		return false
	}
	x := m.Start()
	in := cp.Props.AuthData
	for {
		out, done, err := x.Step(in)
		if err != nil {
			c.refuse(rcNotAuthorized, "MQTT-4.12.0-4", name+": "+err.Error())
			return false
		}
		if done {
			// The identity is the user name for ACLs; a User Name in
			// CONNECT naming someone else is not taken on trust.
			if cp.UsernameFlag && cp.Username != x.Identity() {
				c.refuse(rcNotAuthorized, "MQTT-4.12.0-4", fmt.Sprintf("%s: CONNECT User Name %q is not the authenticated user %q", name, cp.Username, x.Identity()))
				return false
			}
			c.username = x.Identity()
			c.eauth = &enhancedAuth{method: m, connack: out}
			c.b.emit(events.Event{Kind: events.Auth, ClientID: c.clientID, Remote: c.remote, Detail: name + ": authenticated as " + strconv.Quote(c.username)})
			return true
		}
		// Written directly, as refuse does: no writer runs before CONNACK.
		_ = c.rd.nc.SetWriteDeadline(time.Now().Add(c.b.cfg.ConnectTimeout))
		if err := packet.Encode(c.rd.nc, authPacket(rcContinueAuth, name, out), packet.V5); err != nil {
			c.shutdown(events.CauseIOError, "", "write AUTH: "+err.Error())
			return false
		}
		p, err := c.readPacket(c.b.cfg.connectLimit())
		if err != nil {
			if isTimeout(err) {
				c.shutdown(events.CauseIOError, "", name+": authentication exchange not completed within connect_timeout")
			} else {
				c.readFailed(err) // a malformed AUTH [MQTT-3.15.1-1] [MQTT-3.15.2-1] and the rest
			}
			return false
		}
		switch p := p.(type) {
		case *packet.Auth:
			if p.ReasonCode != rcContinueAuth {
				c.refuse(rcProtocolError, "MQTT-4.12.0-3", fmt.Sprintf("AUTH reason 0x%02X during authentication, want 0x18", p.ReasonCode))
				return false
			}
			if p.Props == nil || !p.Props.HasAuthMethod || p.Props.AuthMethod != name {
				c.refuse(rcProtocolError, "MQTT-4.12.0-5", "AUTH without the CONNECT's Authentication Method "+strconv.Quote(name))
				return false
			}
			in = p.Props.AuthData
		case *packet.Disconnect:
			c.shutdown(events.CauseClientDisconnect, "", "DISCONNECT during authentication")
			return false
		default:
			// Nothing but AUTH is processed before the client is
			// authenticated [MQTT-3.1.4-6] (it may send nothing else,
			// MQTT-3.1.2-30): refused, not acted on.
			c.refuse(rcProtocolError, "MQTT-3.1.4-6", p.Type().String()+" during enhanced authentication, before CONNACK")
			return false
		}
	}
}

// authPacket is an AUTH carrying the method [MQTT-4.12.0-5] and data.
func authPacket(code byte, method string, data []byte) *packet.Auth {
	return &packet.Auth{ReasonCode: code, Props: &packet.Properties{AuthMethod: method, HasAuthMethod: true, AuthData: data}}
}

// addAuthProps puts the method and its final data in the successful
// CONNACK of an enhanced authentication [MQTT-4.12.0-5].
func (c *conn) addAuthProps(p *packet.Properties) {
	if c.eauth == nil {
		return
	}
	p.AuthMethod, p.HasAuthMethod = c.eauth.method.Name(), true
	p.AuthData, c.eauth.connack = c.eauth.connack, nil
}

// handleAuth acts on an AUTH after CONNACK: re-authentication (section
// 4.12.1). AUTH 0x19 starts it with the method of CONNECT, AUTH 0x18
// continues it; the broker answers AUTH 0x18 until the method decides,
// then AUTH 0x00. Other packets flow meanwhile under the authentication
// already done. A failure closes the connection with DISCONNECT 0x87
// [MQTT-4.12.1-2]. It reports whether the connection goes on.
func (c *conn) handleAuth(p *packet.Auth) bool {
	ea := c.eauth
	if ea == nil {
		c.violationCode(rcProtocolError, "MQTT-4.12.0-7", "AUTH from a client that connected without an Authentication Method")
		return false
	}
	name := ea.method.Name()
	if p.Props == nil || !p.Props.HasAuthMethod || p.Props.AuthMethod != name {
		c.violationCode(rcProtocolError, "MQTT-4.12.1-1", "re-authentication AUTH without the connection's Authentication Method "+strconv.Quote(name))
		return false
	}
	switch {
	case p.ReasonCode == rcReauthenticate && ea.reauth == nil:
		ea.reauth = ea.method.Start()
	case p.ReasonCode == rcContinueAuth && ea.reauth != nil:
	default:
		c.violationCode(rcProtocolError, "", fmt.Sprintf("AUTH reason 0x%02X with re-authentication %s", p.ReasonCode,
			map[bool]string{true: "in progress", false: "not started"}[ea.reauth != nil]))
		return false
	}
	out, done, err := ea.reauth.Step(p.Props.AuthData)
	if err == nil && done && ea.reauth.Identity() != c.username {
		err = fmt.Errorf("re-authenticated as %q, connected as %q", ea.reauth.Identity(), c.username)
	}
	if err != nil {
		ea.reauth = nil
		c.b.emit(events.Event{Kind: events.Auth, ClientID: c.clientID, Remote: c.remote, Code: int(rcNotAuthorized), Statement: "MQTT-4.12.1-2",
			Detail: name + ": re-authentication failed: " + err.Error()})
		c.shutdownCode(events.CauseNotAuthorized, rcNotAuthorized, "MQTT-4.12.1-2", name+": re-authentication failed")
		return false
	}
	code := rcContinueAuth
	if done {
		ea.reauth = nil
		code = rcSuccess
		c.b.emit(events.Event{Kind: events.Auth, ClientID: c.clientID, Remote: c.remote, Detail: name + ": re-authenticated as " + strconv.Quote(c.username)})
	}
	c.send(authPacket(code, name, out), false)
	return true
}
