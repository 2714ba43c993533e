package scenarios

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/kafka"
)

// Kafka is a scenario's Kafka leg: devices -> broker -> bridges -> Kafka ->
// watchers. Every record a watcher reads is a publish_received event (source
// kafka, client the watcher's name), so `delivery` accounts it like an MQTT
// receipt: from devices to a watcher, lost, duplicated, out of order per key.
type Kafka struct {
	Cluster  KafkaCluster   `yaml:"cluster"`
	Topics   []KafkaTopic   `yaml:"topics"`
	Bridges  []KafkaBridge  `yaml:"bridges"`
	Watchers []KafkaWatcher `yaml:"watchers"`
	// Settle bounds the wait after the drain for bridges to empty and
	// watchers to read up to the end of their topics (default 20s).
	Settle Duration `yaml:"settle"`
}

// KafkaCluster is where Kafka runs: embedded (kfake, in-process, default)
// or external (bootstrap addresses of a running cluster).
type KafkaCluster struct {
	Kind      string `yaml:"kind"`
	Brokers   int    `yaml:"brokers"`
	Bootstrap string `yaml:"bootstrap"`
	// Auth is SASL and TLS to an external cluster (kafka.Auth).
	Auth *KafkaAuth `yaml:"auth"`
}

// KafkaAuth is how bridges and watchers authenticate to an external cluster.
type KafkaAuth struct {
	SASL     string `yaml:"sasl"` // "" or PLAIN
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	TLS      bool   `yaml:"tls"`
	CAFile   string `yaml:"ca_file"`
	Insecure bool   `yaml:"insecure"`
}

// auth is the kafka.Auth of a cluster's settings (nil for none).
func (c *KafkaCluster) auth() *kafka.Auth {
	if c.Auth == nil {
		return nil
	}
	a := kafka.Auth(*c.Auth)
	return &a
}

// KafkaTopic is a topic the embedded cluster creates.
type KafkaTopic struct {
	Name       string `yaml:"name"`
	Partitions int    `yaml:"partitions"`
}

// KafkaBridge is an MQTT -> Kafka bridge; see kafka.BridgeConfig.
type KafkaBridge struct {
	Name          string   `yaml:"name"`
	Filters       []string `yaml:"filters"`
	QoS           int      `yaml:"qos"`
	Topic         string   `yaml:"topic"`
	Mode          string   `yaml:"mode"`
	Acks          string   `yaml:"acks"`
	Idempotent    bool     `yaml:"idempotent"`
	Partitioner   string   `yaml:"partitioner"`
	Key           string   `yaml:"key"`
	KeyLevel      *int     `yaml:"key_level"`
	Linger        Duration `yaml:"linger"`
	BatchMessages int      `yaml:"batch_messages"`
	Retries       int      `yaml:"retries"`
	Backoff       Duration `yaml:"backoff"`
	Undrained     bool     `yaml:"undrained"`
	// CleanSession false gives the bridge a persistent MQTT session, and
	// Reconnect dials the broker again that long after its link ended (a
	// broker restart); see kafka.BridgeConfig.Persistent.
	CleanSession *bool    `yaml:"clean_session"`
	Reconnect    Duration `yaml:"reconnect"`
}

// KafkaWatcher is a consumer group member; see kafka.WatcherConfig.
type KafkaWatcher struct {
	Name  string `yaml:"name"`
	Topic string `yaml:"topic"`
	Group string `yaml:"group"`
	// Partitions makes the watcher a partition consumer of just these
	// partitions, without a group (kafka.WatcherConfig.Partitions).
	Partitions     []int32  `yaml:"partitions"`
	Offsets        string   `yaml:"offsets"`
	Commit         string   `yaml:"commit"`
	CommitInterval Duration `yaml:"commit_interval"`
	// Start is setup (default: joins before the timeline) or step (joins
	// at a kafka_start_watcher step).
	Start string `yaml:"start"`
}

// Kafka step actions.
const (
	DoKafkaFailProduce  = "kafka_fail_produce"
	DoKafkaMoveLeader   = "kafka_move_leader"
	DoKafkaRestore      = "kafka_restore"
	DoKafkaCrashWatcher = "kafka_crash_watcher"
	DoKafkaStartWatcher = "kafka_start_watcher"
	DoKafkaFailFetch    = "kafka_fail_fetch"
	DoKafkaStopBridge   = "kafka_stop_bridge"
	DoKafkaStartBridge  = "kafka_start_bridge"
)

