package targets

import (
	"context"
	"fmt"
	"net/url"
)

// External is a broker the user already runs, reached by URL. The harness
// cannot start, stop or read the logs of it; it assumes the common MQTT
// 3.1.1 feature set unless Caps is changed.
type External struct {
	// URLs maps a transport ("tcp", "ws") to the broker's URL on it.
	URLs map[string]string
	// Caps are the declared capabilities.
	Caps Capabilities
}

// NewExternal returns the target for one broker URL (tcp://, mqtt://, ws://).
func NewExternal(rawURL string) (*External, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse broker URL %q: %w", rawURL, err)
	}
	if u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("broker URL %q: want scheme://host:port", rawURL)
	}
	transport := u.Scheme
	switch transport {
	case "tcp", "mqtt":
		transport = "tcp"
		u.Scheme = "tcp"
	case "ws":
	default:
		return nil, fmt.Errorf("broker URL %q: scheme %q is not tcp, mqtt or ws", rawURL, u.Scheme)
	}
	return &External{
		URLs: map[string]string{transport: u.String()},
		Caps: Capabilities{MaxQoS: 2, Retain: true, Wildcards: true, WebSocket: transport == "ws",
			EmptyClientID: true, PersistentSessions: true},
	}, nil
}

// Name is the URL of the first transport, which is what the user typed.
func (e *External) Name() string {
	for _, t := range []string{"tcp", "ws"} {
		if u, ok := e.URLs[t]; ok {
			return u
		}
	}
	return "external"
}

// Start does nothing: the broker already runs.
func (e *External) Start(context.Context) error { return nil }

// Stop does nothing: the harness does not own the broker.
func (e *External) Stop(context.Context) error { return nil }

// Restart is not possible for a broker the harness does not own.
func (e *External) Restart(context.Context) error {
	return fmt.Errorf("restart %s: %w", e.Name(), ErrNotSupported)
}

// Addr returns the URL for a transport.
func (e *External) Addr(transport string) (string, bool) {
	u, ok := e.URLs[transport]
	return u, ok
}

// Capabilities returns the declared capabilities.
func (e *External) Capabilities() Capabilities { return e.Caps }

// Logs returns nil: an external broker's logs are out of reach.
func (e *External) Logs(context.Context) ([]byte, error) { return nil, nil }
