package conformance

import (
	"context"

	"github.com/coder/websocket"
	. "github.com/onsi/gomega" //nolint:revive

	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT 5.0 specs: MQTT over WebSocket, with the exchanges of specs_ws.go
// at protocol level 5.

var _ = register(specDef{
	V5: true, Area: "websocket", Text: "selects the mqtt WebSocket subprotocol and serves a 5.0 CONNECT on it",
	Statements: []string{"MQTT-6.0.0-4"}, Needs: []string{"ws"},
	Body: func(e *env) {
		c := e.wsDial()
		Expect(c.Subprotocol()).To(Equal("mqtt"))
		ctx, cancel := context.WithTimeout(e.ctx, wait)
		defer cancel()
		Expect(c.Write(ctx, websocket.MessageBinary, rawConnect5(0x02, e.id("ws")))).To(Succeed())
		var got []byte
		for {
			m, err := e.wsRead(c)
			Expect(err).NotTo(HaveOccurred(), "reading the CONNACK")
			got = append(got, m...)
			pkts, err := decodeAll(got, packet.V5)
			Expect(err).NotTo(HaveOccurred(), "what the broker sent: % x", got)
			if len(pkts) > 0 {
				ack, ok := pkts[0].(*packet.Connack)
				Expect(ok).To(BeTrue(), "expected CONNACK, got %s", pkts[0].Type())
				Expect(ack.ReturnCode).To(Equal(byte(0)), "CONNACK reason code")
				return
			}
		}
	},
})

var _ = register(specDef{
	V5: true, Area: "websocket", Text: "reassembles packets split across WebSocket frames",
	Statements: []string{"MQTT-6.0.0-2"}, Needs: []string{"ws"},
	Body: func(e *env) {
		_, pkts := e.wsSplitExchange(rawConnect5(0x02, e.id("ws")), packet.V5)
		Expect(pkts).To(HaveLen(2), "CONNACK and PINGRESP, nothing else")
		ack, ok := pkts[0].(*packet.Connack)
		Expect(ok).To(BeTrue(), "expected CONNACK, got %s", pkts[0].Type())
		Expect(ack.ReturnCode).To(Equal(byte(0)), "CONNACK reason code")
		Expect(pkts[1].Type()).To(Equal(packet.PINGRESP))
	},
})

var _ = register(specDef{
	V5: true, Area: "websocket", Text: "closes the connection on a text WebSocket frame",
	Statements: []string{"MQTT-6.0.0-1"}, Needs: []string{"ws"},
	Body: func(e *env) {
		e.wsTextFrameCloses(rawConnect5(0x02, e.id("txt")))
	},
})
