package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/kafka"
	"github.com/mqttfleet/mqttfleet/reports"
)

func init() {
	registerGroup("kafka", "the Kafka leg: an embedded cluster, an MQTT -> Kafka bridge, a watcher (see docs/kafka.md)", kafkaCommands)
}

// kafkaCommands are `kafka serve`, `kafka bridge` and `kafka watch`.
func kafkaCommands() []*cobra.Command {
	return []*cobra.Command{kafkaServeCmd(), kafkaBridgeCmd(), kafkaWatchCmd()}
}

// kafkaServeCmd runs an embedded cluster until a signal.
func kafkaServeCmd() *cobra.Command {
	c := &cobra.Command{Use: "serve", Short: "run an embedded Kafka cluster (franz-go kfake, the real wire protocol) until Ctrl-C",
		Long: "Starts --brokers brokers on 127.0.0.1, creates the --topic topics and prints the bootstrap\n" +
			"address on standard output (bootstrap: host:port,...), then serves until Ctrl-C."}
	brokers := c.Flags().Int("brokers", 3, "number of brokers")
	port := c.Flags().Int("port", 0, "first broker's port; the others follow it (0: free ports)")
	var topics repeated
	c.Flags().Var(&topics, "topic", "topic to create as name[:partitions] (default 1 partition), repeatable")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		ts, err := parseTopics(topics)
		if err != nil {
			return err
		}
		if *brokers < 1 || *brokers > 16 {
			return fmt.Errorf("%w: --brokers must be between 1 and 16", errUsage)
		}
		cfg := kafka.ClusterConfig{Brokers: *brokers, Topics: ts}
		if *port > 0 {
			for i := 0; i < *brokers; i++ {
				cfg.Ports = append(cfg.Ports, *port+i)
			}
		}
		cl, err := kafka.StartCluster(cfg)
		if err != nil {
			return fmt.Errorf("%w: %w", reports.ErrTargetUnavailable, err)
		}
		defer cl.Close()
		fmt.Fprintf(cmd.OutOrStdout(), "bootstrap: %s\n", cl.Bootstrap())
		for _, t := range cl.Topics() {
			fmt.Fprintf(cmd.OutOrStdout(), "topic: %s (%d partitions)\n", t, cl.Partitions(t))
		}
		<-cmd.Context().Done()
		return nil
	}
	return c
}

