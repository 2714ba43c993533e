package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/mqttfleet/mqttfleet/events"
)

// Topic is a topic to create, with its partition count.
type Topic struct {
	Name       string
	Partitions int
}

// ClusterConfig configures an embedded cluster.
type ClusterConfig struct {
	// Brokers is the number of brokers (default 3).
	Brokers int
	// Ports fixes the brokers' ports on 127.0.0.1 (one per broker; default
	// free ports). When set, Brokers is len(Ports).
	Ports []int
	// Topics are created at start.
	Topics []Topic
	// Events receives fault_injected and fault_removed events for the
	// Kafka-side faults (source kafka).
	Events events.Sink
	// SASLUsers, when set, makes the cluster require SASL PLAIN with one of
	// these user -> password pairs (as a secured cluster does); TLS serves
	// every broker over TLS.
	SASLUsers map[string]string
	TLS       *tls.Config
}

// Cluster is an embedded Kafka cluster (franz-go's kfake) with fault hooks.
// Close stops it and every fault window it scheduled.
type Cluster struct {
	kc     *kfake.Cluster
	sink   events.Sink
	topics map[string]int

	mu     sync.Mutex
	closed bool
	faults sync.WaitGroup // fault windows waiting to end
	quit   chan struct{}
}

// StartCluster starts an embedded cluster on 127.0.0.1.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	n := cfg.Brokers
	if n <= 0 {
		n = 3
	}
	opts := []kfake.Opt{kfake.NumBrokers(n), kfake.ClusterID("mqttfleet")}
	if len(cfg.SASLUsers) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for u, p := range cfg.SASLUsers {
			opts = append(opts, kfake.Superuser(SASLPlain, u, p))
		}
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if len(cfg.Ports) > 0 {
		opts = append(opts, kfake.Ports(cfg.Ports...))
	}
	topics := map[string]int{}
	for _, t := range cfg.Topics {
		if t.Name == "" {
			return nil, errors.New("start kafka cluster: a topic needs a name")
		}
		p := t.Partitions
		if p <= 0 {
			p = 1
		}
		topics[t.Name] = p
		opts = append(opts, kfake.SeedTopics(int32(p), t.Name))
	}
	kc, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start kafka cluster: %w", err)
	}
	sink := cfg.Events
	if sink == nil {
		sink = events.Discard
	}
	return &Cluster{kc: kc, sink: sink, topics: topics, quit: make(chan struct{})}, nil
}

// Addrs are the brokers' host:port addresses, the bootstrap servers.
func (c *Cluster) Addrs() []string { return c.kc.ListenAddrs() }

// Bootstrap is Addrs joined with commas, the form Kafka tools take.
func (c *Cluster) Bootstrap() string { return strings.Join(c.Addrs(), ",") }

// Partitions returns the partition count of a topic created at start, or 0.
func (c *Cluster) Partitions(topic string) int { return c.topics[topic] }

