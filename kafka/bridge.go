package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/simulator/payload"
)

func init() {
	// sarama registers go-metrics meters whose global arbiter goroutine
	// ticks for the life of the process; the bridge keeps its own counters
	// (Stats), so the meters would only leak that goroutine into every
	// test and run that touched Kafka.
	metrics.UseNilMetrics = true
}

// Producer modes.
const (
	ModeSync  = "sync"
	ModeAsync = "async"
)

// Partitioners.
const (
	PartitionHash   = "hash"
	PartitionRandom = "random"
)

// BridgeConfig configures an MQTT -> Kafka bridge.
type BridgeConfig struct {
	// Auth is SASL and TLS to the cluster; nil for neither.
	Auth *Auth
	// Name labels the bridge's events; the MQTT client ID is the name too.
	Name string
	// MQTT is the broker to subscribe on (tcp://host:port or host:port).
	MQTT string
	// Filters are the MQTT topic filters subscribed, at QoS.
	Filters []string
	QoS     byte
	// Brokers are the Kafka bootstrap servers; Topic receives every record.
	Brokers []string
	Topic   string

	// Mode is sync (one SendMessage per MQTT message, back-pressuring the
	// MQTT link) or async (AsyncProducer; Successes and Errors drained).
	Mode string
	// Acks is "0", "1" or "all".
	Acks string
	// Idempotent turns on the idempotent producer (needs acks all).
	Idempotent bool
	// Partitioner is hash (by Key) or random.
	Partitioner string
	// Key is what the hash partitioner hashes: device (default), topic or
	// topic_level. KeyLevel is the topic level (0-based) naming the device
	// for device and topic_level; -1 takes the device from the sequence
	// header.
	Key      string
	KeyLevel int
	// Linger and BatchMessages batch records: a batch goes when it is
	// Linger old or holds BatchMessages (0: sarama's defaults, no linger).
	Linger        time.Duration
	BatchMessages int
	// Retries and Backoff: a failed batch is retried up to Retries times
	// (0: sarama's default of 3), waiting Backoff, doubled per attempt up to
	// one second.
	Retries int
	Backoff time.Duration
	// Undrained leaves the async producer's Successes and Errors channels
	// unread, the field bug that stalls a sarama async producer. Only for
	// reproducing it.
	Undrained bool
	// Persistent subscribes with a persistent session (CleanSession 0)
	// instead of a clean one, so the broker queues QoS 1/2 messages for the
	// bridge while its link is down. Reconnect, when positive, dials the
	// broker again that long after the link ended (reconnect.go).
	Persistent bool
	Reconnect  time.Duration

	// Events receives the bridge's events (source kafka) and its MQTT
	// client's (source client).
	Events events.Sink
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Check validates the configuration and fills in defaults.
func (cfg *BridgeConfig) Check() error {
	var errs []string
	if cfg.Name == "" {
		errs = append(errs, "a bridge needs a name")
	}
	if err := cfg.Auth.Check(); err != nil {
		errs = append(errs, err.Error())
	}
	if cfg.MQTT == "" {
		errs = append(errs, "an MQTT broker address")
	}
	if len(cfg.Filters) == 0 {
		errs = append(errs, "at least one MQTT filter")
	}
	if len(cfg.Brokers) == 0 {
		errs = append(errs, "Kafka bootstrap brokers")
	}
	if cfg.Topic == "" {
		errs = append(errs, "a Kafka topic")
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeSync
	}
	if cfg.Mode != ModeSync && cfg.Mode != ModeAsync {
		errs = append(errs, fmt.Sprintf("mode sync or async, not %q", cfg.Mode))
	}
	if cfg.Acks == "" {
		cfg.Acks = "all"
	}
	if _, err := requiredAcks(cfg.Acks); err != nil {
		errs = append(errs, err.Error())
	}
	if cfg.Idempotent && cfg.Acks != "all" {
		errs = append(errs, "an idempotent producer needs acks all")
	}
	if cfg.Partitioner == "" {
		cfg.Partitioner = PartitionHash
	}
	if cfg.Partitioner != PartitionHash && cfg.Partitioner != PartitionRandom {
		errs = append(errs, fmt.Sprintf("partitioner hash or random, not %q", cfg.Partitioner))
	}
	if cfg.Key == "" {
		cfg.Key = KeyDevice
	}
	if cfg.Key != KeyDevice && cfg.Key != KeyTopic && cfg.Key != KeyTopicLevel {
		errs = append(errs, fmt.Sprintf("key device, topic or topic_level, not %q", cfg.Key))
	}
	if cfg.Key == KeyTopicLevel && cfg.KeyLevel < 0 {
		errs = append(errs, "key topic_level needs a key level of 0 or more")
	}
	if cfg.Undrained && cfg.Mode != ModeAsync {
		errs = append(errs, "undrained applies to the async mode only")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Events == nil {
		cfg.Events = events.Discard
	}
	if len(errs) > 0 {
		return fmt.Errorf("bridge %s: needs %s", cfg.Name, strings.Join(errs, "; "))
	}
	return nil
}

func requiredAcks(s string) (sarama.RequiredAcks, error) {
	switch s {
	case "0":
		return sarama.NoResponse, nil
	case "1":
		return sarama.WaitForLocal, nil
	case "all", "-1":
		return sarama.WaitForAll, nil
	}
	return 0, fmt.Errorf("acks 0, 1 or all, not %q", s)
}

// saramaConfig is the producer configuration the bridge's settings describe.
func (b *Bridge) saramaConfig() (*sarama.Config, error) {
	cfg := b.cfg
	sc := sarama.NewConfig()
	sc.ClientID = "mqttfleet-" + cfg.Name
	sc.Version = sarama.V3_0_0_0
	acks, err := requiredAcks(cfg.Acks)
	if err != nil {
		return nil, err
	}
	sc.Producer.RequiredAcks = acks
	if err := cfg.Auth.sarama(sc); err != nil {
		return nil, err
	}
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	if cfg.Idempotent {
		sc.Producer.Idempotent = true
		sc.Net.MaxOpenRequests = 1 // sarama's rule for idempotence
	}
	if cfg.Partitioner == PartitionRandom {
		sc.Producer.Partitioner = sarama.NewRandomPartitioner
	} else {
		sc.Producer.Partitioner = sarama.NewHashPartitioner
	}
	sc.Producer.Flush.Frequency = cfg.Linger
	sc.Producer.Flush.Messages = cfg.BatchMessages
	if cfg.BatchMessages > 0 {
		sc.Producer.Flush.MaxMessages = cfg.BatchMessages
	}
	if cfg.Retries > 0 {
		sc.Producer.Retry.Max = cfg.Retries
	}
	base := cfg.Backoff
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	sc.Producer.Retry.BackoffFunc = func(retries, maxRetries int) time.Duration {
		// Every call is one retry round of one partition's records: the
		// only hook sarama offers to count retries.
		b.retried.Add(1)
		b.emit(events.Event{Kind: events.KafkaRetry, Detail: fmt.Sprintf("retry %d of %d", retries, maxRetries)})
		d := base << min(max(retries-1, 0), 10)
		return min(d, max(time.Second, base))
	}
	sc.Metadata.Retry.Backoff = 50 * time.Millisecond
	sc.Metadata.RefreshFrequency = time.Minute
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("producer settings: %w", err)
	}
	return sc, nil
}

// Stats are a bridge's counters.
type Stats struct {
	Received int64 // MQTT messages taken in
	Produced int64 // records acknowledged by Kafka (acks 0: written)
	Failed   int64 // records the producer gave up on
	Retried  int64 // retry rounds (one per partition batch retried)
	InFlight int64 // records handed to the producer, not yet acknowledged or failed
	Backlog  int64 // MQTT messages received by the client, not yet taken by the bridge
}

// Bridge subscribes to MQTT filters and produces every message to Kafka.
//
//	MQTT reader ─► Messages ─► intake goroutine ─┬─ sync:  SendMessage (blocks: back-pressure)
//	                                              └─ async: Input() ─► Successes/Errors drain goroutines
//
// Close stops the intake, closes the producer (flushing what it holds) and
// joins every goroutine.
type Bridge struct {
	cfg BridgeConfig

	sync  sarama.SyncProducer
	async sarama.AsyncProducer

	received, produced, failed, retried, inflight atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	intake sync.WaitGroup // the intake goroutine, joined before the producer closes
	wg     sync.WaitGroup // drain goroutines, joined after

	mu         sync.Mutex
	conn       *client.Client
	sess       *client.Session // a Persistent bridge's session, across reconnects
	subscribed time.Time
	closed     bool
}

// meta travels with a record through the producer.
type meta struct {
	topic  string
	device int
	seq    uint64
	sent   time.Time // device send time from the sequence header; zero without one
}

// StartBridge creates the producer, connects to the MQTT broker and
// subscribes; records flow until Close.
func StartBridge(ctx context.Context, cfg BridgeConfig) (*Bridge, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg}
	sc, err := b.saramaConfig()
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", cfg.Name, err)
	}
	if cfg.Mode == ModeSync {
		b.sync, err = sarama.NewSyncProducer(cfg.Brokers, sc)
	} else {
		b.async, err = sarama.NewAsyncProducer(cfg.Brokers, sc)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %s: connect to Kafka %s: %w", cfg.Name, strings.Join(cfg.Brokers, ","), err)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if b.async != nil && !cfg.Undrained {
		b.drain()
	}
	conn, _, err := client.Dial(ctx, cfg.MQTT, b.mqttOptions())
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("bridge %s: connect to MQTT %s: %w", cfg.Name, cfg.MQTT, err)
	}
	if err := b.subscribe(ctx, conn); err != nil {
		conn.Close()
		b.Close()
		return nil, fmt.Errorf("bridge %s: subscribe: %w", cfg.Name, err)
	}
	b.mu.Lock()
	b.conn, b.subscribed = conn, time.Now()
	b.mu.Unlock()
	b.intake.Add(1)
	go func() { // intake: one MQTT message at a time, in arrival order
		defer b.intake.Done()
		b.run(conn)
	}()
	return b, nil
}

