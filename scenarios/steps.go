package scenarios

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/netem"
)

// StepError is a step that could not run or whose wait timed out. The run
// stops its timeline there and reports it as a failed check.
type StepError struct {
	Step string
	Line int
	Err  error
	At   time.Time // when the step gave up
}

// Error names the step and its line.
func (e *StepError) Error() string {
	return fmt.Sprintf("step %s (line %d): %v", e.Step, e.Line, e.Err)
}

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }

// timeline connects the clients and groups not started by a step, then runs
// the steps in order, each when its trigger fires.
func (r *runner) timeline(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.sc.Timeout)
	defer cancel()
	done := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.progress(done)
	}()
	defer func() {
		close(done)
		<-progressDone
	}()

	byStep := r.sc.startedByStep()
	for _, cl := range r.sc.Clients {
		if !byStep["c:"+cl.Name] {
			if err := r.clients[cl.Name].connect(ctx); err != nil {
				return &StepError{Step: "connect clients", Err: err, At: time.Now()}
			}
		}
	}
	r.mu.Lock()
	r.t0 = time.Now()
	r.mu.Unlock()
	r.mark("start", "timeline starts", r.t0)
	for _, g := range r.sc.Groups {
		if !byStep["g:"+g.Name] {
			if err := r.up(r.groups[g.Name]); err != nil {
				return &StepError{Step: "start", Err: err, At: time.Now()}
			}
		}
	}
	prevEnd, prevIdx := r.t0, r.rec.Len()
	for i := range r.sc.Steps {
		s := &r.sc.Steps[i]
		at, err := r.trigger(ctx, s, prevEnd, prevIdx)
		if err != nil {
			return &StepError{Step: s.Name, Line: s.line, Err: err, At: time.Now()}
		}
		// A when: or wait until: counts events from the moment the step
		// before it began: what that step caused, even while its action
		// still ran, is seen.
		startIdx := r.rec.Len()
		r.mu.Lock()
		r.since = prevIdx
		r.mu.Unlock()
		if s.Do != DoWait {
			r.mark(s.Name, describe(s), at)
		} else {
			r.mu.Lock()
			r.step = s.Name
			r.mu.Unlock()
		}
		if err := r.do(ctx, s); err != nil {
			return &StepError{Step: s.Name, Line: s.line, Err: err, At: time.Now()}
		}
		prevEnd, prevIdx = time.Now(), startIdx
	}
	r.mark("end", "timeline ends", time.Now())
	return nil
}

// trigger waits until the step may start and returns that moment.
func (r *runner) trigger(ctx context.Context, s *Step, prevEnd time.Time, prevIdx int) (time.Time, error) {
	var base time.Time
	switch {
	case s.At != nil:
		base = r.t0.Add(s.At.D())
	case s.After != "":
		r.mu.Lock()
		base = r.stepAt[s.After]
		r.mu.Unlock()
	case s.When != nil:
		m := s.When.match()
		e, err := waitSince(ctx, r.rec, prevIdx, m)
		if err != nil {
			return time.Time{}, fmt.Errorf("waiting for %s: %w", s.When, err)
		}
		base = e.Time
	default:
		base = prevEnd
	}
	at := base.Add(s.Delay.D())
	if err := sleepUntil(ctx, at); err != nil {
		return time.Time{}, fmt.Errorf("waiting to start: %w", err)
	}
	if at.Before(time.Now().Add(-50 * time.Millisecond)) {
		// The trigger passed while an earlier step ran: the step runs late,
		// and its moment for windows is when it really ran.
		at = time.Now()
	}
	return at, nil
}

// waitSince waits for the first event at index from or later that matches m.
func waitSince(ctx context.Context, rec *events.Recorder, from int, m events.Match) (events.Event, error) {
	evs, err := waitNSince(ctx, rec, from, m, 1)
	if err != nil {
		return events.Event{}, err
	}
	return evs[0], nil
}

