package mosquittotest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connack sends an MQTT 3.1.1 CONNECT (no credentials) to addr and returns
// the CONNACK return code [MQTT-3.2.2-3].
func connack(t *testing.T, addr string) byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	// CONNECT: protocol "MQTT" level 4, clean session, keepalive 60, client id "t".
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 1, 't'}
	if _, err := c.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatalf("write CONNECT: %v", err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		t.Fatalf("CONNACK header % x, want 20 02", ack[:2])
	}
	return ack[3]
}

func TestStart(t *testing.T) {
	tests := []struct {
		name     string
		opts     []Option
		wantCode byte // CONNACK return code on the MQTT port
		wantWS   bool
	}{
		{"plain", nil, 0, false},
		{"websocket", []Option{WebSocket()}, 0, true},
		// A later line overrides the default, which shows the lines are used:
		// 5 is "not authorized".
		{"config lines", []Option{Config("persistence false", "allow_anonymous false")}, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Start(t, tt.opts...)
			if host, _, _ := net.SplitHostPort(m.Addr); host != "127.0.0.1" {
				t.Fatalf("Addr %q not on 127.0.0.1", m.Addr)
			}
			if got := connack(t, m.Addr); got != tt.wantCode {
				t.Fatalf("CONNACK code %d, want %d", got, tt.wantCode)
			}
			if (m.WSAddr != "") != tt.wantWS {
				t.Fatalf("WSAddr %q, want set: %v", m.WSAddr, tt.wantWS)
			}
			if tt.wantWS {
				checkWebSocket(t, m.WSAddr)
			}
			if !strings.Contains(m.Output(), "mosquitto version") {
				t.Fatalf("output lacks the start banner:\n%s", m.Output())
			}
		})
	}
}

// checkWebSocket asks the WebSocket listener to upgrade to the mqtt
// subprotocol and wants 101 Switching Protocols.
func checkWebSocket(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial websocket %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /mqtt HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status %d, want 101", resp.StatusCode)
	}
}

func TestStopEndsProcess(t *testing.T) {
	m := Start(t)
	pid := m.PID()
	m.Stop()
	m.Stop() // twice is fine; cleanup calls it a third time
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Fatalf("process %d still exists after Stop", pid)
	}
	if c, err := net.DialTimeout("tcp", m.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts after Stop", m.Addr)
	}
}

// TestListensOn: a port taken by another process (here: this test) is not
// counted as Mosquitto's, which is what makes Start retry instead of
// handing out a port Mosquitto never bound.
func (m *Mosquitto) listenerPort(t *testing.T) int {
	_, port, _ := net.SplitHostPort(m.Addr)
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port of %q: %v", m.Addr, err)
	}
	return n
}

func TestListensOn(t *testing.T) {
	m := Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	theirs, mine := m.listenerPort(t), ln.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name  string
		pid   int
		ports []int
		want  bool
	}{
		{"mosquitto's port", m.PID(), []int{theirs}, true},
		{"another process's port", m.PID(), []int{theirs, mine}, false},
		{"this process's port", os.Getpid(), []int{mine}, true},
		{"this process, mosquitto's port", os.Getpid(), []int{theirs}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := listensOn(tt.pid, tt.ports); got != tt.want {
				t.Fatalf("listensOn(%d, %v) = %v, want %v", tt.pid, tt.ports, got, tt.want)
			}
		})
	}
}