func parseTopics(specs []string) ([]kafka.Topic, error) {
	var out []kafka.Topic
	for _, s := range specs {
		name, parts, hasParts := strings.Cut(s, ":")
		t := kafka.Topic{Name: name, Partitions: 1}
		if hasParts {
			n, err := strconv.Atoi(parts)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%w: --topic %s: partitions must be a whole number of 1 or more", errUsage, s)
			}
			t.Partitions = n
		}
		if name == "" {
			return nil, fmt.Errorf("%w: --topic %q: a topic needs a name", errUsage, s)
		}
		out = append(out, t)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// eventsFile opens a JSON-lines events file, or returns Discard for "".
func eventsFile(path string) (events.Sink, func(), error) {
	if path == "" {
		return events.Discard, func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open events file: %w", err)
	}
	jl := events.NewJSONLines(f)
	return jl, func() { jl.Close() }, nil
}

// kafkaBridgeCmd runs an MQTT -> Kafka bridge until a signal.
func kafkaBridgeCmd() *cobra.Command {
	c := &cobra.Command{Use: "bridge", Short: "bridge MQTT topic filters into a Kafka topic with sarama until Ctrl-C",
		Long: "Subscribes to --filter on --mqtt and produces every message to --topic on --kafka.\n" +
			"Records carry the MQTT topic, QoS, retain flag and device ID as headers; the key is the device\n" +
			"(topic level --key-level, or the sequence header's device). Counters are printed every --every."}
	f := c.Flags()
	name := f.String("name", "mqttfleet-bridge", "bridge name: MQTT client ID and label of its events")
	mqtt := f.String("mqtt", "tcp://127.0.0.1:1883", "MQTT broker to subscribe on")
	var filters repeated
	f.Var(&filters, "filter", "MQTT topic filter, repeatable (default #)")
	qos := f.Int("qos", 1, "subscription QoS")
	brokers := f.String("kafka", "127.0.0.1:9092", "Kafka bootstrap servers, comma separated")
	topic := f.String("topic", "mqtt", "Kafka topic")
	mode := f.String("mode", "sync", "producer: sync or async")
	acks := f.String("acks", "all", "acks: 0, 1 or all")
	idem := f.Bool("idempotent", false, "idempotent producer (needs --acks all)")
	part := f.String("partitioner", "hash", "hash (by key) or random")
	key := f.String("key", "device", "what the hash partitioner hashes: device, topic or topic_level")
	keyLevel := f.Int("key-level", -1, "topic level (0-based) naming the device; -1: the sequence header's device")
	linger := f.Duration("linger", 0, "batch linger")
	batch := f.Int("batch-messages", 0, "records per batch (0: sarama's default)")
	retries := f.Int("retries", 0, "retries per batch (0: sarama's default of 3)")
	backoff := f.Duration("backoff", 100*time.Millisecond, "first retry backoff, doubled per attempt up to 1s")
	bridgeAuth := kafkaAuthFlags(f, "")
	every := f.Duration("every", 5*time.Second, "print the counters this often (0: only at the end)")
	eventsPath := f.String("events", "", "write the bridge's events as JSON lines to this file")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		if len(filters) == 0 {
			filters = repeated{"#"}
		}
		sink, closeSink, err := eventsFile(*eventsPath)
		if err != nil {
			return err
		}
		defer closeSink()
		cfg := kafka.BridgeConfig{Name: *name, MQTT: *mqtt, Filters: filters, QoS: byte(*qos), Brokers: splitList(*brokers),
			Topic: *topic, Mode: *mode, Acks: *acks, Idempotent: *idem, Partitioner: *part, Key: *key, KeyLevel: *keyLevel,
			Linger: *linger, BatchMessages: *batch, Retries: *retries, Backoff: *backoff, Events: sink,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Auth: bridgeAuth()}
		if *qos < 0 || *qos > 2 {
			return fmt.Errorf("%w: --qos must be 0, 1 or 2", errUsage)
		}
		if err := cfg.Check(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		ctx := cmd.Context()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		b, err := kafka.StartBridge(sctx, cfg)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: %w", reports.ErrTargetUnavailable, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "bridge %s: %s %v -> kafka %s topic %s (%s, acks %s, %s)\n", *name, *mqtt, []string(filters),
			*brokers, *topic, *mode, *acks, *part)
		printEvery(ctx, cmd.OutOrStdout(), *every, func() string { return bridgeLine(b.Stats()) })
		err = b.Close()
		fmt.Fprintln(cmd.OutOrStdout(), "final: "+bridgeLine(b.Stats()))
		return err
	}
	return c
}

func bridgeLine(s kafka.Stats) string {
	return fmt.Sprintf("received %d  produced %d  failed %d  retried %d  in flight %d  backlog %d",
		s.Received, s.Produced, s.Failed, s.Retried, s.InFlight, s.Backlog)
}

// printEvery prints line() every d until ctx ends.
func printEvery(ctx context.Context, w io.Writer, d time.Duration, line func() string) {
	if d <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintln(w, line())
		}
	}
}

// watchTally counts, per device of the sequence header, what a watcher read.
type watchTally struct {
	mu        sync.Mutex
	seen      map[uint32]map[uint64]bool
	max       map[uint32]uint64
	records   int64
	dup, ooo  int64
	noHeader  int64
	latencies []time.Duration
}

func (t *watchTally) Deliver(d kafka.Delivery) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.records++
	if !d.HasHeader {
		t.noHeader++
		return
	}
	dev, seq := d.Header.Device, d.Header.Seq
	if t.seen[dev] == nil {
		t.seen[dev] = map[uint64]bool{}
	}
	switch {
	case t.seen[dev][seq]:
		t.dup++
	case seq < t.max[dev]:
		t.ooo++
		t.seen[dev][seq] = true
	default:
		t.seen[dev][seq] = true
		t.max[dev] = seq
	}
	t.latencies = append(t.latencies, d.At.Sub(d.Header.Sent))
}

