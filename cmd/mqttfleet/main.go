// Command mqttfleet is the command line of the MQTT fleet simulator and
// protocol test harness: thin flag parsing over the packages of this module.
// Each subcommand lives in its own file and registers itself in init.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/mqttfleet/mqttfleet/reports"
)

// command is one subcommand: run parses args and does the work until ctx ends.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands[name] = command{summary: summary, run: run}
}

// errUsage marks an error caused by bad arguments: exit code 2. It is the
// results model's ErrInvalid, so bad scenario files and configs exit 2 too.
var errUsage = reports.ErrInvalid

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "mqttfleet: unknown command %q\n\n", args[0])
		usage()
		return 2
	}
	ctx, stop := interruptible()
	defer stop()
	err := cmd.run(ctx, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	// One contract for every command (README, docs/results.md): 0 pass,
	// 1 a verdict failed, 2 bad usage/config/scenario, 3 target unavailable.
	code := reports.ExitCode(nil, err)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mqttfleet %s: %v\n", args[0], err)
	}
	return code
}

func usage() {
	fmt.Fprintln(os.Stderr, "mqttfleet — MQTT device-fleet simulator and protocol test harness\n\nusage: mqttfleet <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'mqttfleet <command> -h' for a command's flags.")
}

// repeated is a flag that may be given several times (-listen a -listen b).
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

// colorOK says whether output to f may carry ANSI colours: only on a
// terminal, and never when NO_COLOR is set (https://no-color.org).
func colorOK(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// interruptible returns a context the first SIGINT or SIGTERM cancels, so
// the command stops cleanly and writes its (partial) results; a second
// signal exits at once with 130. stop releases the signals.
func interruptible() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintln(os.Stderr, "mqttfleet: interrupted: stopping and writing the results so far (interrupt again to quit at once)")
		cancel()
		select {
		case <-sigs:
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