// waitNSince waits for n events at index from or later that match m.
// Recorder.WaitN offers its events in index order exactly once each, so
// counting the offers skips the first from.
func waitNSince(ctx context.Context, rec *events.Recorder, from int, m events.Match, n int) ([]events.Event, error) {
	seen := 0
	return rec.WaitN(ctx, func(e events.Event) bool {
		seen++
		return seen > from && m(e)
	}, n)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// do runs one step's action.
func (r *runner) do(ctx context.Context, s *Step) error {
	switch s.Do {
	case DoUp:
		return r.up(r.groups[s.Group])
	case DoDown:
		r.groups[s.Group].down()
		return nil
	case DoBlackhole, DoStall, DoReset, DoClose, DoDelay, DoBandwidth, DoSlice,
		DoLoss, DoDuplicate, DoReorder, DoNATIdle, DoNATRebind:
		return r.fault(s)
	case DoRestore:
		if s.Bridge != "" {
			r.restoreBridge(s.Bridge)
			return nil
		}
		r.restore(s.Group, s.Client, s.Devices)
		if len(s.Devices) == 0 {
			r.undrop(s.Group + s.Client)
		}
		return nil
	case DoDropPackets:
		return r.dropPackets(ctx, s)
	case DoConnect:
		return r.clients[s.Client].connect(ctx)
	case DoDisconn:
		return r.clients[s.Client].disconnect(ctx, false)
	case DoDrop:
		return r.clients[s.Client].disconnect(ctx, true)
	case DoViolate:
		if s.Violation != "" {
			return r.clients[s.Client].violateV5(s.Violation)
		}
		return r.clients[s.Client].violate(s.Bytes)
	case DoPublish:
		return r.clients[s.Client].publish(ctx, s)
	case DoSubscribe:
		return r.clients[s.Client].subscribe(ctx, s.Topic, s.QoS)
	case DoWait:
		return r.wait(ctx, s)
	case DoRestart, DoStopB, DoStartB:
		if s.Broker != "" && s.Broker != "target" {
			return r.extraLifecycle(ctx, s)
		}
	}
	switch s.Do {
	case DoRestart:
		return r.restartBroker(ctx, s)
	case DoStopB:
		return r.stopBroker(ctx, s)
	case DoStartB:
		return r.startBroker(ctx, s)
	case DoMark:
		return nil
	}
	if isKafkaAction(s.Do) {
		return r.kafkaStep(ctx, s)
	}
	return fmt.Errorf("unknown action %q", s.Do)
}

// wait blocks until the condition holds or the step's timeout passes, and
// marks the step at the moment the condition held.
func (r *runner) wait(ctx context.Context, s *Step) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout.D())
	defer cancel()
	if s.Until != nil {
		n := max(s.Count, 1)
		r.mu.Lock()
		from := r.since
		r.mu.Unlock()
		evs, err := waitNSince(ctx, r.rec, from, s.Until.match(), n)
		if err != nil {
			return fmt.Errorf("waiting for %d events %s: got %d within %s", n, s.Until, len(evs), s.Timeout)
		}
		r.mark(s.Name, describe(s), evs[n-1].Time)
		return nil
	}
	want := int64(s.Count)
	var now func() int64
	if gr, ok := r.groups[s.Connected]; ok {
		if want == 0 {
			want = int64(gr.g.Count)
		}
		now = gr.connected
	} else {
		cr := r.clients[s.Connected]
		want = 1
		now = func() int64 {
			if _, _, err := cr.current(); err == nil {
				return 1
			}
			return 0
		}
	}
	// The fleet counts connections with atomics and emits no event per
	// change we could wait on cheaply, so poll with a short period.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if now() >= want {
			r.mark(s.Name, describe(s), time.Now())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d connected in %s: %d after %s", want, s.Connected, now(), s.Timeout)
		case <-tick.C:
		}
	}
}