func init() {
	actionFields[DoKafkaFailProduce] = []string{"topic", "error", "for"}
	actionFields[DoKafkaMoveLeader] = []string{"topic", "partition"}
	actionFields[DoKafkaRestore] = nil
	actionFields[DoKafkaCrashWatcher] = []string{"watcher"}
	actionFields[DoKafkaStartWatcher] = []string{"watcher"}
	actionFields[DoKafkaFailFetch] = []string{"topic", "error", "for"}
	actionFields[DoKafkaStopBridge] = []string{"bridge"}
	actionFields[DoKafkaStartBridge] = []string{"bridge"}
	eventKinds = append(eventKinds, events.KafkaProduced, events.KafkaFailed, events.KafkaRetry, events.KafkaRebalance)
	eventSources = append(eventSources, events.SourceKafka)
}

func isKafkaAction(do string) bool {
	switch do {
	case DoKafkaFailProduce, DoKafkaMoveLeader, DoKafkaRestore, DoKafkaCrashWatcher, DoKafkaStartWatcher,
		DoKafkaFailFetch, DoKafkaStopBridge, DoKafkaStartBridge:
		return true
	}
	return false
}

// kafkaClientID says whether pattern names a bridge or a watcher.
func (sc *Scenario) kafkaClientID(pattern string) bool {
	if sc.Kafka == nil {
		return false
	}
	for _, b := range sc.Kafka.Bridges {
		if globMatch(pattern, b.Name) {
			return true
		}
	}
	for _, w := range sc.Kafka.Watchers {
		if globMatch(pattern, w.Name) {
			return true
		}
	}
	return false
}

