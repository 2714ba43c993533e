package clientconf

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqttfleet/mqttfleet/packet"
	"github.com/mqttfleet/mqttfleet/reports"
)

// rawClient is a deliberately bad client on a raw socket: each of its
// faults must turn the matching cell red, with the trace in the reason.
type rawClient struct {
	badConnect bool          // password flag without user name flag (3.1.1)
	noPing     bool          // never sends PINGREQ
	retryEvery time.Duration // reconnects this fast whatever happens
}

func (rawClient) Name() string      { return "raw" }
func (rawClient) Protocols() []byte { return []byte{packet.V311} }
func (rawClient) Available() error  { return nil }

func (d rawClient) Run(ctx context.Context, job Job) (Received, error) {
	for {
		d.once(ctx, job)
		if d.retryEvery == 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(d.retryEvery):
		}
	}
}

func (d rawClient) once(ctx context.Context, job Job) {
	nc, err := net.Dial("tcp", job.Addr)
	if err != nil {
		return
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c := &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, CleanSession: true, ClientID: job.ClientID,
		KeepAlive: uint16(job.KeepAlive / time.Second)}
	b, _ := packet.Append(nil, c, packet.V311)
	if d.badConnect {
		b[9] |= 0x40 // the password flag, with no user name and no password field
	}
	if _, err := nc.Write(b); err != nil {
		return
	}
	buf := make([]byte, 64)
	for { // read until the server or ctx ends the connection; no PINGREQ
		if _, err := nc.Read(buf); err != nil {
			return
		}
	}
}

// TestFailurePathsTurnRed runs the suite against the bad client: the
// malformed CONNECT, the missing PINGREQs and the tight reconnect loop each
// show up as a failed cell with the packet trace.
func TestFailurePathsTurnRed(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		d      rawClient
		probe  string
		id     string
		reason string
	}{
		{"malformed CONNECT", rawClient{badConnect: true}, "connect-plain", "MQTT-3.1.2-22", "password flag without user name flag"},
		{"no PINGREQ", rawClient{noPing: true}, "connect-will-credentials", "MQTT-3.1.2-23", "0 PINGREQs"},
		{"tight loop after CONNACK 5", rawClient{retryEvery: 100 * time.Millisecond}, "connack-refused-5", "client:refused-5-no-tight-loop", "retries/s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := Run(ctx, Options{Drivers: []Driver{tc.d}, Probes: []string{tc.probe}})
			cell := res.Results().Conformance.Cell("raw", tc.id)
			if cell.Status != reports.CellFail {
				t.Fatalf("%s: %s is %s, want fail: %s", tc.probe, tc.id, cell.Status, cell.Reason)
			}
			if !strings.Contains(cell.Reason, tc.reason) || !strings.Contains(cell.Reason, "packet trace") {
				t.Errorf("reason lacks %q or the trace:\n%s", tc.reason, cell.Reason)
			}
		})
	}
}

// TestNoClientIsNotGreen: a run where no client could start is not a
// completed run.
func TestNoClientIsNotGreen(t *testing.T) {
	res := Run(context.Background(), Options{Drivers: []Driver{PythonPaho{Python: "/nonexistent/python3"}}})
	r := res.Results()
	if r.Run.Status != reports.StatusTargetUnavailable || len(res.Skipped) != 1 {
		t.Fatalf("status %s, skipped %v", r.Run.Status, res.Skipped)
	}
}

// A program given by its command line runs the probes it can do and no
// other: here mosquitto_sub, which can connect and subscribe but not
// publish.
func TestCommandDriver(t *testing.T) {
	c, err := ParseCommand("mosquitto_sub -h {host} -p {port} -i {id} -k {keepalive} -t cc/#")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Available(); err != nil {
		t.Skipf("mosquitto_sub: %v (make deps installs mosquitto-clients)", err)
	}
	res := Run(context.Background(), Options{Drivers: []Driver{c}, Probes: []string{"connect-plain", "publish-qos1"}})
	if len(res.Outcomes) != 1 || res.Outcomes[0].Probe != "connect-plain" {
		t.Fatalf("outcomes %+v, want connect-plain only (the program cannot publish)", res.Outcomes)
	}
	rm := res.Results().Conformance
	for _, id := range []string{"MQTT-3.1.0-1", "MQTT-3.8.1-1", "MQTT-3.14.4-1"} {
		if cell := rm.Cell("cmd:mosquitto_sub", id); cell.Status != reports.CellPass {
			t.Errorf("%s: %s %s", id, cell.Status, cell.Reason)
		}
	}
	if _, err := ParseCommand("mosquitto_sub -h localhost -p 1883"); err == nil {
		t.Error("a command line without {port} was accepted")
	}
	if _, err := ParseCommand("  "); err == nil {
		t.Error("an empty command line was accepted")
	}
}
