package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/simulator/payload"
)

// Offsets a watcher starts from when its group has no committed offset.
const (
	OffsetsOldest = "oldest"
	OffsetsNewest = "newest"
)

// Commit modes.
const (
	// CommitAuto commits what was polled every CommitInterval, like a
	// consumer with enable.auto.commit: a crash between two commits
	// redelivers what came after the last one.
	CommitAuto = "auto"
	// CommitAfter commits each polled batch once the Sink has taken every
	// record of it.
	CommitAfter = "after"
)

// Delivery is one record a watcher read, with what the bridge wrote into it.
type Delivery struct {
	Watcher   string
	Topic     string // Kafka topic
	Partition int32
	Offset    int64
	Key       string
	MQTTTopic string // from the mqtt_topic header
	QoS       byte
	Retain    bool
	// Header is the simulator's sequence header of the value; HasHeader
	// says whether the value carried one.
	Header    payload.Header
	HasHeader bool
	Size      int
	At        time.Time // when the watcher read it
}

// Sink takes every record a watcher reads. Deliver is called from the
// watcher's poll goroutine, one record at a time in the order read.
type Sink interface {
	Deliver(Delivery)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Delivery)

// Deliver calls f(d).
func (f SinkFunc) Deliver(d Delivery) { f(d) }

// WatcherConfig configures a watcher: one consumer group member.
type WatcherConfig struct {
	// Auth is SASL and TLS to the cluster; nil for neither.
	Auth *Auth
	// Name labels the watcher's events and is its group member's client ID.
	Name    string
	Brokers []string
	Topic   string
	// Group is the consumer group (default the name).
	Group string
	// Partitions, when set, makes the watcher a consumer of just these
	// partitions, without a group: nothing is committed, no rebalance
	// happens, and a watcher started again reads from Offsets again (as a
	// partition consumer of sarama's or kgo's does). Group must be empty.
	Partitions []int32
	// Offsets is oldest (default) or newest: where the group starts
	// without a committed offset.
	Offsets string
	// Commit is auto (default, every CommitInterval, default 1s) or after
	// (each batch once processed).
	Commit         string
	CommitInterval time.Duration
	// Sink takes every record; Events the watcher's rebalance events.
	Sink   Sink
	Events events.Sink
	Logger *slog.Logger
}

// Check validates the configuration and fills in defaults.
func (cfg *WatcherConfig) Check() error {
	var errs []string
	if cfg.Name == "" {
		errs = append(errs, "a name")
	}
	if err := cfg.Auth.Check(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(cfg.Brokers) == 0 {
		errs = append(errs, "Kafka bootstrap brokers")
	}
	if cfg.Topic == "" {
		errs = append(errs, "a topic")
	}
	if len(cfg.Partitions) > 0 {
		if cfg.Group != "" {
			errs = append(errs, "either partitions (a partition consumer, no group) or a group, not both")
		}
		if cfg.Commit != "" {
			errs = append(errs, "no commit mode with partitions: a partition consumer commits nothing")
		}
		cfg.Commit = commitNone
		for _, p := range cfg.Partitions {
			if p < 0 {
				errs = append(errs, fmt.Sprintf("partitions of 0 or more, not %d", p))
			}
		}
	} else if cfg.Group == "" {
		cfg.Group = cfg.Name
	}
	switch cfg.Offsets {
	case "":
		cfg.Offsets = OffsetsOldest
	case OffsetsOldest, OffsetsNewest:
	default:
		errs = append(errs, fmt.Sprintf("offsets oldest or newest, not %q", cfg.Offsets))
	}
	switch cfg.Commit {
	case "":
		cfg.Commit = CommitAuto
	case CommitAuto, CommitAfter, commitNone:
	default:
		errs = append(errs, fmt.Sprintf("commit auto or after, not %q", cfg.Commit))
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.Sink == nil {
		errs = append(errs, "a sink")
	}
	if cfg.Events == nil {
		cfg.Events = events.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(errs) > 0 {
		return fmt.Errorf("watcher %s: needs %s", cfg.Name, strings.Join(errs, "; "))
	}
	return nil
}

// commitNone is the commit mode of a partition consumer.
const commitNone = "none"

// Watcher is one consumer group member reading a topic and handing every
// record to its Sink.
//
//	poll goroutine: PollFetches ─► Sink.Deliver per record ─► (commit after)
//	commit goroutine (auto): CommitUncommittedOffsets every CommitInterval
//
// Close leaves the group after a last commit; Crash drops out without one.
type Watcher struct {
	cfg WatcherConfig
	cl  *kgo.Client

	ready     chan struct{}
	readyOnce sync.Once

	mu        sync.Mutex
	next      map[int32]int64 // next offset to read, per partition read so far
	assigned  map[int32]bool
	delivered int64
	rewound   int64 // records read again by this member and skipped

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   bool
	crashing atomic.Bool // no commit on the way out
}

// StartWatcher joins the group and starts reading.
func StartWatcher(cfg WatcherConfig) (*Watcher, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	w := &Watcher{cfg: cfg, ready: make(chan struct{}), next: map[int32]int64{}, assigned: map[int32]bool{}}
	reset := kgo.NewOffset().AtStart()
	if cfg.Offsets == OffsetsNewest {
		reset = kgo.NewOffset().AtEnd()
	}
	authOpts, err := cfg.Auth.kgo()
	if err != nil {
		return nil, err
	}
	opts := append(authOpts,
		kgo.SeedBrokers(cfg.Brokers...),
		// Follow a moved leader quickly (default 5s between metadata refreshes).
		kgo.MetadataMinAge(200*time.Millisecond),
		kgo.ClientID(cfg.Name),
		kgo.FetchMaxWait(200*time.Millisecond))
	if len(cfg.Partitions) > 0 {
		ps := map[int32]kgo.Offset{}
		for _, p := range cfg.Partitions {
			ps[p] = reset
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: ps}))
	} else {
		opts = append(opts, w.groupOpts(reset)...)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("watcher %s: %w", cfg.Name, err)
	}
	if len(cfg.Partitions) > 0 {
		m := map[string][]int32{cfg.Topic: cfg.Partitions}
		w.rebalance("assigned", m, true) // its partitions are its own from the start
	}
	w.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.poll(ctx)
	}()
	if cfg.Commit == CommitAuto {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.autoCommit(ctx)
		}()
	}
	return w, nil
}