func (sc *Scenario) validateKafka(c *checker) {
	k := sc.Kafka
	if k == nil {
		return
	}
	cl := &k.Cluster
	switch cl.Kind {
	case "":
		cl.Kind = "embedded"
	case "embedded", "external":
	default:
		c.fail("kafka.cluster.kind", "kafka cluster kind must be embedded or external, not %q", cl.Kind)
	}
	if cl.Auth != nil {
		if cl.Kind != "external" {
			c.fail("kafka.cluster.auth", "auth is for an external cluster; the embedded one needs none")
		} else if err := cl.auth().Check(); err != nil {
			c.fail("kafka.cluster.auth", "%v", err)
		}
	}
	if cl.Kind == "external" && cl.Bootstrap == "" {
		c.fail("kafka.cluster.bootstrap", "an external cluster needs bootstrap: host:port[,host:port...]")
	}
	if cl.Kind == "embedded" && cl.Bootstrap != "" {
		c.fail("kafka.cluster.bootstrap", "bootstrap is only used with kind: external")
	}
	if cl.Brokers < 0 || cl.Brokers > 16 {
		c.fail("kafka.cluster.brokers", "must be between 1 and 16")
	}
	if cl.Brokers == 0 {
		cl.Brokers = 3
	}
	if k.Settle < 0 {
		c.fail("kafka.settle", "must not be negative")
	}
	if k.Settle == 0 {
		k.Settle = Duration(20 * time.Second)
	}
	topics := map[string]bool{}
	for i, t := range k.Topics {
		f := fmt.Sprintf("kafka.topics[%d]", i)
		if t.Name == "" {
			c.fail(f, "a topic needs a name")
		} else if topics[t.Name] {
			c.fail(f+".name", "topic %q is listed twice", t.Name)
		}
		topics[t.Name] = true
		if t.Partitions < 0 || t.Partitions > 1000 {
			c.fail(f+".partitions", "must be between 1 and 1000")
		}
		if t.Partitions == 0 {
			k.Topics[i].Partitions = 1
		}
	}
	topicKnown := func(f, name string) {
		if name == "" {
			c.fail(f, "needs a topic")
		} else if cl.Kind == "embedded" && !topics[name] {
			c.fail(f, "no topic %q under kafka.topics (topics: %s)", name, joinKeys(topics))
		}
	}
	names := map[string]string{}
	for _, g := range sc.Groups {
		names[g.Name] = "group"
	}
	for _, cli := range sc.Clients {
		names[cli.Name] = "client"
	}
	claim := func(f, name, what string) {
		if name == "" {
			c.fail(f, "a %s needs a name", what)
			return
		}
		if other, ok := names[name]; ok {
			c.fail(f+".name", "%q is already the name of a %s", name, other)
		}
		names[name] = what
	}
	if len(k.Bridges) == 0 {
		c.fail("kafka.bridges", "the kafka section needs at least one bridge: nothing reaches Kafka without one")
	}
	for i := range k.Bridges {
		b := &k.Bridges[i]
		f := fmt.Sprintf("kafka.bridges[%d]", i)
		claim(f, b.Name, "bridge")
		if len(b.Filters) == 0 {
			c.fail(f+".filters", "a bridge needs MQTT topic filters, such as [fleet/+/telemetry]")
		}
		for j, flt := range b.Filters {
			if err := checkFilter(flt); err != nil {
				c.fail(fmt.Sprintf("%s.filters[%d]", f, j), "%v", err)
			}
		}
		checkQoS(c, f+".qos", b.QoS)
		topicKnown(f+".topic", b.Topic)
		if b.Linger < 0 || b.Backoff < 0 || b.BatchMessages < 0 || b.Retries < 0 || b.Reconnect < 0 {
			c.fail(f, "linger, backoff, batch_messages, retries and reconnect must not be negative")
		}
		level := -1
		if b.KeyLevel != nil {
			level = *b.KeyLevel
		}
		enum := func(field, v string, allowed ...string) {
			if v != "" && !oneOf(v, allowed) {
				c.fail(f+"."+field, "%s must be %s, not %q%s", field, strings.Join(allowed, " or "), v, suggest(v, allowed))
			}
		}
		enum("mode", b.Mode, kafka.ModeSync, kafka.ModeAsync)
		enum("acks", b.Acks, "0", "1", "all")
		enum("partitioner", b.Partitioner, kafka.PartitionHash, kafka.PartitionRandom)
		enum("key", b.Key, kafka.KeyDevice, kafka.KeyTopic, kafka.KeyTopicLevel)
		if b.Idempotent && b.Acks != "" && b.Acks != "all" {
			c.fail(f+".idempotent", "an idempotent producer needs acks: all (Kafka refuses it with acks %s)", b.Acks)
		}
		if b.Undrained && b.Mode != kafka.ModeAsync {
			c.fail(f+".undrained", "undrained applies to mode: async (the channels of sarama's async producer)")
		}
		if b.Key == kafka.KeyTopicLevel && b.KeyLevel == nil {
			c.fail(f+".key", "key: topic_level needs key_level: the topic level (0-based) to hash")
		}
		if c.failed() {
			continue
		}
		cfg := kafka.BridgeConfig{Name: "x", MQTT: "x", Filters: []string{"x"}, Brokers: []string{"x"}, Topic: "x",
			Mode: b.Mode, Acks: b.Acks, Idempotent: b.Idempotent, Partitioner: b.Partitioner, Key: b.Key, KeyLevel: level,
			Undrained: b.Undrained}
		if err := cfg.Check(); err != nil {
			c.fail(f, "%s", strings.TrimPrefix(err.Error(), "bridge x: "))
		}
	}
	for i := range k.Watchers {
		w := &k.Watchers[i]
		f := fmt.Sprintf("kafka.watchers[%d]", i)
		claim(f, w.Name, "watcher")
		topicKnown(f+".topic", w.Topic)
		switch w.Start {
		case "":
			w.Start = "setup"
		case "setup", "step":
		default:
			c.fail(f+".start", "start must be setup (before the timeline) or step (at a kafka_start_watcher step), not %q", w.Start)
		}
		if w.CommitInterval < 0 {
			c.fail(f+".commit_interval", "must not be negative")
		}
		for _, e := range []struct {
			field, v string
			allowed  []string
		}{
			{"offsets", w.Offsets, []string{kafka.OffsetsOldest, kafka.OffsetsNewest}},
			{"commit", w.Commit, []string{kafka.CommitAuto, kafka.CommitAfter}},
		} {
			if e.v != "" && !oneOf(e.v, e.allowed) {
				c.fail(f+"."+e.field, "%s must be %s, not %q%s", e.field, strings.Join(e.allowed, " or "), e.v, suggest(e.v, e.allowed))
			}
		}
		if c.failed() {
			continue
		}
		cfg := kafka.WatcherConfig{Name: "x", Brokers: []string{"x"}, Topic: "x", Offsets: w.Offsets, Commit: w.Commit,
			Group: w.Group, Partitions: w.Partitions, Sink: kafka.SinkFunc(func(kafka.Delivery) {})}
		if err := cfg.Check(); err != nil {
			c.fail(f, "%s", strings.TrimPrefix(err.Error(), "watcher x: "))
		}
	}
}

