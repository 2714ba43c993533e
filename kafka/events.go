package kafka

import (
	"fmt"

	"github.com/mqttfleet/mqttfleet/events"
)

// EventSink turns every record a watcher reads into a publish_received event
// (source kafka, the watcher's name as client ID, the MQTT topic, the
// sequence number and device -> Kafka latency when the record's value
// carries a sequence header of run), so the delivery accounting that counts
// MQTT receipts counts Kafka ones the same way. Records of another run keep
// Seq 0: they are listed, never accounted.
func EventSink(sink events.Sink, run uint32) Sink {
	return SinkFunc(func(d Delivery) {
		e := events.Event{Time: d.At, Kind: events.PublishReceived, Source: events.SourceKafka, ClientID: d.Watcher,
			Topic: d.MQTTTopic, QoS: d.QoS, Retain: d.Retain, Size: d.Size,
			Detail: fmt.Sprintf("%s/%d@%d key %s", d.Topic, d.Partition, d.Offset, d.Key)}
		if d.HasHeader && d.Header.Run == run {
			e.Seq = d.Header.Seq
			e.Device = int(d.Header.Device) + 1
			e.Latency = d.At.Sub(d.Header.Sent)
		}
		sink.Emit(e)
	})
}