// selectors returns the proxy selectors and the key faults are filed under.
func (r *runner) selectors(group, clientName string, devices []int) ([]netem.Selector, string) {
	if clientName != "" {
		return []netem.Selector{netem.ByGroup(clientName)}, clientName
	}
	gr := r.groups[group]
	if len(devices) > 0 {
		var sels []netem.Selector
		for _, d := range devices {
			sels = append(sels, netem.ByGroup(gr.linkGroup(d)))
		}
		return sels, group
	}
	if !gr.perDevice {
		return []netem.Selector{netem.ByGroup(group)}, group
	}
	sels := make([]netem.Selector, gr.g.Count)
	for i := range sels {
		sels[i] = netem.ByGroup(gr.linkGroup(i))
	}
	return sels, group
}

// fault applies a netem fault to a group's or client's links, now and as
// they reconnect, and schedules its removal after for: when given.
func (r *runner) fault(s *Step) error {
	f := netem.Fault{Direction: netem.Direction(s.Direction), Share: s.Share}
	switch s.Do {
	case DoBlackhole:
		f.Kind = netem.Blackhole
	case DoStall:
		f.Kind = netem.Stall
	case DoReset:
		f.Kind = netem.Reset
	case DoClose:
		f.Kind = netem.Close
	}
	if s.Every > 0 {
		// Repeated: act at every period until for: ends or a restore. A
		// reset or close acts on the links present when it activates; a
		// short activation keeps it off links that reconnect in between.
		f.Every, f.Duration = s.Every.D(), time.Millisecond
	}
	switch s.Do {
	case DoDelay:
		f.Kind, f.Latency, f.Jitter = netem.Latency, s.Latency.D(), s.Jitter.D()
	case DoBandwidth:
		f.Kind, f.Rate, f.Burst = netem.Bandwidth, s.Rate, s.Burst
	case DoLoss, DoDuplicate, DoReorder, DoNATIdle, DoNATRebind:
		linkFault(s, &f)
	case DoSlice:
		f.Kind, f.ChunkSize, f.ChunkDelay = netem.Slice, s.ChunkSize, s.ChunkDelay.D()
	}
	var proxies []*netem.Proxy
	var sels []netem.Selector
	var key string
	if s.Bridge != "" {
		// A bridge link: its proxy (one per remote address) and its group.
		proxies, sels, key = r.bridgeProxiesOf(s.Bridge), []netem.Selector{netem.ByGroup(s.Bridge)}, bridgeKey(s.Bridge)
	} else {
		proxies = []*netem.Proxy{r.proxy}
		sels, key = r.selectors(s.Group, s.Client, s.Devices)
	}
	var ids []string
	for _, p := range proxies {
		for _, sel := range sels {
			id, err := p.Apply(sel, f)
			if err != nil {
				return fmt.Errorf("apply %s to %s: %w", f.Kind, sel, err)
			}
			ids = append(ids, id)
		}
	}
	if (s.Do == DoReset || s.Do == DoClose || s.Do == DoNATRebind) && s.Every == 0 {
		return nil // one-shot: nothing stays applied
	}
	r.mu.Lock()
	r.faults[key] = append(r.faults[key], ids...)
	r.mu.Unlock()
	if s.For > 0 {
		r.timers.Add(1)
		go func() {
			defer r.timers.Done()
			t := time.NewTimer(s.For.D())
			defer t.Stop()
			select {
			case <-t.C:
				r.removeFaults(key, ids)
			case <-r.ctx.Done():
			}
		}()
	}
	return nil
}

// restore removes the faults applied to a group, some devices of it, a
// client, or (with none named) everything.
func (r *runner) restore(group, clientName string, devices []int) {
	if r.proxy == nil {
		return
	}
	if group == "" && clientName == "" {
		for _, fi := range r.proxy.Faults() {
			_ = r.proxy.Remove(fi.ID)
		}
		r.mu.Lock()
		r.faults = map[string][]string{}
		r.mu.Unlock()
		return
	}
	key := group + clientName
	if len(devices) == 0 {
		r.mu.Lock()
		ids := r.faults[key]
		r.mu.Unlock()
		r.removeFaults(key, ids)
		return
	}
	want := map[string]bool{}
	for _, d := range devices {
		want[r.groups[group].linkGroup(d)] = true
	}
	var ids []string
	for _, fi := range r.proxy.Faults() {
		if want[fi.Selector.Group] {
			ids = append(ids, fi.ID)
		}
	}
	r.removeFaults(key, ids)
}