func joinKeys(m map[string]bool) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return "none"
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func (sc *Scenario) validateKafkaStep(c *checker, s *Step, f string) {
	k := sc.Kafka
	if k == nil {
		c.fail(f+".do", "do: %s needs a kafka: section", s.Do)
		return
	}
	embeddedOnly := func() {
		if k.Cluster.Kind != "embedded" {
			c.fail(f+".do", "do: %s acts on the embedded cluster; this scenario's cluster is %s", s.Do, k.Cluster.Kind)
		}
	}
	switch s.Do {
	case DoKafkaFailProduce, DoKafkaFailFetch:
		embeddedOnly()
		if s.Error == "" {
			s.Error = "NOT_LEADER_FOR_PARTITION"
		}
		if _, err := kafka.ErrorCode(s.Error); err != nil {
			c.fail(f+".error", "%v", err)
		}
		if s.For < 0 {
			c.fail(f+".for", "must not be negative")
		}
		if s.Topic != "" && !kafkaTopic(k, s.Topic) {
			c.fail(f+".topic", "no topic %q under kafka.topics", s.Topic)
		}
	case DoKafkaMoveLeader:
		embeddedOnly()
		if s.Topic == "" || !kafkaTopic(k, s.Topic) {
			c.fail(f+".topic", "do: %s needs a topic listed under kafka.topics", s.Do)
		}
		if s.Partition != nil && *s.Partition < 0 {
			c.fail(f+".partition", "must not be negative")
		}
	case DoKafkaRestore:
		embeddedOnly()
	case DoKafkaStopBridge, DoKafkaStartBridge:
		found := false
		var bs []string
		for _, b := range k.Bridges {
			found = found || b.Name == s.Bridge
			bs = append(bs, b.Name)
		}
		if !found {
			c.fail(f+".bridge", "no kafka bridge named %q (bridges: %s)", s.Bridge, strings.Join(bs, ", "))
		}
	case DoKafkaCrashWatcher, DoKafkaStartWatcher:
		found := false
		for _, w := range k.Watchers {
			found = found || w.Name == s.Watcher
		}
		if !found {
			var ws []string
			for _, w := range k.Watchers {
				ws = append(ws, w.Name)
			}
			c.fail(f+".watcher", "no kafka watcher named %q (watchers: %s)", s.Watcher, strings.Join(ws, ", "))
		}
	}
}

func kafkaTopic(k *Kafka, name string) bool {
	for _, t := range k.Topics {
		if t.Name == name {
			return true
		}
	}
	return false
}

// kafkaRun is the Kafka leg of one run.
type kafkaRun struct {
	cfg       *Kafka
	cluster   *kafka.Cluster // nil for an external cluster
	bootstrap []string

	mu       sync.Mutex
	bridges  []*kafka.Bridge
	watchers map[string]*kafka.Watcher // running watchers by name
	faults   []*kafka.RequestFault
}

// startKafkaBridge starts a bridge of the scenario and adds it to the run.
func (r *runner) startKafkaBridge(ctx context.Context, bc *KafkaBridge) (*kafka.Bridge, error) {
	kr := r.kafka
	level := -1
	if bc.KeyLevel != nil {
		level = *bc.KeyLevel
	}
	b, err := kafka.StartBridge(ctx, kafka.BridgeConfig{Name: bc.Name, MQTT: r.brokerURL, Filters: bc.Filters,
		QoS: byte(bc.QoS), Brokers: kr.bootstrap, Topic: bc.Topic, Mode: bc.Mode, Acks: bc.Acks, Idempotent: bc.Idempotent,
		Partitioner: bc.Partitioner, Key: bc.Key, KeyLevel: level, Linger: bc.Linger.D(), BatchMessages: bc.BatchMessages,
		Retries: bc.Retries, Backoff: bc.Backoff.D(), Undrained: bc.Undrained, Events: events.SinkFunc(func(e events.Event) { r.sink.Emit(e) }),
		Logger: r.log, Persistent: bc.CleanSession != nil && !*bc.CleanSession, Reconnect: bc.Reconnect.D(), Auth: kr.cfg.Cluster.auth()})
	if err != nil {
		return nil, err
	}
	kr.mu.Lock()
	kr.bridges = append(kr.bridges, b)
	kr.mu.Unlock()
	return b, nil
}