// Topics lists the topics created at start, sorted.
func (c *Cluster) Topics() []string {
	out := make([]string, 0, len(c.topics))
	for t := range c.topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ErrorCode returns the Kafka error of a name such as NOT_LEADER_FOR_PARTITION
// or a numeric code such as "6".
func ErrorCode(name string) (*kerr.Error, error) {
	var code int16
	if _, err := fmt.Sscanf(name, "%d", &code); err == nil {
		if e := kerr.TypedErrorForCode(code); e != nil {
			return e, nil
		}
		return nil, fmt.Errorf("unknown Kafka error code %d", code)
	}
	for c := int16(-1); c < 200; c++ {
		if e := kerr.TypedErrorForCode(c); e != nil && strings.EqualFold(e.Message, name) {
			return e, nil
		}
	}
	return nil, fmt.Errorf("unknown Kafka error %q (want a name such as NOT_LEADER_FOR_PARTITION or a code)", name)
}

// RequestFault is a window of failing produce or fetch requests.
type RequestFault struct {
	h      *kfake.FaultHandle
	c      *Cluster
	end    chan struct{}
	once   sync.Once
	topic  string
	code   *kerr.Error
	detail string
	name   string // the Fault of its events: kafka_fail_produce or kafka_fail_fetch
}

// ProduceFault is the RequestFault of FailProduce (the name it had first).
type ProduceFault = RequestFault

// FailProduce fails every produce request for topic ("" for every topic)
// with errCode for the window d (0: until End or Close), then lets them
// through again. The broker does not append a failed batch, except for
// REQUEST_TIMED_OUT and NOT_ENOUGH_REPLICAS_AFTER_APPEND, which Kafka sends
// after appending: a producer that retries then writes the batch twice
// unless it is idempotent. The fault is in place when FailProduce returns.
func (c *Cluster) FailProduce(topic string, errCode *kerr.Error, d time.Duration) (*RequestFault, error) {
	return c.failRequests(kmsg.Produce, "kafka_fail_produce", "produce", topic, errCode, d)
}

// FailFetch fails every fetch request for topic ("" for every topic) with
// errCode for the window d (0: until End or Close): consumers read nothing
// and retry, as from a broker whose disk or replica is in trouble; records
// already written wait and are read once the window ends.
func (c *Cluster) FailFetch(topic string, errCode *kerr.Error, d time.Duration) (*RequestFault, error) {
	return c.failRequests(kmsg.Fetch, "kafka_fail_fetch", "fetch", topic, errCode, d)
}

func (c *Cluster) failRequests(key kmsg.Key, name, what, topic string, errCode *kerr.Error, d time.Duration) (*RequestFault, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("fail %s: cluster closed", what)
	}
	f := &RequestFault{c: c, end: make(chan struct{}), topic: topic, code: errCode, name: name,
		h: c.kc.Fault(kfake.Fault{Keys: []kmsg.Key{key}, Topic: topic, Err: errCode, Count: -1})}
	f.detail = fmt.Sprintf("%s requests fail with %s", what, errCode.Message)
	if topic != "" {
		f.detail += " on " + topic
	}
	c.sink.Emit(events.Event{Time: time.Now(), Kind: events.FaultInjected, Source: events.SourceKafka,
		Fault: name, Topic: topic, Code: int(errCode.Code), Detail: f.detail})
	c.faults.Add(1)
	go func() { // ends the window after d, at End, or at Close
		defer c.faults.Done()
		var after <-chan time.Time
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			after = t.C
		}
		select {
		case <-after:
		case <-f.end:
		case <-c.quit:
		}
		f.h.Remove()
		c.sink.Emit(events.Event{Time: time.Now(), Kind: events.FaultRemoved, Source: events.SourceKafka,
			Fault: name, Topic: topic, Code: int(errCode.Code),
			Detail: fmt.Sprintf("%s; %d requests failed", f.detail, f.h.Hits())})
	}()
	return f, nil
}

// Hits is how many requests the fault has failed so far.
func (f *RequestFault) Hits() int { return f.h.Hits() }

// Wait blocks until the fault has failed n requests or ctx ends.
func (f *RequestFault) Wait(ctx context.Context, n int) error { return f.h.Wait(ctx, n) }

// End ends the window now; requests after it go through.
func (f *RequestFault) End() {
	f.h.Remove() // at once; the window's goroutine reports it
	f.once.Do(func() { close(f.end) })
}

// MoveLeader makes broker node (0-based) the leader of a topic's partition;
// node -1 moves it to the next broker. Producers writing to the old leader
// get NOT_LEADER_FOR_PARTITION until they refresh their metadata.
func (c *Cluster) MoveLeader(topic string, partition int32, node int32) error {
	if _, ok := c.topics[topic]; !ok {
		return fmt.Errorf("move leader: unknown topic %q", topic)
	}
	from := c.kc.LeaderFor(topic, partition)
	if from < 0 {
		return fmt.Errorf("move leader: %s/%d has no leader", topic, partition)
	}
	if node < 0 {
		node = (from + 1) % int32(len(c.Addrs()))
	}
	if err := c.kc.MoveTopicPartition(topic, partition, node); err != nil {
		return fmt.Errorf("move leader of %s/%d to %d: %w", topic, partition, node, err)
	}
	c.sink.Emit(events.Event{Time: time.Now(), Kind: events.FaultInjected, Source: events.SourceKafka,
		Fault: "kafka_move_leader", Topic: topic, Detail: fmt.Sprintf("leader of %s/%d moved from broker %d to %d", topic, partition, from, node)})
	return nil
}

// MoveLeaders moves the leader of every partition of topic to the next broker.
func (c *Cluster) MoveLeaders(topic string) error {
	for p := 0; p < c.topics[topic]; p++ {
		if err := c.MoveLeader(topic, int32(p), -1); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the cluster; pending fault windows end with it.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.quit)
	c.mu.Unlock()
	c.faults.Wait()
	c.kc.Close()
}

// HoldProduce makes the cluster hold every produce request unanswered
// until release is called (or the cluster closes): records pile up in the
// producer as in-flight, as behind a stalled broker, without failing.
// Other requests (metadata, fetches) are served meanwhile. release is
// idempotent.
func (c *Cluster) HoldProduce() (release func()) {
	held := make(chan struct{})
	var once sync.Once
	c.kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.kc.KeepControl()
		select {
		case <-held:
		default:
			// Yields to the cluster's other requests while this one waits.
			c.kc.SleepControl(func() {
				select {
				case <-held:
				case <-c.quit:
				}
			})
		}
		return nil, nil, false // then served as usual
	})
	return func() { once.Do(func() { close(held) }) }
}