// Subscribed is when the bridge's SUBACK arrived: messages published after
// it are owed to Kafka.
func (b *Bridge) Subscribed() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subscribed
}

// Config is the bridge's configuration with defaults applied.
func (b *Bridge) Config() BridgeConfig { return b.cfg }

// Stats returns the bridge's counters now.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	conn := b.conn
	b.mu.Unlock()
	var backlog int64
	if conn != nil {
		backlog = int64(len(conn.Messages()))
	}
	return Stats{Received: b.received.Load(), Produced: b.produced.Load(), Failed: b.failed.Load(),
		Retried: b.retried.Load(), InFlight: b.inflight.Load(), Backlog: backlog}
}

func (b *Bridge) emit(e events.Event) {
	e.Source, e.ClientID = events.SourceKafka, b.cfg.Name
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.cfg.Events.Emit(e)
}

func (b *Bridge) run(conn *client.Client) {
	msgs := conn.Messages()
	for {
		select {
		case <-b.ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				if b.ctx.Err() == nil {
					b.emit(events.Event{Kind: events.Log, Detail: fmt.Sprintf("bridge MQTT link ended: %v", conn.Err())})
				}
				if conn = b.reconnect(); conn == nil {
					return
				}
				msgs = conn.Messages()
				continue
			}
			if b.ctx.Err() != nil {
				return // closing: the producer must not take more
			}
			b.handle(m)
		}
	}
}