// startKafka starts the cluster (embedded), the bridges and the watchers
// that join at setup, and emits for each watcher the subscriptions it is
// owed messages by: the filters of the bridges producing to its topic, from
// when the bridge's SUBACK arrived.
func (r *runner) startKafka(ctx context.Context) error {
	k := r.sc.Kafka
	if k == nil {
		return nil
	}
	kr := &kafkaRun{cfg: k, watchers: map[string]*kafka.Watcher{}}
	r.kafka = kr
	sink := events.SinkFunc(func(e events.Event) { r.sink.Emit(e) })
	if k.Cluster.Kind == "external" {
		kr.bootstrap = strings.Split(k.Cluster.Bootstrap, ",")
	} else {
		topics := make([]kafka.Topic, len(k.Topics))
		for i, t := range k.Topics {
			topics[i] = kafka.Topic{Name: t.Name, Partitions: t.Partitions}
		}
		cl, err := kafka.StartCluster(kafka.ClusterConfig{Brokers: k.Cluster.Brokers, Topics: topics, Events: sink})
		if err != nil {
			return err
		}
		kr.cluster, kr.bootstrap = cl, cl.Addrs()
		r.sink.Emit(events.Event{Time: time.Now(), Kind: events.Log, Source: events.SourceKafka,
			Detail: "embedded Kafka cluster at " + cl.Bootstrap()})
	}
	for i := range k.Bridges {
		if _, err := r.startKafkaBridge(ctx, &k.Bridges[i]); err != nil {
			return err
		}
	}
	for i := range k.Watchers {
		wc := &k.Watchers[i]
		var ready time.Time
		if wc.Start == "setup" {
			if _, err := r.startWatcher(ctx, wc); err != nil {
				return err
			}
			ready = time.Now()
		}
		if len(wc.Partitions) > 0 {
			// Which messages land on its partitions is the partitioner's
			// choice: a partition consumer is owed none in particular, so it
			// is no receiver of the delivery accounting (count its records).
			continue
		}
		for _, b := range kr.bridges {
			if b.Config().Topic != wc.Topic {
				continue
			}
			at := b.Subscribed()
			if wc.Offsets == kafka.OffsetsNewest && ready.After(at) {
				at = ready // a group starting at the end is owed what comes after it joined
			}
			for _, f := range b.Config().Filters {
				r.sink.Emit(events.Event{Time: at, Kind: events.Subscribed, Source: events.SourceKafka, ClientID: wc.Name,
					Topic: f, QoS: b.Config().QoS, Detail: "through bridge " + b.Config().Name + " and Kafka topic " + wc.Topic})
			}
		}
	}
	return nil
}

// startWatcher joins a watcher to its group and waits for its partitions.
func (r *runner) startWatcher(ctx context.Context, wc *KafkaWatcher) (*kafka.Watcher, error) {
	kr := r.kafka
	kr.mu.Lock()
	if _, running := kr.watchers[wc.Name]; running {
		kr.mu.Unlock()
		return nil, fmt.Errorf("kafka watcher %s is already running", wc.Name)
	}
	kr.mu.Unlock()
	w, err := kafka.StartWatcher(kafka.WatcherConfig{Name: wc.Name, Brokers: kr.bootstrap, Topic: wc.Topic, Group: wc.Group, Partitions: wc.Partitions, Auth: kr.cfg.Cluster.auth(),
		Offsets: wc.Offsets, Commit: wc.Commit, CommitInterval: wc.CommitInterval.D(),
		// Records go to the recorder (assertions, totals), the events file
		// and the Collector, which keeps them apart from the MQTT leg
		// (reports: kafka_consumed, kafka_lag, kafka_latency).
		Sink:   kafka.EventSink(r.sink, r.runID),
		Events: events.SinkFunc(func(e events.Event) { r.sink.Emit(e) }), Logger: r.log})
	if err != nil {
		return nil, err
	}
	kr.mu.Lock()
	kr.watchers[wc.Name] = w
	kr.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case <-w.Ready():
		return w, nil
	case <-wctx.Done():
		return nil, fmt.Errorf("kafka watcher %s: no partitions of %s assigned within a minute", wc.Name, wc.Topic)
	}
}