func (r *runner) removeFaults(key string, ids []string) {
	gone := map[string]bool{}
	proxies := []*netem.Proxy{r.proxy}
	if name, ok := strings.CutPrefix(key, bridgeKey("")); ok {
		proxies = r.bridgeProxiesOf(name)
	}
	for _, id := range ids {
		for _, p := range proxies {
			_ = p.Remove(id) // already removed by an earlier restore, or another proxy's ID: fine
		}
		gone[id] = true
	}
	r.mu.Lock()
	kept := r.faults[key][:0]
	for _, id := range r.faults[key] {
		if !gone[id] {
			kept = append(kept, id)
		}
	}
	r.faults[key] = kept
	r.mu.Unlock()
}

// describe is a one-line description of a step's action.
func describe(s *Step) string {
	if s.Do == DoRestart || s.Do == DoStopB {
		return describeRestart(s)
	}
	if s.Do == DoStartB && !s.onTarget() {
		return s.Do + " " + s.Broker
	}
	who := s.Group
	if s.Client != "" {
		who = s.Client
	}
	if s.Bridge != "" {
		who = "the link of bridge " + s.Bridge
	}
	if len(s.Devices) > 0 {
		who += " devices"
		for _, d := range s.Devices {
			who += " " + strconv.Itoa(d)
		}
	}
	switch s.Do {
	case DoUp, DoDown, DoConnect, DoDisconn, DoDrop, DoViolate, DoDropPackets:
		if s.Violation != "" {
			return s.Do + " " + who + " " + s.Violation
		}
		return s.Do + " " + who
	case DoBlackhole, DoStall, DoReset, DoClose, DoDelay, DoBandwidth, DoSlice,
		DoLoss, DoDuplicate, DoReorder, DoNATIdle, DoNATRebind:
		d := s.Do + " " + who
		if s.Direction != "" {
			d += " " + s.Direction
		}
		switch s.Do {
		case DoDelay:
			d += fmt.Sprintf(" latency=%s jitter=%s", s.Latency, s.Jitter)
		case DoBandwidth:
			d += fmt.Sprintf(" rate=%dB/s", s.Rate)
		case DoSlice:
			d += fmt.Sprintf(" chunk=%dB delay=%s", s.ChunkSize, s.ChunkDelay)
		}
		d += describeLinkFault(s)
		if s.Share > 0 {
			d += fmt.Sprintf(" share=%g", s.Share)
		}
		if s.Every > 0 {
			d += " every " + s.Every.String()
		}
		if s.For > 0 {
			d += " for " + s.For.String()
		}
		return d
	case DoRestore:
		if who == "" {
			return "restore every link"
		}
		return "restore " + who
	case DoPublish:
		d := fmt.Sprintf("publish %s -> %s qos %d", s.Client, s.Topic, s.QoS)
		if s.Retain {
			d += " retained"
		}
		if s.Payload != nil {
			d += fmt.Sprintf(" payload %q", *s.Payload)
		}
		if s.Count > 1 {
			d += fmt.Sprintf(" x%d every %s", s.Count, s.Interval)
		}
		return d
	case DoSubscribe:
		return fmt.Sprintf("subscribe %s to %s qos %d", s.Client, s.Topic, s.QoS)
	case DoWait:
		if s.Connected != "" {
			n := "all"
			if s.Count > 0 {
				n = strconv.Itoa(s.Count)
			}
			return fmt.Sprintf("wait until %s of %s connected (timeout %s)", n, s.Connected, s.Timeout)
		}
		return fmt.Sprintf("wait until %d x %s (timeout %s)", max(s.Count, 1), s.Until, s.Timeout)
	}
	if isKafkaAction(s.Do) {
		return describeKafka(s)
	}
	return s.Do
}
