package client

import (
	"context"
	"testing"

	"github.com/mqttfleet/mqttfleet/packet"
)

// ackingServer connects a client to a fake broker that answers every QoS 1
// PUBLISH with PUBACK, so the client's read path is busy. onMessage, when
// set, is the client's OnMessage.
func ackingServer(b *testing.B, onMessage func(*packet.Publish)) (*Client, *Raw) {
	return connectToFake(b, Options{ClientID: "busy", OnMessage: onMessage})
}

// BenchmarkBusy measures a busy client's read path, which the idle-parking
// machinery must not slow: QoS 1 round trips (PUBLISH out, PUBACK in) and a
// stream of incoming QoS 0 PUBLISHes.
//
//	go test -run '^$' -bench Busy -benchmem ./client/
func BenchmarkBusy(b *testing.B) {
	b.Run("publish-qos1-roundtrip", func(b *testing.B) {
		c, r := ackingServer(b, nil)
		served := make(chan struct{})
		go func() {
			defer close(served)
			for {
				p, err := r.ReadPacket(0)
				if err != nil {
					return
				}
				if pub, ok := p.(*packet.Publish); ok {
					if r.WritePacket(&packet.Puback{PacketID: pub.PacketID}) != nil {
						return
					}
				}
			}
		}()
		b.Cleanup(func() { _ = c.Close(); _ = r.Close(); <-served })
		payload := make([]byte, 64)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Publish(ctx, "fleet/dev/1/temp", 1, false, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("receive-qos0", func(b *testing.B) {
		got := make(chan struct{}, 1024)
		c, r := ackingServer(b, func(*packet.Publish) { got <- struct{}{} })
		b.Cleanup(func() { _ = c.Close(); _ = r.Close() })
		buf, err := packet.Append(nil, &packet.Publish{Topic: "fleet/dev/1/temp", Payload: make([]byte, 64)}, packet.V311)
		if err != nil {
			b.Fatal(err)
		}
		const batch = 64
		burst := make([]byte, 0, len(buf)*batch)
		for range batch {
			burst = append(burst, buf...)
		}
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		sent := 0
		for b.Loop() {
			if sent%batch == 0 {
				if _, err := r.Conn().Write(burst); err != nil {
					b.Fatal(err)
				}
			}
			sent++
			<-got
		}
		for sent%batch != 0 { // take the rest of the last burst
			sent++
			<-got
		}
	})
}
