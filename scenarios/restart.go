package scenarios

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/targets"
)

// Restart modes of restart_broker and stop_broker.
const (
	ModeGraceful = string(targets.Graceful)
	ModeKill     = string(targets.Kill)
)

var restartModes = []string{ModeGraceful, ModeKill}

// faultRestart is the Fault name of the events a broker restart or stop leaves.
const faultRestart = "broker_restart"

func validateRestartMode(c *checker, s *Step, f string) {
	if s.Mode == "" {
		s.Mode = ModeGraceful
	}
	if !oneOf(s.Mode, restartModes) {
		c.fail(f+".mode", "unknown mode %q%s; want graceful (SIGTERM and wait) or kill (SIGKILL, as a crash)", s.Mode, suggest(s.Mode, restartModes))
	}
}

// missingDurability names what the scenario's restart steps and target
// persistence need that the target lacks.
func (r *runner) missingDurability(caps targets.Capabilities) []string {
	var missing []string
	if r.sc.Target.Persistence {
		if _, ok := r.target.(targets.Durable); !ok || !caps.Persistence {
			missing = append(missing, "persistence (target.persistence: true)")
		}
	}
	for _, s := range r.sc.Steps {
		if (s.Do == DoRestart || s.Do == DoStopB) && s.Mode == ModeKill && s.onTarget() {
			if _, ok := r.target.(targets.Killer); !ok || !caps.Kill {
				missing = append(missing, "kill (step "+s.Name+"; the in-process broker cannot be killed: use target kind process)")
			}
			break
		}
	}
	return missing
}

// prepareTarget applies the file's persistence (on or off) to a Durable
// target of a scenario that restarts its broker, and routes a process
// target's broker events into the run, before it starts.
func (r *runner) prepareTarget() {
	restarts := r.sc.Target.Persistence
	for _, s := range r.sc.Steps {
		restarts = restarts || ((s.Do == DoRestart || s.Do == DoStopB || s.Do == DoStartB) && s.onTarget())
	}
	if d, ok := r.target.(targets.Durable); ok && restarts {
		d.SetPersistence(r.sc.Target.Persistence)
	}
	if p, ok := r.target.(*targets.Process); ok && p.Events == nil {
		p.Events = events.SinkFunc(func(e events.Event) { r.sink.Emit(e) })
	}
}

// restartBroker takes the broker down in the step's mode and starts it
// again, telling the event stream when it went down and what it recovered.
func (r *runner) restartBroker(ctx context.Context, s *Step) error {
	if _, isContainer := r.target.(*targets.Container); isContainer && s.Mode != ModeKill {
		// A container's Stop removes it, and its store with it: a graceful
		// restart stops (SIGTERM, waits) and starts the same container.
		r.emitRestart(events.FaultInjected, s, "stopping gracefully (SIGTERM, waiting for exit)")
		if err := r.target.Restart(ctx); err != nil {
			return fmt.Errorf("graceful restart: %w", err)
		}
		r.emitStarted(s)
		return nil
	}
	if err := r.stopBroker(ctx, s); err != nil {
		return err
	}
	return r.startBroker(ctx, s)
}

// stopBroker ends the broker: graceful is the target's Stop, kill is SIGKILL.
func (r *runner) stopBroker(ctx context.Context, s *Step) error {
	var err error
	how := "stopped gracefully (SIGTERM, waited for exit)"
	if s.Mode == ModeKill {
		k, ok := r.target.(targets.Killer)
		if !ok {
			return fmt.Errorf("target %s cannot be killed: %w", r.target.Name(), targets.ErrNotSupported)
		}
		err, how = k.Kill(ctx), "killed (SIGKILL)"
	} else {
		err = r.target.Stop(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s broker: %w", s.Mode, err)
	}
	r.emitRestart(events.FaultInjected, s, how)
	return nil
}

// startBroker starts the broker again and says what it recovered.
func (r *runner) startBroker(ctx context.Context, s *Step) error {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := r.target.Start(sctx); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	if u, ok := r.target.Addr("tcp"); ok && !strings.HasSuffix(u, r.brokerAddr) {
		// A container without persistence gets new host ports from Docker.
		r.sink.Emit(events.Event{Time: time.Now(), Kind: events.Log, Source: events.SourceScenario,
			Detail: fmt.Sprintf("step %s: the broker came back on %s, not %s: clients of this run do not find it there", s.Name, u, r.brokerAddr)})
	}
	r.emitStarted(s)
	return nil
}

func (r *runner) emitStarted(s *Step) {
	detail := "started"
	if rc, ok := r.target.(targets.Recoverer); ok {
		if rec, known := rc.Recovered(); known {
			detail = fmt.Sprintf("started; recovered retained=%d sessions=%d queued=%d inflight=%d incoming_qos2=%d",
				rec.Retained, rec.Sessions, rec.Queued, rec.Inflight, rec.IncomingQoS2)
		}
	}
	r.emitRestart(events.FaultRemoved, s, detail)
}

func (r *runner) emitRestart(kind events.Kind, s *Step, detail string) {
	r.sink.Emit(events.Event{Time: time.Now(), Kind: kind, Source: events.SourceScenario, Fault: faultRestart,
		Detail: fmt.Sprintf("broker %s (step %s, mode %s, target %s)", detail, s.Name, s.Mode, r.target.Name())})
}

// describeRestart says how a restart or stop step takes the broker down.
func describeRestart(s *Step) string {
	do := s.Do
	if !s.onTarget() {
		do += " " + s.Broker
	}
	if s.Mode == ModeKill {
		return do + " mode kill (SIGKILL: only what is on disk survives)"
	}
	return do + " mode graceful (SIGTERM or Close, wait for the exit)"
}