// groupOpts are the client options of a consumer group member.
func (w *Watcher) groupOpts(reset kgo.Offset) []kgo.Opt {
	cfg := w.cfg
	return []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(reset),
		// Our own commit loop (auto) or per-batch commits (after): with
		// kgo's autocommit a Close would commit, and a crash could not be
		// told from a clean stop.
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			w.rebalance("assigned", m, true)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			if w.cfg.Commit == CommitAuto && !w.crashing.Load() {
				// A member giving partitions up in a rebalance commits first,
				// as an auto-committing consumer does.
				_ = cl.CommitUncommittedOffsets(ctx)
			}
			w.rebalance("revoked", m, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			w.rebalance("lost", m, false)
		}),
	}
}

func (w *Watcher) rebalance(what string, m map[string][]int32, add bool) {
	ps := m[w.cfg.Topic]
	w.mu.Lock()
	for _, p := range ps {
		if add {
			w.assigned[p] = true
		} else {
			delete(w.assigned, p)
		}
	}
	w.mu.Unlock()
	sorted := append([]int32(nil), ps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	w.cfg.Events.Emit(events.Event{Time: time.Now(), Kind: events.KafkaRebalance, Source: events.SourceKafka,
		ClientID: w.cfg.Name, Group: w.cfg.Group, Detail: fmt.Sprintf("%s %s partitions %v", what, w.cfg.Topic, sorted)})
	if add && len(ps) > 0 {
		w.readyOnce.Do(func() { close(w.ready) })
	}
}

// Ready is closed once the member has been given partitions of its topic.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Name is the watcher's name.
func (w *Watcher) Name() string { return w.cfg.Name }

// Config is the watcher's configuration with defaults applied.
func (w *Watcher) Config() WatcherConfig { return w.cfg }

// Delivered is how many records the watcher handed to its sink.
func (w *Watcher) Delivered() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.delivered
}

// Rewound is how many records this member read a second time (its client
// reset a partition to an earlier offset) and skipped.
func (w *Watcher) Rewound() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rewound
}

// Positions are the next offsets to read of the partitions read so far.
func (w *Watcher) Positions() map[int32]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int32]int64, len(w.next))
	for p, o := range w.next {
		out[p] = o
	}
	return out
}