// kafkaStep runs one Kafka step.
func (r *runner) kafkaStep(ctx context.Context, s *Step) error {
	kr := r.kafka
	switch s.Do {
	case DoKafkaFailProduce, DoKafkaFailFetch:
		code, err := kafka.ErrorCode(s.Error)
		if err != nil {
			return err
		}
		fail := kr.cluster.FailProduce
		if s.Do == DoKafkaFailFetch {
			fail = kr.cluster.FailFetch
		}
		f, err := fail(s.Topic, code, s.For.D())
		if err != nil {
			return err
		}
		kr.mu.Lock()
		kr.faults = append(kr.faults, f)
		kr.mu.Unlock()
		return nil
	case DoKafkaMoveLeader:
		if s.Partition != nil {
			return kr.cluster.MoveLeader(s.Topic, int32(*s.Partition), -1)
		}
		return kr.cluster.MoveLeaders(s.Topic)
	case DoKafkaRestore:
		kr.mu.Lock()
		fs := kr.faults
		kr.faults = nil
		kr.mu.Unlock()
		for _, f := range fs {
			f.End()
		}
		return nil
	case DoKafkaStopBridge:
		kr.mu.Lock()
		var b *kafka.Bridge
		for i, x := range kr.bridges {
			if x.Config().Name == s.Bridge {
				b = x
				kr.bridges = append(kr.bridges[:i:i], kr.bridges[i+1:]...)
				break
			}
		}
		kr.mu.Unlock()
		if b == nil {
			return fmt.Errorf("kafka bridge %s is not running", s.Bridge)
		}
		st := b.Stats()
		b.Close() // the producer flushes what it holds; the MQTT link ends
		r.sink.Emit(events.Event{Time: time.Now(), Kind: events.FaultInjected, Source: events.SourceKafka, ClientID: s.Bridge,
			Fault: "kafka_bridge_stopped", Detail: fmt.Sprintf("bridge %s stopped: %d received, %d produced, %d failed", s.Bridge, st.Received, st.Produced, st.Failed)})
		return nil
	case DoKafkaStartBridge:
		for i := range kr.cfg.Bridges {
			if bc := &kr.cfg.Bridges[i]; bc.Name == s.Bridge {
				kr.mu.Lock()
				for _, x := range kr.bridges {
					if x.Config().Name == s.Bridge {
						kr.mu.Unlock()
						return fmt.Errorf("kafka bridge %s is already running", s.Bridge)
					}
				}
				kr.mu.Unlock()
				if _, err := r.startKafkaBridge(ctx, bc); err != nil {
					return err
				}
				r.sink.Emit(events.Event{Time: time.Now(), Kind: events.FaultRemoved, Source: events.SourceKafka, ClientID: s.Bridge,
					Fault: "kafka_bridge_stopped", Detail: "bridge " + s.Bridge + " started again"})
				return nil
			}
		}
	case DoKafkaCrashWatcher:
		kr.mu.Lock()
		w := kr.watchers[s.Watcher]
		delete(kr.watchers, s.Watcher)
		kr.mu.Unlock()
		if w == nil {
			return fmt.Errorf("kafka watcher %s is not running", s.Watcher)
		}
		w.Crash()
		return nil
	case DoKafkaStartWatcher:
		for i := range kr.cfg.Watchers {
			if kr.cfg.Watchers[i].Name == s.Watcher {
				_, err := r.startWatcher(ctx, &kr.cfg.Watchers[i])
				return err
			}
		}
	}
	return fmt.Errorf("unknown kafka action %q", s.Do)
}

// settleKafka waits, up to kafka.settle, for every bridge to have nothing
// in flight and every running watcher to have read its topic to the end,
// so what is still on its way is not counted lost. A bridge that never
// empties (undrained channels) is what the run then reports.
func (r *runner) settleKafka(ctx context.Context) {
	kr := r.kafka
	if kr == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, kr.cfg.Settle.D())
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	stable := 0
	var last int64 = -1
	for {
		// Settled when nothing is in flight and no new MQTT message reached
		// a bridge for a few polls (the broker may still hold some for it).
		if kr.settled(ctx) {
			if n := kr.received(); n == last {
				stable++
			} else {
				stable, last = 0, n
			}
			if stable >= 4 {
				return
			}
		} else {
			stable, last = 0, -1
		}
		select {
		case <-ctx.Done():
			r.sink.Emit(events.Event{Time: time.Now(), Kind: events.Log, Source: events.SourceKafka,
				Detail: "kafka leg not settled within " + kr.cfg.Settle.String() + ": " + kr.describe()})
			return
		case <-tick.C:
		}
	}
}