func (t *watchTally) line() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	gaps := int64(0)
	for dev, m := range t.seen {
		gaps += int64(t.max[dev]) - int64(len(m)) // sequence numbers below the highest never read
	}
	p99 := time.Duration(0)
	if n := len(t.latencies); n > 0 {
		ls := append([]time.Duration(nil), t.latencies...)
		sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
		p99 = ls[min(n-1, n*99/100)]
	}
	return fmt.Sprintf("records %d  devices %d  missing below highest %d  duplicates %d  out of order %d  without header %d  p99 device->kafka %s",
		t.records, len(t.seen), gaps, t.dup, t.ooo, t.noHeader, p99.Round(time.Microsecond))
}

// kafkaWatchCmd reads a topic as a consumer group member and accounts
// every record by the sequence header devices wrote.
func kafkaWatchCmd() *cobra.Command {
	c := &cobra.Command{Use: "watch", Short: "read a Kafka topic as a consumer group member and account every record until Ctrl-C",
		Long: "Reads --topic in group --group and counts, per device of the simulator's sequence header, the\n" +
			"records read, sequence numbers missing below the highest read, duplicates, records out of order\n" +
			"and device -> Kafka latency."}
	f := c.Flags()
	name := f.String("name", "mqttfleet-watch", "watcher name: the group member's client ID")
	watchAuth := kafkaAuthFlags(f, "")
	brokers := f.String("kafka", "127.0.0.1:9092", "Kafka bootstrap servers, comma separated")
	topic := f.String("topic", "mqtt", "Kafka topic")
	group := f.String("group", "", "consumer group (default: the name)")
	offsets := f.String("offsets", "oldest", "where a group without a committed offset starts: oldest or newest")
	commit := f.String("commit", "auto", "commit mode: auto (every --commit-interval) or after (each batch once processed)")
	interval := f.Duration("commit-interval", time.Second, "auto commit interval")
	every := f.Duration("every", 5*time.Second, "print the counters this often (0: only at the end)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
		}
		tl := &watchTally{seen: map[uint32]map[uint64]bool{}, max: map[uint32]uint64{}}
		cfg := kafka.WatcherConfig{Name: *name, Brokers: splitList(*brokers), Topic: *topic, Group: *group, Offsets: *offsets,
			Commit: *commit, CommitInterval: *interval, Sink: tl, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Auth: watchAuth()}
		if err := cfg.Check(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		w, err := kafka.StartWatcher(cfg)
		if err != nil {
			return fmt.Errorf("%w: %w", reports.ErrTargetUnavailable, err)
		}
		printEvery(cmd.Context(), cmd.OutOrStdout(), *every, tl.line)
		w.Close()
		fmt.Fprintln(cmd.OutOrStdout(), "final: "+tl.line())
		return nil
	}
	return c
}

// kafkaAuthFlags binds the SASL/TLS flags of a Kafka client (prefix "" for
// the kafka commands, "kafka-" for simulate) and returns their Auth, nil
// when none is set. The password comes from $MQTTFLEET_KAFKA_PASSWORD so it
// stays out of process listings and shell history.
func kafkaAuthFlags(f *pflag.FlagSet, prefix string) func() *kafka.Auth {
	sasl := f.String(prefix+"sasl", "", "SASL mechanism to the cluster: PLAIN (password from $MQTTFLEET_KAFKA_PASSWORD)")
	user := f.String(prefix+"sasl-user", "", "SASL user")
	useTLS := f.Bool(prefix+"tls", false, "dial the cluster over TLS")
	ca := f.String(prefix+"ca-file", "", "PEM CA certificates the cluster's certificates are checked against (with --"+prefix+"tls)")
	insecure := f.Bool(prefix+"tls-insecure", false, "skip checking the cluster's certificates (with --"+prefix+"tls)")
	return func() *kafka.Auth {
		if *sasl == "" && *user == "" && !*useTLS && *ca == "" && !*insecure {
			return nil
		}
		return &kafka.Auth{SASL: *sasl, User: *user, Password: os.Getenv("MQTTFLEET_KAFKA_PASSWORD"), TLS: *useTLS, CAFile: *ca, Insecure: *insecure}
	}
}
