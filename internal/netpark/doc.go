// Package netpark lets an idle network connection wait without a goroutine.
//
// A goroutine blocked in Read costs at least a 2 KB stack (often 4-8 KB
// after the first packets) plus its descriptor; across tens of thousands of
// silent connections that dominates memory. A connection's owner that sees
// it silent parks it instead: the reading goroutine registers the socket
// with a Poller and exits. When the socket becomes readable (data, EOF or
// an error), the Poller calls the wake function once, which typically
// starts a new reading goroutine. The owner takes the connection back
// itself with Unpark (to close it, for example). ParkUntil adds a deadline
// (a keepalive): wake is also called once it passes, checked every 50 ms
// while any deadline is set, so no timer or goroutine is kept per connection:
// a parked connection costs the Poller one 32-byte entry (table.go).
//
//	reader --silent--> Park(conn, wake) --> goroutine exits
//	                       |
//	      readable ---> Poller goroutine ---> wake() ---> go reader ...
//	      owner ------> Unpark(conn) == true ---> owner resumes it itself
//
// One Poller goroutine serves every parked connection, and only while at
// least one is parked, so a process with nothing parked holds none. On
// Linux the Poller is an epoll set with one-shot registrations, and that
// set's own descriptor waits in Go's poller like any socket: the goroutine
// blocks no OS thread, and a wake costs one non-blocking epoll_wait rather
// than a thread hand-off. A parked socket stays registered with Go's poller
// as well, which is only used while a goroutine reads it. Elsewhere Park
// always reports false and callers keep their reading goroutine.
//
// Most owners share Default. An owner that must know when no wake can come
// any more (the broker counts every goroutine it starts, and each wake
// starts one) makes its own Poller with New and closes it: after Close has
// returned, no wake is called.
//
// Only connections without user-space read buffering can be parked: the
// conn must be a syscall.Conn whose readability is the socket's (a
// *net.TCPConn, not a *tls.Conn). Unpark a parked connection before closing
// it, so its descriptor cannot be reused while still registered.
package netpark