// handle produces one MQTT message.
func (b *Bridge) handle(m *packet.Publish) {
	b.received.Add(1)
	h, herr := payload.ParseHeader(m.Payload)
	md := &meta{topic: m.Topic}
	if herr == nil {
		md.device, md.seq, md.sent = int(h.Device)+1, h.Seq, h.Sent
	}
	key, device := b.cfg.keyOf(m.Topic, h, herr == nil)
	pm := &sarama.ProducerMessage{Topic: b.cfg.Topic, Value: sarama.ByteEncoder(m.Payload),
		Headers: headers(m.Topic, m.QoS, m.Retain, device), Metadata: md}
	if key != "" {
		pm.Key = sarama.StringEncoder(key)
	}
	b.inflight.Add(1)
	if b.sync != nil {
		_, _, err := b.sync.SendMessage(pm)
		if err != nil {
			b.fail(pm, err)
			return
		}
		b.ok(pm)
		return
	}
	select {
	case b.async.Input() <- pm:
	case <-b.ctx.Done():
		b.inflight.Add(-1) // never handed over
	}
}

func (b *Bridge) ok(pm *sarama.ProducerMessage) {
	b.inflight.Add(-1)
	b.produced.Add(1)
	md := pm.Metadata.(*meta)
	e := events.Event{Kind: events.KafkaProduced, Topic: md.topic, Seq: md.seq, Device: md.device,
		Detail: fmt.Sprintf("%s/%d@%d", pm.Topic, pm.Partition, pm.Offset)}
	if !md.sent.IsZero() {
		e.Latency = time.Since(md.sent)
	}
	b.emit(e)
}

func (b *Bridge) fail(pm *sarama.ProducerMessage, err error) {
	b.inflight.Add(-1)
	b.failed.Add(1)
	md := pm.Metadata.(*meta)
	b.emit(events.Event{Kind: events.KafkaFailed, Topic: md.topic, Seq: md.seq, Device: md.device, Detail: err.Error()})
}

// drain reads the async producer's Successes and Errors until they close
// (when the producer is closed): sarama blocks its sender when nobody does.
func (b *Bridge) drain() {
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		for pm := range b.async.Successes() {
			b.ok(pm)
		}
	}()
	go func() {
		defer b.wg.Done()
		for pe := range b.async.Errors() {
			b.fail(pe.Msg, pe.Err)
		}
	}()
}

// Close disconnects from MQTT, flushes and closes the producer and joins
// every goroutine.
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	conn := b.conn
	b.mu.Unlock()
	if b.cancel != nil {
		b.cancel()
	}
	var errs []error
	if conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = conn.Disconnect(ctx) // the link may be gone already
		cancel()
	}
	if b.async != nil && b.cfg.Undrained {
		// Nobody read the channels during the run; read them now so the
		// producer's Close, which waits for them, can return.
		b.drain()
	}
	// A send after the producer closed would panic in sarama, so the
	// intake ends first; inside SendMessage it returns once the record is
	// acknowledged or given up (bounded by retries and timeouts).
	b.intake.Wait()
	if b.sync != nil {
		errs = append(errs, b.sync.Close())
	}
	if b.async != nil {
		b.async.AsyncClose()
	}
	b.wg.Wait()
	return errors.Join(errs...)
}
