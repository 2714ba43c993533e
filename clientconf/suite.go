// Package clientconf grades MQTT device clients: each probe puts a client
// under test against the adversarial broker (package adversary) with a
// script of misbehaviours, has it do a job (connect, subscribe, publish,
// stay idle, reconnect), and grades the client-side statements of the
// standard and the keepalive, reconnect and backoff behaviours from the
// bytes on the wire. Results go through the same results model as broker
// conformance: a matrix of statement x client, JUnit and HTML, with the
// packet trace of every failure (docs/clients.md).
package clientconf

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/adversary"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/reports"
)

// Options configure a suite run.
type Options struct {
	Drivers []Driver
	// Protocols to run (default 3.1.1 only); a driver runs those it speaks.
	Protocols []byte
	// Probes limits the run to these probe names (default all).
	Probes []string
	// Parallel is how many probes run at once (default 8): probes wait on
	// timers far more than they compute, and each has its own server.
	Parallel int
	// Progress, when set, is told each probe as it ends.
	Progress func(client, probe string, failed bool)
}

// Outcome is one probe of one client.
type Outcome struct {
	Client, Probe string
	Protocol      byte
	Checks        []Check
	Trace         string // the wire trace, kept for probes with a failed check
	Err           error  // the driver's own error, if any
}

// Result is a whole run.
type Result struct {
	Start, End time.Time
	Outcomes   []Outcome
	// Skipped maps a client not available here to the reason.
	Skipped map[string]string
	Clients []string
}

// Run runs every probe against every available driver.
func Run(ctx context.Context, opts Options) *Result {
	if len(opts.Protocols) == 0 {
		opts.Protocols = []byte{packet.V311}
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	res := &Result{Start: time.Now(), Skipped: map[string]string{}}
	type task struct {
		d     Driver
		p     Probe
		proto byte
	}
	var tasks []task
	for _, d := range opts.Drivers {
		if err := d.Available(); err != nil {
			res.Skipped[d.Name()] = err.Error()
			continue
		}
		speaks := false
		for _, proto := range opts.Protocols {
			speaks = speaks || slices.Contains(d.Protocols(), proto)
		}
		if !speaks {
			res.Skipped[d.Name()] = fmt.Sprintf("speaks protocol level %v only, not %v", d.Protocols(), opts.Protocols)
			continue
		}
		res.Clients = append(res.Clients, d.Name())
		for _, proto := range opts.Protocols {
			if !slices.Contains(d.Protocols(), proto) {
				continue
			}
			for _, p := range Probes {
				if len(opts.Probes) > 0 && !slices.Contains(opts.Probes, p.Name) {
					continue
				}
				if l, ok := d.(Limited); ok && !l.Can(p.job("127.0.0.1:1883", proto)) {
					continue
				}
				tasks = append(tasks, task{d, p, proto})
			}
		}
	}
	out := make([]Outcome, len(tasks))
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		go func() { // owned: joined below
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = Outcome{Client: t.d.Name(), Probe: t.p.Name, Protocol: t.proto, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			out[i] = runProbe(ctx, t.d, t.p, t.proto)
			if opts.Progress != nil {
				failed := out[i].Err != nil
				for _, c := range out[i].Checks {
					failed = failed || c.Status == Fail
				}
				opts.Progress(t.d.Name(), t.p.Name, failed)
			}
		}()
	}
	wg.Wait()
	res.Outcomes = out
	res.End = time.Now()
	return res
}

// probeRun is one probe of one client in progress.
type probeRun struct {
	ctx  context.Context
	srv  *adversary.Server
	mu   sync.Mutex
	recs []adversary.Record
	more chan struct{} // closed and replaced at every record
}

func (r *probeRun) record(rec adversary.Record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	close(r.more)
	r.more = make(chan struct{})
	r.mu.Unlock()
}

// awaitOut waits until the server has sent a packet matching ok, or the
// probe's window ends (false).
func (r *probeRun) awaitOut(ok func(packet.Packet) bool) bool {
	seen := 0
	for {
		r.mu.Lock()
		recs, more := r.recs, r.more
		r.mu.Unlock()
		for _, x := range recs[seen:] {
			if x.Dir == adversary.DirOut && x.Packet != nil && ok(x.Packet) {
				return true
			}
		}
		seen = len(recs)
		select {
		case <-more:
		case <-r.ctx.Done():
			return false
		}
	}
}

func (r *probeRun) snapshot() []adversary.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

func runProbe(ctx context.Context, d Driver, p Probe, proto byte) Outcome {
	o := Outcome{Client: d.Name(), Probe: p.Name, Protocol: proto}
	run := &probeRun{more: make(chan struct{})}
	srv, err := adversary.Start(adversary.Config{Script: adversary.Script{Actions: forProtocol(p.Script, proto)}, Record: run.record})
	if err != nil {
		o.Err = err
		return o
	}
	run.srv = srv
	job := p.job(srv.Addr(), proto)
	wctx, cancel := context.WithTimeout(ctx, p.Window)
	defer cancel()
	run.ctx = wctx
	n := 1
	if p.Twin {
		n = 2
	}
	got := make([]Received, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // owned: joined below; the driver returns when wctx ends
			defer wg.Done()
			got[i], errs[i] = d.Run(wctx, job)
		}()
	}
	if p.During != nil {
		p.During(run)
	}
	<-wctx.Done()
	end := time.Now()
	wg.Wait()
	// Let the server read what the client's last act put on the wire
	// (DISCONNECT, close) before it is closed under the client.
	settle(run)
	_ = srv.Close()
	g := &grader{probe: p.Name, end: end, v5: proto == packet.V5, job: job, recs: run.snapshot()}
	if b, ok := d.(Blind); ok && b.Blind() {
		g.blind = true
	}
	for _, r := range got {
		g.got = append(g.got, r...)
	}
	if len(g.recs) == 0 {
		g.check("client:connects", false, "the client never connected")
	} else {
		p.Grade(g)
	}
	o.Checks = g.checks
	o.Err = firstErr(errs)
	if g.failed {
		o.Trace = g.trace()
	}
	return o
}

