package targets

import "context"

// RestartMode is how a restart takes the broker down before starting it again.
type RestartMode string

// Restart modes.
const (
	// Graceful stops the broker the way an operator does (SIGTERM, or
	// Close in-process) and waits for it to exit: its shutdown code runs
	// and writes what it must.
	Graceful RestartMode = "graceful"
	// Kill ends the broker with SIGKILL, as a crash or the OOM killer
	// would: no shutdown code runs, so only what was already on disk
	// survives.
	Kill RestartMode = "kill"
)

// Killer is a target whose broker can be killed with SIGKILL and started
// again (capability "kill"). After Kill, Start brings the same broker up on
// the same addresses, with whatever state it had on disk.
type Killer interface {
	Kill(ctx context.Context) error
}

// Durable is a target that can run its broker with its own persistence on
// (capability "persistence"): retained messages, persistent sessions and
// queued messages written to a store that outlives a restart of the same
// target. Call it before Start.
type Durable interface {
	SetPersistence(on bool)
}

// Recoverer is a target that knows what its broker read back from its store
// at the last start.
type Recoverer interface {
	// Recovered returns the counts of the last start; ok is false before
	// the first start or when the broker did not say.
	Recovered() (r Recovery, ok bool)
}

// Recovery is what a broker restored from its store at start.
type Recovery struct {
	Retained, Sessions, Queued, Inflight, IncomingQoS2 int
}

// RestartWith restarts t in the given mode: Graceful is t.Restart; Kill
// needs a Killer and is Kill then Start.
func RestartWith(ctx context.Context, t Target, mode RestartMode) error {
	if mode != Kill {
		return t.Restart(ctx)
	}
	k, ok := t.(Killer)
	if !ok || !t.Capabilities().Kill {
		return ErrNotSupported
	}
	if err := k.Kill(ctx); err != nil {
		return err
	}
	return t.Start(ctx)
}
