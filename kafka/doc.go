// Package kafka is the Kafka leg of a run: devices -> MQTT broker -> Bridge ->
// Kafka -> Watcher. The bridge subscribes to MQTT filters and produces every
// message with IBM/sarama, the producer library bridges in the field use; a
// watcher reads the records back with a franz-go consumer group and hands each
// one, with the sequence header the device wrote, to a Sink, so the run's
// accounting counts it like an MQTT delivery (lost, duplicated, out of order
// per key, device -> Kafka latency).
//
//	devices ─MQTT─► broker ─MQTT─► Bridge ──sarama──► Cluster (kfake or external)
//	                                  │ events: kafka_produced,    │
//	                                  │ kafka_failed, kafka_retry  ▼
//	                                  │                 Watcher (kgo group member)
//	                                  ▼                           │ Delivery
//	                               events.Sink ◄──────── Sink ◄───┘
//
// Cluster is an embedded cluster (franz-go's kfake: the real wire protocol,
// in-process, several brokers, partitions per topic) with fault hooks: produce
// requests failing with a chosen error code for a window, and partition
// leaders moved. Everything here also runs against an external cluster by its
// bootstrap addresses.
package kafka
