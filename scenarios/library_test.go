package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/simulator"
	"github.com/mqttfleet/mqttfleet/targets"
)

func TestMain(m *testing.M) {
	// The storm holds four sockets per device in this process (device,
	// proxy both sides, broker).
	if _, _, err := simulator.RaiseOpenFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "raise open-file limit:", err)
	}
	goleak.VerifyTestMain(m,
		// testcontainers keeps a reaper-less Docker client with idle HTTP
		// connections for the process lifetime.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// libraryOverrides scale scenarios down for make test where the file's own
// size would cost minutes; the files state the real sizes.
var libraryOverrides = map[string]map[string]string{}

func libraryFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("library/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no library scenarios: %v", err)
	}
	return files
}

// runLibrary runs every library scenario against a target and checks the
// verdicts; failing assertions are printed with their evidence.
func runLibrary(t *testing.T, target func() targets.Target, wantPass bool) {
	for _, file := range libraryFiles(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			if only := os.Getenv("MQTTFLEET_SCENARIO"); only != "" && only != name {
				t.Skip("MQTTFLEET_SCENARIO selects " + only)
			}
			sc, err := Load(file, libraryOverrides[name])
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			opts := Options{}
			if target != nil {
				opts.Target = target()
			}
			if testing.Verbose() {
				opts.Progress = testWriter{t}
			}
			start := time.Now()
			res, err := Run(ctx, sc, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s (%s)", Summary(sc, res), time.Since(start).Round(time.Millisecond))
			for _, a := range res.Assertions {
				t.Logf("  %-7s %s: %s", a.Verdict, a.Name, a.Message)
				if a.Verdict == reports.Fail || a.Verdict == reports.Error {
					for _, e := range a.Evidence {
						t.Logf("           %s %s %s client=%s group=%s topic=%s cause=%s %s", e.Time.Format("15:04:05.000"),
							e.Source, e.Kind, e.ClientID, e.Group, e.Topic, e.Cause, e.Detail)
					}
				}
			}
			if wantPass && res.Verdict() != reports.Pass {
				t.Errorf("%s: verdict %s", name, res.Verdict())
			}
		})
	}
}

// TestLibraryInProcess is the acceptance run: every library scenario passes
// against the in-process reference broker.
func TestLibraryInProcess(t *testing.T) {
	runLibrary(t, nil, true)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
