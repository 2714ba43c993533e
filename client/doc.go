// Package client is a small MQTT client over any net.Conn, for the fleet
// simulator (thousands of instances per process) and for conformance probes.
//
// A Client is lean on purpose: at most one reader goroutine per connection
// plus one timer for keepalive, and an idle plain TCP client holds neither
// the goroutine nor any buffer: after a second of silence its reader parks
// the socket in the shared internal/netpark poller and exits, and a new
// reader starts when a packet arrives (park.go). Callers write from their own goroutines; the reader
// writes acknowledgements. Writes are serialised by a one-slot semaphore so
// that a writer waiting for its turn still honours its context.
//
//	caller goroutines ──Publish/Subscribe──► write sem ──► net.Conn ──► broker
//	                                            ▲
//	reader goroutine ◄──── packets ─────────────┼──── net.Conn ◄─── broker
//	   │ PUBACK/PUBREC/PUBREL/PUBCOMP ──────────┘
//	   ├─► completes Tokens (acks, SUBACK, UNSUBACK), frees packet IDs
//	   └─► OnMessage / Messages()
//	keepalive timer (time.AfterFunc) ──PINGREQ──► write sem; closes the link on ping timeout
//
// Lock order: the write semaphore may be held while taking Client.mu or
// Client.ackMu, never the other way round; Client.mu may be held while
// parking or unparking in netpark (whose lock is innermost) or setting a
// read deadline, never across a read or write. Session.mu (session.go) is
// taken alone, never with another of these locks held.
// The reader never waits for the write semaphore: when it is busy, acks are
// queued and written by whoever holds it, so a publisher blocked in Write
// (the broker blocked writing to us) cannot stop the reader from reading.
//
// Raw is the other half: a connection with no automatic behaviour at all,
// for tests that need to send exactly the bytes they want and see exactly
// what comes back.
package client
