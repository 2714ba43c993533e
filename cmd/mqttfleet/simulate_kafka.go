package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/kafka"
	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/simulator"
)

// simulate --kafka-watch: a Kafka consumer group reads the topic the
// fleet's messages are bridged to (by `mqttfleet kafka bridge`, EMQX's
// Kafka bridge, a service of the user's) and accounts every record against
// what each device published: lost, duplicated, out of order per device,
// and device -> Kafka latency, in the same results file and verdicts as the
// MQTT leg.

type kafkaWatchFlags struct {
	auth    func() *kafka.Auth
	spec    string
	group   string
	maxLoss string
	maxDup  string
	drain   time.Duration
}

func (k *kafkaWatchFlags) define(fs *pflag.FlagSet) {
	fs.StringVar(&k.spec, "kafka-watch", "", "also read the fleet's records from Kafka: bootstrap[,bootstrap...]/topic (e.g. 127.0.0.1:9092/telemetry); every record is accounted per device")
	fs.StringVar(&k.group, "kafka-group", "", "consumer group of --kafka-watch (default: a fresh group per run, reading from the oldest offset)")
	fs.StringVar(&k.maxLoss, "kafka-max-loss", "0", "verdict: published messages never read from Kafka, a count or a share")
	fs.StringVar(&k.maxDup, "kafka-max-dup", "", "verdict: duplicate records allowed, a count or a share (default unchecked: at least once allows them)")
	fs.DurationVar(&k.drain, "kafka-drain", 30*time.Second, "after publishing, wait at most this long for the last records to reach Kafka")
	k.auth = kafkaAuthFlags(fs, "kafka-")
}

