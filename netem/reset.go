package netem

import "github.com/mqttfleet/mqttfleet/events"

// resetLink aborts both sockets with SO_LINGER 0, so each peer's next read or
// write fails with "connection reset by peer".
func resetLink(l *link, faultID string) {
	l.abort(true, events.CauseFault, "reset "+faultID)
}

// closeLink closes both sockets: each peer reads EOF after the bytes already
// delivered. Bytes the proxy had read but not forwarded are lost, and where the
// kernel still holds unread bytes from a peer it answers with an RST (RFC 1122
// 4.2.2.13) — as any endpoint that closes with unread input.
func closeLink(l *link, faultID string) {
	l.abort(false, events.CauseFault, "close "+faultID)
}