func (kr *kafkaRun) settled(ctx context.Context) bool {
	kr.mu.Lock()
	bridges := append([]*kafka.Bridge(nil), kr.bridges...)
	byGroup := map[string][]*kafka.Watcher{}
	for _, w := range kr.watchers {
		byGroup[w.Config().Group] = append(byGroup[w.Config().Group], w)
	}
	kr.mu.Unlock()
	for _, b := range bridges {
		if st := b.Stats(); st.InFlight > 0 || st.Backlog > 0 {
			return false
		}
	}
	for _, ws := range byGroup {
		if ok, err := kafka.CaughtUp(ctx, ws...); err != nil || !ok {
			return false
		}
	}
	return true
}

// received is how many MQTT messages the bridges took in.
func (kr *kafkaRun) received() int64 {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	var n int64
	for _, b := range kr.bridges {
		n += b.Stats().Received
	}
	return n
}

func (kr *kafkaRun) describe() string {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	var parts []string
	for _, b := range kr.bridges {
		st := b.Stats()
		parts = append(parts, fmt.Sprintf("bridge %s received %d produced %d failed %d in flight %d",
			b.Config().Name, st.Received, st.Produced, st.Failed, st.InFlight))
	}
	for name, w := range kr.watchers {
		parts = append(parts, fmt.Sprintf("watcher %s read %d", name, w.Delivered()))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// stopKafka closes the watchers, the bridges and the cluster.
func (r *runner) stopKafka() {
	kr := r.kafka
	if kr == nil {
		return
	}
	kr.mu.Lock()
	bridges, watchers := kr.bridges, kr.watchers
	kr.bridges, kr.watchers = nil, map[string]*kafka.Watcher{}
	kr.mu.Unlock()
	// Watchers first: settle already let them read what the bridges had
	// produced, and a record a stalled bridge only flushes at its close
	// must not land in the accounting by the chance of the teardown order.
	for _, w := range watchers {
		w.Close()
	}
	for _, b := range bridges {
		st := b.Stats()
		if err := b.Close(); err != nil {
			r.log.Warn("close kafka bridge", "bridge", b.Config().Name, "err", err)
		}
		r.sink.Emit(events.Event{Time: time.Now(), Kind: events.Log, Source: events.SourceKafka, ClientID: b.Config().Name,
			Detail: fmt.Sprintf("bridge %s: received %d, produced %d, failed %d, retried %d, in flight %d at close",
				b.Config().Name, st.Received, st.Produced, st.Failed, st.Retried, st.InFlight)})
	}
	if kr.cluster != nil {
		kr.cluster.Close()
	}
}

// describeKafka is a one-line description of a Kafka step.
func describeKafka(s *Step) string {
	switch s.Do {
	case DoKafkaFailProduce, DoKafkaFailFetch:
		what := "produce"
		if s.Do == DoKafkaFailFetch {
			what = "fetch"
		}
		d := "kafka: " + what + " requests fail with " + s.Error
		if s.Topic != "" {
			d += " on " + s.Topic
		}
		if s.For > 0 {
			d += " for " + s.For.String()
		}
		return d
	case DoKafkaMoveLeader:
		if s.Partition != nil {
			return fmt.Sprintf("kafka: move the leader of %s/%d", s.Topic, *s.Partition)
		}
		return "kafka: move the leader of every partition of " + s.Topic
	case DoKafkaStopBridge:
		return "kafka: stop bridge " + s.Bridge
	case DoKafkaStartBridge:
		return "kafka: start bridge " + s.Bridge + " again"
	case DoKafkaRestore:
		return "kafka: end produce and fetch failures"
	case DoKafkaCrashWatcher:
		return "kafka: crash watcher " + s.Watcher + " (no commit)"
	case DoKafkaStartWatcher:
		return "kafka: start watcher " + s.Watcher
	}
	return s.Do
}
