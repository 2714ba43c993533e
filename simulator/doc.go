// Package simulator runs a fleet of simulated MQTT devices described by a
// profile (package profile) against a broker, and measures it to the
// message: connects by CONNACK code, disconnects by cause, reconnects,
// takeovers, messages sent, received, lost, duplicated and out of order,
// and CONNECT->CONNACK, PUBLISH->ack, subscribe and end-to-end latencies.
//
//	profile ──► Fleet ──► device × N ──► Driver (native client/ or paho) ──► broker
//	              │          │ timers (time.AfterFunc): start, publish, churn, reconnect
//	              │          └─► tracker: per (publisher, receiver) sequence accounting
//	              ├─► events.Sink (reports.Collector: counters, histograms, series)
//	              └─► Live counters ──► progress line, Prometheus endpoint
//
// A device owns no goroutine of its own: its timers fire on the runtime's
// timer goroutines, and a connect attempt runs on a short-lived goroutine.
// The driver's reader goroutine (one per connection) delivers messages.
//
// Sharding: a Fleet may run only the contiguous slice of device indexes
// Shard names. Per-device seeds and the ramp-up schedule depend only on the
// run seed and the global index, so N shards behave as one fleet.
package simulator
