package conformance

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/mqttfleet/mqttfleet/packet"
)

// MQTT over WebSocket (section 6 of both standards). The helpers take the
// CONNECT bytes, so the 3.1.1 specs here and the 5.0 ones
// (specs_v5_ws.go) run the same exchanges.

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

// wsSplitExchange sends connect and a PINGREQ in three binary frames cut
// inside the packets, and reads until two packets (the CONNACK and the
// PINGRESP) have come, however the broker framed them. It returns the bytes
// read and the packets decoded at version.
func (e *env) wsSplitExchange(connect []byte, version byte) ([]byte, []packet.Packet) {
	c := e.wsDial()
	b := append(append([]byte(nil), connect...), 0xC0, 0x00)
	for _, chunk := range [][]byte{b[:3], b[3:9], b[9:]} {
		ctx, cancel := context.WithTimeout(e.ctx, wait)
		err := c.Write(ctx, websocket.MessageBinary, chunk)
		cancel()
		Expect(err).NotTo(HaveOccurred())
	}
	var got []byte
	var pkts []packet.Packet
	for len(pkts) < 2 {
		m, err := e.wsRead(c)
		Expect(err).NotTo(HaveOccurred(), "reading CONNACK and PINGRESP")
		got = append(got, m...)
		pkts, err = decodeAll(got, version)
		Expect(err).NotTo(HaveOccurred(), "what the broker sent: % x", got)
	}
	return got, pkts
}

// decodeAll decodes the whole packets at the start of b; a packet cut short
// at the end is left for more bytes.
func decodeAll(b []byte, version byte) ([]packet.Packet, error) {
	var out []packet.Packet
	for len(b) > 0 {
		p, n, err := packet.Decode(b, packet.Options{Version: version})
		if errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return out, err
		}
		out = append(out, p)
		b = b[n:]
	}
	return out, nil
}

// wsTextFrameCloses sends connect in a text frame and requires the broker
// to close the connection.
func (e *env) wsTextFrameCloses(connect []byte) {
	c := e.wsDial()
	ctx, cancel := context.WithTimeout(e.ctx, wait)
	defer cancel()
	Expect(c.Write(ctx, websocket.MessageText, connect)).To(Succeed())
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
		got, _ := e.wsSplitExchange(rawConnect(0x02, 60, e.id("ws")), packet.V311)
		Expect(got).To(Equal([]byte{0x20, 0x02, 0x00, 0x00, 0xD0, 0x00}), "CONNACK then PINGRESP")
	},
})

var _ = register(specDef{
	Area: "websocket", Text: "closes the connection on a text WebSocket frame",
	Statements: []string{"MQTT-6.0.0-1"}, Needs: []string{"ws"},
	Body: func(e *env) {
		e.wsTextFrameCloses(rawConnect(0x02, 60, e.id("txt")))
	},
})
