package conformance

import (
	"context"
	"errors"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
)

// wsDial opens a WebSocket to the target offering the "mqtt" subprotocol.
func (e *env) wsDial() *websocket.Conn {
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, e.addr("ws"), &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	Expect(err).NotTo(HaveOccurred(), "WebSocket handshake")
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	DeferCleanup(func() { c.CloseNow() })
	return c
}

func (e *env) wsRead(c *websocket.Conn) ([]byte, error) {
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	_, b, err := c.Read(ctx)
	return b, err
}

var _ = register(specDef{
	Area: "websocket", Text: "selects the mqtt WebSocket subprotocol",
	Statements: []string{"MQTT-6.0.0-4"}, Needs: []string{"ws"},
	Body: func(e *env) {
		Expect(e.wsDial().Subprotocol()).To(Equal("mqtt"))
	},
})

var _ = register(specDef{
	Area: "websocket", Text: "reassembles packets split across WebSocket frames and splits none it needs whole",
	Statements: []string{"MQTT-6.0.0-2"}, Needs: []string{"ws"},
	Body: func(e *env) {
		c := e.wsDial()
		b := append(rawConnect(0x02, 60, e.id("ws")), 0xC0, 0x00) // CONNECT + PINGREQ
		for _, chunk := range [][]byte{b[:3], b[3:9], b[9:]} {
			ctx, cancel := context.WithTimeout(e.ctx, wait)
			err := c.Write(ctx, websocket.MessageBinary, chunk)
			cancel()
			Expect(err).NotTo(HaveOccurred())
		}
		var got []byte
		for len(got) < 6 {
			m, err := e.wsRead(c)
			Expect(err).NotTo(HaveOccurred(), "reading CONNACK and PINGRESP")
			got = append(got, m...)
		}
		Expect(got).To(Equal([]byte{0x20, 0x02, 0x00, 0x00, 0xD0, 0x00}), "CONNACK then PINGRESP")
	},
})

var _ = register(specDef{
	Area: "websocket", Text: "closes the connection on a text WebSocket frame",
	Statements: []string{"MQTT-6.0.0-1"}, Needs: []string{"ws"},
	Body: func(e *env) {
		c := e.wsDial()
		ctx, cancel := context.WithTimeout(e.ctx, wait)
		defer cancel()
		Expect(c.Write(ctx, websocket.MessageText, rawConnect(0x02, 60, e.id("txt")))).To(Succeed())
		start := time.Now()
		for time.Since(start) < wait {
			_, err := e.wsRead(c)
			if err == nil {
				continue // a CONNACK: the broker read the text frame; it must still close
			}
			Expect(errors.Is(err, context.DeadlineExceeded)).To(BeFalse(), "the connection stayed open after a text frame")
			return
		}
		Expect(false).To(BeTrue(), "the connection stayed open after a text frame")
	},
})