// settle waits until every connection the client opened has ended, for at
// most 2 s.
func settle(r *probeRun) {
	deadline := time.After(2 * time.Second)
	for {
		r.mu.Lock()
		open := map[int]bool{}
		for _, x := range r.recs {
			open[x.Conn] = x.Dir != adversary.DirClosed
		}
		more := r.more
		r.mu.Unlock()
		if !slices.Contains(slices.Collect(maps.Values(open)), true) {
			return
		}
		select {
		case <-more:
		case <-deadline:
			return
		}
	}
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Results builds the results model: a matrix of statement x client, each
// cell the worst verdict of the checks that graded it, with the reasons
// and the packet trace of failed probes; declared deviations per client
// turn a failure into a deviation.
func (r *Result) Results() *reports.Results {
	rm := &reports.Matrix{}
	graded := map[string]bool{}
	for _, o := range r.Outcomes {
		for _, c := range o.Checks {
			graded[c.ID] = true
		}
	}
	for _, s := range Checked() {
		if graded[s.ID] {
			rm.Statements = append(rm.Statements, reports.Statement{ID: s.ID, Section: s.Section, Role: s.Role, Summary: s.Summary})
		}
	}
	type agg struct {
		fail    bool
		reasons []string
		specs   []string
	}
	cells := map[string]map[string]*agg{}
	for _, o := range r.Outcomes {
		if cells[o.Client] == nil {
			cells[o.Client] = map[string]*agg{}
		}
		for _, c := range o.Checks {
			a := cells[o.Client][c.ID]
			if a == nil {
				a = &agg{}
				cells[o.Client][c.ID] = a
			}
			spec := o.Probe
			if !slices.Contains(a.specs, spec) {
				a.specs = append(a.specs, spec)
			}
			if c.Status == Fail {
				a.fail = true
				reason := fmt.Sprintf("%s: %s", o.Probe, c.Reason)
				if o.Trace != "" {
					reason += "\npacket trace (server side):\n" + o.Trace
				}
				a.reasons = append(a.reasons, reason)
			}
		}
	}
	for _, client := range r.Clients {
		for id, a := range cells[client] {
			cell := reports.Cell{Status: reports.CellPass, Specs: a.specs}
			if a.fail {
				cell.Status, cell.Reason = reports.CellFail, strings.Join(a.reasons, "\n")
				if why, ok := Deviations[client][id]; ok {
					cell.Status, cell.Reason = reports.CellDeviation, "declared deviation: "+why+"\n"+cell.Reason
				}
			} else if why, ok := Deviations[client][id]; ok {
				cell.Reason = "declared deviation did not reproduce (the client now meets the statement): " + why
			}
			rm.Set(client, id, cell)
		}
		if rm.Cells[client] == nil {
			rm.Targets = append(rm.Targets, client)
		}
	}
	// A client that cannot run here is a column of skipped cells with the
	// reason, not a missing column.
	for _, client := range slices.Sorted(maps.Keys(r.Skipped)) {
		for _, st := range rm.Statements {
			rm.Set(client, st.ID, reports.Cell{Status: reports.CellSkipped, Reason: r.Skipped[client]})
		}
		if rm.Cells[client] == nil {
			rm.Targets = append(rm.Targets, client)
		}
	}
	rm.Summarise()
	status := reports.StatusCompleted
	reason := ""
	if len(r.Clients) == 0 {
		status, reason = reports.StatusTargetUnavailable, "no client under test could run here"
	}
	res := &reports.Results{
		SchemaVersion: reports.SchemaVersion,
		Kind:          reports.KindConformance,
		Run: reports.Run{
			ID: fmt.Sprintf("client-conformance-%d", r.Start.UnixMilli()), Name: "MQTT client conformance",
			Target: strings.Join(r.Clients, ","), Start: r.Start, End: r.End,
			Shard: reports.Shard{Index: 0, Count: 1}, Status: status, StatusReason: reason,
		},
		Counters:    map[string]int64{"probes": int64(len(r.Outcomes))},
		Conformance: rm,
	}
	return res
}

// v5Refusal maps a 3.1.1 CONNACK return code to the 5.0 reason code that
// means the same.
var v5Refusal = map[int]int{1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}

// forProtocol adapts a probe's script to 5.0: refusal codes become reason
// codes, and a raw PUBLISH gets the empty property block 5.0 requires after
// its topic, so it breaks only the rule the probe is about.
func forProtocol(actions []adversary.Action, proto byte) []adversary.Action {
	if proto != packet.V5 {
		return actions
	}
	out := slices.Clone(actions)
	for i, a := range out {
		if a.Do == adversary.Refuse {
			if c, ok := v5Refusal[a.Code]; ok {
				out[i].Code = c
			}
		}
		if a.Do == adversary.Send && len(a.Bytes) > 4 && a.Bytes[0]>>4 == 3 && a.Bytes[1] < 0x7f {
			tl := int(a.Bytes[2])<<8 | int(a.Bytes[3])
			at := 4 + tl
			if (a.Bytes[0]>>1)&3 != 0 {
				at += 2 // packet identifier
			}
			if at <= len(a.Bytes) {
				b := append(slices.Clone(a.Bytes[:at]), 0x00)
				b = append(b, a.Bytes[at:]...)
				b[1]++
				out[i].Bytes = b
			}
		}
	}
	return out
}

// job is what the probe asks the client to do against addr.
func (p Probe) job(addr string, proto byte) Job {
	j := Job{Addr: addr, ClientID: "cc-" + p.Name, Protocol: proto, KeepAlive: keepAlive, Clean: true, Disconnect: true}
	if p.Job != nil {
		p.Job(&j)
	}
	return j
}
