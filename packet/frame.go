package packet

// Frame assembles a raw control packet: the first byte, a remaining length
// that matches the body, then the body. Probes and tests use it to send
// what Encode refuses to build (reserved flags, forbidden field values,
// server-only packets from a client).
func Frame(first byte, body ...[]byte) []byte {
	n := 0
	for _, b := range body {
		n += len(b)
	}
	out := AppendRemainingLength(make([]byte, 1, 5+n), n)
	out[0] = first
	for _, b := range body {
		out = append(out, b...)
	}
	return out
}

// AppendRemainingLength appends n as a variable byte integer [MQTT-2.2.3].
// n is not checked against MaxRemainingLength, so a probe can announce a
// length it then does not send.
func AppendRemainingLength(dst []byte, n int) []byte { return appendVarint(dst, n) }
