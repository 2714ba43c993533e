package client

import (
	"context"
	"io"
	"testing"

	"github.com/mqttfleet/mqttfleet/events"
	"github.com/mqttfleet/mqttfleet/packet"
)

// connectToFake dials a fake broker with opts, answers its CONNECT with
// CONNACK and returns the client and the broker's side of the link.
func connectToFake(b *testing.B, opts Options) (*Client, *Raw) {
	s := newFakeServerB(b)
	done := make(chan *Client, 1)
	go func() {
		c, _, err := Dial(context.Background(), s.Addr().String(), opts)
		if err != nil {
			b.Error(err)
		}
		done <- c
	}()
	conn, err := s.Accept()
	if err != nil {
		b.Fatal(err)
	}
	r := NewRaw(conn, packet.V311)
	if _, err := r.ReadPacket(0); err != nil {
		b.Fatal(err)
	}
	if err := r.WritePacket(&packet.Connack{}); err != nil {
		b.Fatal(err)
	}
	c := <-done
	if c == nil {
		b.FailNow()
	}
	return c, r
}

// benchClient connects to a fake server that acks nothing and drains the rest.
func benchClient(b *testing.B, sink events.Sink) *Client {
	c, r := connectToFake(b, Options{ClientID: "bench", Events: sink})
	conn := r.Conn()
	drained := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, conn); close(drained) }()
	b.Cleanup(func() { _ = c.Close(); _ = conn.Close(); <-drained })
	return c
}

// BenchmarkPublishQoS0 measures the QoS 0 path without and with an event
// sink: go test -run '^$' -bench PublishQoS0 -benchmem ./client/
func BenchmarkPublishQoS0(b *testing.B) {
	for _, bc := range []struct {
		name string
		sink events.Sink
	}{{"no-events", nil}, {"discard-events", events.Discard}} {
		b.Run(bc.name, func(b *testing.B) {
			c := benchClient(b, bc.sink)
			payload := make([]byte, 64)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Publish(ctx, "fleet/dev/1/temp", 0, false, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublishQoS0Alias is the QoS 0 path of MQTT 5 with and without
// outgoing Topic Aliases (the server allows 10), so the alias's cost per
// publish shows: go test -run '^$' -bench PublishQoS0Alias -benchmem ./client/
func BenchmarkPublishQoS0Alias(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "no-alias", true: "alias"}[on], func(b *testing.B) {
			s := newFakeServerB(b)
			done := make(chan *Client, 1)
			go func() {
				c, _, err := Dial(context.Background(), s.Addr().String(), Options{ClientID: "bench", ProtocolLevel: packet.V5, TopicAliases: on})
				if err != nil {
					b.Error(err)
				}
				done <- c
			}()
			conn, err := s.Accept()
			if err != nil {
				b.Fatal(err)
			}
			r := NewRaw(conn, packet.V5)
			if _, err := r.ReadPacket(0); err != nil {
				b.Fatal(err)
			}
			most := uint16(10)
			if err := r.WritePacket(&packet.Connack{Props: &packet.Properties{TopicAliasMaximum: &most}}); err != nil {
				b.Fatal(err)
			}
			c := <-done
			if c == nil {
				b.FailNow()
			}
			drained := make(chan struct{})
			go func() { _, _ = io.Copy(io.Discard, conn); close(drained) }()
			b.Cleanup(func() { _ = c.Close(); _ = conn.Close(); <-drained })
			payload := make([]byte, 64)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Publish(ctx, "fleet/dev/1/temp", 0, false, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
