package broker

import (
	"strconv"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
)

// sysLoop publishes the $SYS/ topics every SysInterval as retained QoS 0
// messages, the way Mosquitto names them, until the broker closes.
func (b *Broker) sysLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.SysInterval)
	defer t.Stop()
	b.publishSys()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.publishSys()
		}
	}
}

// publishSys publishes one snapshot of Stats under $SYS/broker/.
func (b *Broker) publishSys() {
	st := b.Stats()
	for _, kv := range []struct {
		topic string
		value string
	}{
		{"$SYS/broker/version", "mqttfleet"},
		{"$SYS/broker/uptime", strconv.FormatInt(int64(st.Uptime/time.Second), 10) + " seconds"},
		{"$SYS/broker/clients/connected", strconv.Itoa(st.ClientsConnected)},
		{"$SYS/broker/clients/total", strconv.Itoa(st.Sessions)},
		{"$SYS/broker/messages/received", strconv.FormatUint(st.MessagesReceived, 10)},
		{"$SYS/broker/messages/sent", strconv.FormatUint(st.MessagesSent, 10)},
		{"$SYS/broker/messages/dropped", strconv.FormatUint(st.MessagesDropped, 10)},
		{"$SYS/broker/retained messages/count", strconv.Itoa(st.Retained)},
		{"$SYS/broker/subscriptions/count", strconv.Itoa(st.Subscriptions)},
	} {
		b.publish(&packet.Publish{Topic: kv.topic, Retain: true, Payload: []byte(kv.value)}, "")
	}
}
