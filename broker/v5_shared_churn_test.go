package broker

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/client"
	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// TestV5SharedChurn publishes QoS 1 messages to a share group while a
// member that never acknowledges (hung: Session Expiry 0, Receive Maximum
// 3) joins and is killed again and again: the messages it held go to the
// other members, so every message reaches the group at least once.
func TestV5SharedChurn(t *testing.T) {
	tb := startBroker(t, nil)
	var (
		mu   sync.Mutex
		got  = map[uint16]int{}
		news = make(chan struct{}, 1)
		wg   sync.WaitGroup
	)
	// join connects a member; a reading one records and acknowledges its
	// messages until its connection ends.
	join := func(id string, reads bool) *client.Raw {
		r, _ := tb.member5(t, id, true, 0, 3)
		subscribe(t, r, sub("$share/g/churn", 1))
		if !reads {
			return r
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, err := r.ReadPacket(time.Minute)
				if err != nil {
					return
				}
				m, ok := p.(*packet.Publish)
				if !ok {
					continue
				}
				mu.Lock()
				got[binary.BigEndian.Uint16(m.Payload)]++
				mu.Unlock()
				select {
				case news <- struct{}{}:
				default:
				}
				if r.WritePacket(&packet.Puback{PacketID: m.PacketID}) != nil {
					return
				}
			}
		}()
		return r
	}
	var members []*client.Raw
	defer func() {
		for _, r := range members {
			_ = r.Close()
		}
		wg.Wait()
	}()
	for i := range 2 {
		members = append(members, join(fmt.Sprintf("churn-%d", i), true))
	}
	p := tb.connect5(t, "churn-pub")
	const rounds, perRound = 6, 40
	n := uint16(0)
	redelivered := func() int {
		return tb.rec.Count(func(e events.Event) bool { return e.Kind == events.Log && strings.HasSuffix(e.Detail, "redelivered") })
	}
	for range rounds {
		before := redelivered()
		c := join("churn-x", false)
		members = append(members, c)
		for range perRound {
			n++
			publish(t, p, &packet.Publish{Topic: "churn", QoS: 1, PacketID: n, Payload: binary.BigEndian.AppendUint16(nil, n)})
		}
		tb.kill(t, c, "churn-x")
		// Its window filled within 40 messages and was never acknowledged;
		// more queued behind it when the others were full too.
		if got := redelivered() - before; got < 3 {
			t.Fatalf("%d messages of the killed member redelivered, want at least its Receive Maximum 3", got)
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for i := uint16(1); i <= n; i++ {
			if got[i] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-news:
		case <-deadline:
			t.Fatalf("%d of %d messages never reached a member of the group", missing, n)
		}
	}
}
