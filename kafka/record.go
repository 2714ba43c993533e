package kafka

import (
	"strconv"
	"strings"

	"github.com/IBM/sarama"

	"github.com/mqttfleet/mqttfleet/simulator/payload"
)

// Record header names the bridge writes. A consumer downstream (and our
// watchers) can tell where a record came from without parsing its value.
const (
	HeaderTopic  = "mqtt_topic"
	HeaderQoS    = "mqtt_qos"
	HeaderRetain = "mqtt_retain"
	HeaderDevice = "device_id"
)

// Key sources of the hash partitioner.
const (
	KeyDevice     = "device"      // the publishing device (client ID level, or the sequence header's device)
	KeyTopic      = "topic"       // the whole MQTT topic
	KeyTopicLevel = "topic_level" // one level of the MQTT topic (KeyLevel)
)

// keyOf is the record key of an MQTT message, and the device ID for the
// device_id header. The device is the topic level KeyLevel when the bridge
// has one (fleets name topics after client IDs: fleet/{client_id}/temp),
// else the device index of the simulator's sequence header.
func (cfg *BridgeConfig) keyOf(topic string, h payload.Header, hasHeader bool) (key, device string) {
	if cfg.KeyLevel >= 0 {
		if lv := strings.Split(topic, "/"); cfg.KeyLevel < len(lv) {
			device = lv[cfg.KeyLevel]
		}
	}
	if device == "" && hasHeader {
		device = strconv.FormatUint(uint64(h.Device), 10)
	}
	switch cfg.Key {
	case KeyTopic:
		return topic, device
	case KeyTopicLevel:
		if lv := strings.Split(topic, "/"); cfg.KeyLevel >= 0 && cfg.KeyLevel < len(lv) {
			return lv[cfg.KeyLevel], device
		}
		return topic, device
	}
	return device, device
}

func headers(topic string, qos byte, retain bool, device string) []sarama.RecordHeader {
	hs := []sarama.RecordHeader{
		{Key: []byte(HeaderTopic), Value: []byte(topic)},
		{Key: []byte(HeaderQoS), Value: []byte{'0' + qos}},
		{Key: []byte(HeaderRetain), Value: []byte(strconv.FormatBool(retain))},
	}
	if device != "" {
		hs = append(hs, sarama.RecordHeader{Key: []byte(HeaderDevice), Value: []byte(device)})
	}
	return hs
}