func (w *Watcher) poll(ctx context.Context) {
	for {
		fs := w.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			w.cfg.Logger.Debug("kafka fetch", "watcher", w.cfg.Name, "topic", t, "partition", p, "err", err)
		})
		var last []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			last = append(last, r)
			w.mu.Lock()
			next, seen := w.next[r.Partition]
			rewound := seen && r.Offset < next
			if rewound {
				w.rewound++
			}
			w.mu.Unlock()
			if rewound {
				// This member read the offset already: its client reset the
				// partition (kfake answers a leader-epoch check after a
				// leader move with -1, which the client takes for a
				// truncated log). An application would skip it by offset
				// too; redelivery to a new member after a crash is still
				// delivered and counted.
				return
			}
			w.cfg.Sink.Deliver(decode(w.cfg.Name, r))
			w.mu.Lock()
			w.next[r.Partition] = r.Offset + 1
			w.delivered++
			w.mu.Unlock()
		})
		if w.cfg.Commit == CommitAfter && len(last) > 0 {
			if err := w.cl.CommitRecords(ctx, last...); err != nil && ctx.Err() == nil {
				w.cfg.Logger.Warn("kafka commit", "watcher", w.cfg.Name, "err", err)
			}
		}
	}
}

func (w *Watcher) autoCommit(ctx context.Context) {
	t := time.NewTicker(w.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
				w.cfg.Logger.Debug("kafka commit", "watcher", w.cfg.Name, "err", err)
			}
		}
	}
}

// decode reads what the bridge wrote into a record.
func decode(watcher string, r *kgo.Record) Delivery {
	d := Delivery{Watcher: watcher, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key),
		Size: len(r.Value), At: time.Now()}
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderTopic:
			d.MQTTTopic = string(h.Value)
		case HeaderQoS:
			if len(h.Value) == 1 {
				d.QoS = h.Value[0] - '0'
			}
		case HeaderRetain:
			d.Retain, _ = strconv.ParseBool(string(h.Value))
		}
	}
	if h, err := payload.ParseHeader(r.Value); err == nil {
		d.Header, d.HasHeader = h, true
	}
	return d
}

// EndOffsets returns the high watermark of every partition of the
// watcher's topic: a member that has read up to them has everything the
// cluster holds.
func (w *Watcher) EndOffsets(ctx context.Context) (map[int32]int64, error) {
	return endOffsets(ctx, w.cl, w.cfg.Topic)
}

func endOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(mresp.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %s: %d topics answered", topic, len(mresp.Topics))
	}
	if err := kerr.ErrorForCode(mresp.Topics[0].ErrorCode); err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range mresp.Topics[0].Partitions {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition = p.Partition
		lp.Timestamp = -1 // latest
		lt.Partitions = append(lt.Partitions, lp)
	}
	req.Topics = append(req.Topics, lt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	return out, nil
}

// CaughtUp says whether the watchers together (members of one group, or
// one watcher alone) have read every partition of their topic up to its end
// offset.
func CaughtUp(ctx context.Context, ws ...*Watcher) (bool, error) {
	if len(ws) == 0 {
		return false, errors.New("caught up: no watcher")
	}
	ends, err := ws[0].EndOffsets(ctx)
	if err != nil {
		return false, err
	}
	read := map[int32]int64{}
	covered := map[int32]bool{} // partition consumers cover only their partitions
	all := false
	for _, w := range ws {
		for p, o := range w.Positions() {
			read[p] = max(read[p], o)
		}
		all = all || len(w.cfg.Partitions) == 0
		for _, p := range w.cfg.Partitions {
			covered[p] = true
		}
	}
	for p, end := range ends {
		if !all && !covered[p] {
			continue
		}
		if end > 0 && read[p] < end {
			return false, nil
		}
	}
	return true, nil
}

// Close commits what was read (both modes), leaves the group and joins the
// watcher's goroutines.
func (w *Watcher) Close() {
	w.stop(true)
}

// Crash drops the member without committing, like a consumer process that
// died: the group redelivers what it read since its last commit.
func (w *Watcher) Crash() {
	w.crashing.Store(true)
	w.stop(false)
}

func (w *Watcher) stop(commit bool) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	if commit && len(w.cfg.Partitions) == 0 { // a partition consumer has nothing to commit
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := w.cl.CommitUncommittedOffsets(ctx); err != nil {
			w.cfg.Logger.Debug("kafka final commit", "watcher", w.cfg.Name, "err", err)
		}
		cancel()
	}
	w.cl.Close()
}
