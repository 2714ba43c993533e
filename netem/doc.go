// Package netem makes the network between devices and a broker misbehave on
// purpose, precisely and reproducibly, for one device or ten thousand.
//
// A Proxy listens, dials Upstream for every connection it accepts, and treats
// each pair as a link that faults address one by one (ByLink, ByRemote), by
// group (ByGroup) or all at once (AllLinks). Faults are values (Fault) applied
// and removed at run time with Apply and Remove; each acts on one direction
// or both, on a seeded Share of the matching links, now or on a schedule
// (Start, Duration, Every). Every fault put on or taken off a link, and every
// link opened or closed, is an events record.
//
// A link's goroutines:
//
//	device ──► client socket ──► [up reader] ───────────────────────────► server socket ──► broker
//	                                  │  no faults: splice(2) socket→pipe→socket
//	                                  │  blackhole: read and discard
//	                                  │  stall: stop reading (the sender's writes block)
//	                                  └─► queue ─► [up delivery] ─► latency, bandwidth, slice, close_after
//	device ◄── client socket ◄── [down reader] ◄── (the same, mirrored) ◄── server socket ◄── broker
//
// Each reader owns its source socket; the delivery goroutine exists only once
// a fault that holds bytes (latency, bandwidth, slice) has been applied to
// that direction, and from then on owns the destination socket so order is
// kept. Reset and close act once, on the link, from the caller's goroutine.
// The last goroutine of a link to return closes both sockets and emits
// LinkClosed. Proxy.Close closes every socket and joins every goroutine.
//
// Where each fault lives: latency.go, bandwidth.go (with the token bucket
// of a burst), slice.go, closeafter.go, reset.go (reset and close);
// blackhole and stall are decisions of the reader (pipe.go: run, forward,
// readEnd); splice.go is the unfaulted path. Loss, duplicate and reorder act
// on whole MQTT packets: frame.go cuts the stream, packets.go decides per
// packet with the pipe's seeded generator (the reader) and holds the reorder
// window (the delivery goroutine). nat.go has the NAT idle timeout, NAT
// rebinding and the counts every link fault keeps (Proxy.Counts).
//
// Faults switch on live links: a pipe's combined fault state is rebuilt on
// every change and swapped in atomically; a reader blocked in the kernel acts
// on the new state with the very next bytes, and goroutines waiting on the
// old state (a stall, a latency timer) wake at once.
//
// Blackhole and stall differ in what the sender sees. Blackhole keeps reading
// and throws the bytes away: the sender's writes keep succeeding, nothing
// arrives, no FIN passes, neither socket closes — a half-open link as both
// ends see it, and what makes a broker's keepalive fire. Stall stops reading:
// TCP backpressure fills the kernel buffers and the sender's writes block, as
// with a peer that stopped reading; the bytes are delivered when it ends.
//
// How a link gets its group: a link accepted on a ListenGroup listener joins
// that group; a link made with Proxy.Dial joins the group named in the call;
// any other link's group is its source IP. A device's own link can always be
// addressed with ByRemote(conn.LocalAddr().String()).
//
// Lock order: Proxy.mu before pipe.mu. Neither is held across blocking
// socket I/O; closing a socket (reset, close) may happen under Proxy.mu, as
// closing does not block.
//
// Package kernel (netem/kernel) does what a proxy cannot: network
// namespaces, veth pairs, tc netem and iptables DROP for packet-level loss
// and a peer that never ACKs.
package netem
