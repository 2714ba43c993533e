package auth

import "fmt"

// Method is an MQTT 5.0 enhanced authentication method (section 4.12): a
// challenge/response exchange carried in the Authentication Data of CONNECT,
// AUTH and CONNACK, chosen by the Authentication Method property of CONNECT.
// The broker looks methods up by Name; SCRAM-SHA-256 ships (scram.go), and
// Config.Methods plugs in others.
type Method interface {
	// Name is the Authentication Method string a client sends, e.g. "SCRAM-SHA-256".
	Name() string
	// Start begins one exchange: at CONNECT, or when the client
	// re-authenticates. An Exchange is used by one goroutine.
	Start() Exchange
}

// Exchange is one authentication conversation of a Method.
type Exchange interface {
	// Step takes the Authentication Data the client sent (nil when it sent
	// none) and returns the server's. done false: out goes to the client in
	// AUTH 0x18 (Continue) and its answer comes to Step next. done true: the
	// client is authenticated as Identity and out (possibly nil) goes in the
	// CONNACK, or in AUTH 0x00 after a re-authentication. An error refuses
	// the client; its text is for the broker's events only.
	Step(in []byte) (out []byte, done bool, err error)
	// Identity is the authenticated user name, once Step reported done. It
	// is the connection's user name for ACLs.
	Identity() string
}

// Method returns the enhanced authentication method called name, or nil
// when the broker does not offer it (CONNACK 0x8C, MQTT 5.0 section 4.12).
func (a *Auth) Method(name string) Method {
	if a == nil {
		return nil
	}
	return a.methods[name]
}

// addMethod registers m; a second method of the same name is a
// configuration error, not a silent replacement.
func (a *Auth) addMethod(m Method) error {
	if m == nil {
		return fmt.Errorf("auth: nil enhanced authentication method")
	}
	name := m.Name()
	if name == "" {
		return fmt.Errorf("auth: enhanced authentication method with an empty name")
	}
	if _, dup := a.methods[name]; dup {
		return fmt.Errorf("auth: enhanced authentication method %q configured twice", name)
	}
	if a.methods == nil {
		a.methods = make(map[string]Method)
	}
	a.methods[name] = m
	return nil
}
