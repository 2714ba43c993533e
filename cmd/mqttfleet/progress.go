package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
)

// progress is the one meaning of --progress and --progress-every across
// commands: a mode (auto: a status line on a terminal, periodic lines
// otherwise; tty; plain; off) and how often it updates.
type progress struct {
	mode  *string
	every *time.Duration
}

func progressFlags(fs *pflag.FlagSet) progress {
	return progress{
		mode:  fs.String("progress", "auto", "live progress: auto, tty (status line), plain (periodic lines) or off"),
		every: fs.Duration("progress-every", 0, "how often progress updates (default 1s on a terminal, 5s otherwise)"),
	}
}

func (p progress) check() error {
	switch *p.mode {
	case "auto", "tty", "plain", "off":
	default:
		return fmt.Errorf("%w: --progress %q: want auto, tty, plain or off", errUsage, *p.mode)
	}
	if *p.every < 0 {
		return fmt.Errorf("%w: --progress-every %s: want a positive duration", errUsage, *p.every)
	}
	return nil
}

// resolved is the mode with auto decided by whether stderr is a terminal.
func (p progress) resolved() string {
	if *p.mode != "auto" {
		return *p.mode
	}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return "tty"
	}
	return "plain"
}

// interval is how often to print, 0 when progress is off.
func (p progress) interval() time.Duration {
	mode := p.resolved()
	switch {
	case mode == "off":
		return 0
	case *p.every > 0:
		return *p.every
	case mode == "tty":
		return time.Second
	}
	return 5 * time.Second
}
