package targets

import (
	"context"
	"fmt"

	"github.com/mqttfleet/mqttfleet/broker"
)

// Variants is a target that can start a second broker of its kind with a
// changed configuration: conformance specs for what only a limited broker
// shows (Maximum QoS 1, Retain Available 0, a Server Keep Alive) run on it.
// Only the in-process target has it (capability "variants"); a container
// or an external broker runs the one configuration it was given, so those
// specs skip there with that reason.
type Variants interface {
	// Variant starts a broker configured as this one, changed by edit. The
	// caller stops it.
	Variant(ctx context.Context, edit func(*broker.Config)) (Target, error)
}

// Variant starts another in-process broker with t's configuration changed
// by edit, on fresh ports, with its own logs.
func (t *InProcess) Variant(ctx context.Context, edit func(*broker.Config)) (Target, error) {
	v := &InProcess{Config: t.Config}
	v.Config.Listeners = nil // Start sets its own, on fresh ports
	edit(&v.Config)
	if err := v.Start(ctx); err != nil {
		return nil, fmt.Errorf("variant: %w", err)
	}
	return v, nil
}