// parse splits bootstrap/topic.
func (k *kafkaWatchFlags) parse() (brokers []string, topic string, err error) {
	i := strings.LastIndexByte(k.spec, '/')
	if i <= 0 || i == len(k.spec)-1 {
		return nil, "", fmt.Errorf("%w: --kafka-watch %q: want bootstrap[,bootstrap...]/topic, such as 127.0.0.1:9092/telemetry", errUsage, k.spec)
	}
	for _, b := range strings.Split(k.spec[:i], ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return brokers, k.spec[i+1:], nil
}

// kafkaLedger counts what the watcher read, per device and sequence number.
type kafkaLedger struct {
	run uint32

	mu      sync.Mutex
	seen    map[uint32]map[uint64]int
	maxSeq  map[uint32]uint64
	ooo     int
	foreign int // records without this run's header
	last    time.Time
	wake    chan struct{}
}

func newKafkaLedger(run uint32) *kafkaLedger {
	return &kafkaLedger{run: run, seen: map[uint32]map[uint64]int{}, maxSeq: map[uint32]uint64{}, wake: make(chan struct{}, 1)}
}

func (l *kafkaLedger) Deliver(d kafka.Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = time.Now()
	if !d.HasHeader || d.Header.Run != l.run {
		l.foreign++
		return
	}
	dev, seq := d.Header.Device, d.Header.Seq
	if l.seen[dev] == nil {
		l.seen[dev] = map[uint64]int{}
	}
	if l.seen[dev][seq] == 0 && seq < l.maxSeq[dev] {
		l.ooo++
	}
	l.seen[dev][seq]++
	l.maxSeq[dev] = max(l.maxSeq[dev], seq)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// tally accounts the ledger against what each device published.
func (l *kafkaLedger) tally(published map[int]uint64) (expected, lost, dups int64, ooo int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for dev, n := range published {
		expected += int64(n)
		got := l.seen[uint32(dev)]
		for seq := uint64(1); seq <= n; seq++ {
			if got[seq] == 0 {
				lost++
			}
		}
	}
	for _, m := range l.seen {
		for _, c := range m {
			dups += int64(max(c-1, 0))
		}
	}
	return expected, lost, dups, l.ooo
}

// waitAll waits until every published message was read, the records stop
// coming for quiet, or max passes.
func (l *kafkaLedger) waitAll(ctx context.Context, published func() map[int]uint64, quiet, max time.Duration) {
	deadline := time.After(max)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, lost, _, _ := l.tally(published()); lost == 0 {
			return
		}
		l.mu.Lock()
		idle := !l.last.IsZero() && time.Since(l.last) > quiet
		l.mu.Unlock()
		if idle {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-l.wake:
		case <-tick.C:
		}
	}
}

// kafkaWatch is the watcher of one simulate run and its ledger.
type kafkaWatch struct {
	flags   *kafkaWatchFlags
	brokers []string
	topic   string
	maxLoss simulator.Threshold
	maxDup  simulator.Threshold

	fleet  *simulator.Fleet
	ledger *kafkaLedger
	w      *kafka.Watcher
}

// newKafkaWatch checks the flags and sets the fleet's AfterPublishing wait
// (cfg is then given to simulator.New; start follows).
func newKafkaWatch(k *kafkaWatchFlags, cfg *simulator.Config) (*kafkaWatch, error) {
	brokers, topic, err := k.parse()
	if err != nil {
		return nil, err
	}
	kw := &kafkaWatch{flags: k, brokers: brokers, topic: topic}
	if kw.maxLoss, err = simulator.ParseThreshold(k.maxLoss); err != nil {
		return nil, fmt.Errorf("%w: --kafka-max-loss: %v", errUsage, err)
	}
	if k.maxDup != "" {
		if kw.maxDup, err = simulator.ParseThreshold(k.maxDup); err != nil {
			return nil, fmt.Errorf("%w: --kafka-max-dup: %v", errUsage, err)
		}
	}
	cfg.AfterPublishing = func(ctx context.Context) {
		kw.ledger.waitAll(ctx, kw.fleet.Published, 5*time.Second, k.drain)
	}
	return kw, nil
}

// start starts the watcher, before the fleet runs: it reads the topic from
// its oldest offset in a fresh group, so a record written before it joined
// is still read.
func (kw *kafkaWatch) start(f *simulator.Fleet) error {
	kw.fleet = f
	kw.ledger = newKafkaLedger(f.PayloadRun())
	group := kw.flags.group
	if group == "" {
		group = fmt.Sprintf("mqttfleet-%08x-%d", f.PayloadRun(), time.Now().UnixNano())
	}
	ev := kafka.EventSink(events.SinkFunc(f.Inject), f.PayloadRun())
	w, err := kafka.StartWatcher(kafka.WatcherConfig{Name: "kafka-watch", Brokers: kw.brokers, Topic: kw.topic, Group: group,
		Offsets: kafka.OffsetsOldest, Commit: kafka.CommitAuto, Auth: kw.flags.auth(),
		Sink: kafka.SinkFunc(func(d kafka.Delivery) { kw.ledger.Deliver(d); ev.Deliver(d) })})
	if err != nil {
		return fmt.Errorf("--kafka-watch %s: %w", kw.flags.spec, err)
	}
	kw.w = w
	return nil
}

func (kw *kafkaWatch) stop() {
	if kw.w != nil {
		kw.w.Close()
	}
}

// judge writes the Kafka leg's totals and verdicts into res.
func (kw *kafkaWatch) judge(res *reports.Results) {
	expected, lost, dups, ooo := kw.ledger.tally(kw.fleet.Published())
	res.Counters["kafka_expected"] = expected
	res.Counters["kafka_lost"] = lost
	res.Counters["kafka_duplicates"] = dups
	res.Counters["kafka_out_of_order"] = int64(ooo)
	kw.ledger.mu.Lock()
	foreign := kw.ledger.foreign
	kw.ledger.mu.Unlock()
	verdict, msg := reports.Pass, fmt.Sprintf("%d published, %d read from Kafka topic %s: %d lost (max %s), %d duplicates, %d out of order per device",
		expected, expected-lost, kw.topic, lost, kw.maxLoss, dups, ooo)
	if foreign > 0 {
		msg += fmt.Sprintf("; %d records of other runs ignored", foreign)
	}
	switch {
	case expected == 0:
		verdict, msg = reports.Fail, "nothing was published: no record to account (a green verdict needs messages)"
	case float64(lost) > kw.maxLoss.Of(expected):
		verdict = reports.Fail
	}
	res.AddAssertion(reports.Assertion{Name: "kafka: every published message read from " + kw.topic, Verdict: verdict, Message: msg})
	if kw.flags.maxDup != "" {
		v := reports.Pass
		if float64(dups) > kw.maxDup.Of(expected) {
			v = reports.Fail
		}
		res.AddAssertion(reports.Assertion{Name: "kafka: duplicate records", Verdict: v,
			Message: fmt.Sprintf("%d duplicates of %d published (max %s)", dups, expected, kw.maxDup)})
	}
}
