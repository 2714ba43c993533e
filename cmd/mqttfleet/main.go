// Command mqttfleet is the command line of the MQTT fleet simulator and
// protocol test harness: thin flag parsing over the packages of this module.
// Each subcommand lives in its own file and registers itself in init; the
// command tree, help, flag parsing (flags before or after arguments) and
// shell completion are spf13/cobra's.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mqttfleet/mqttfleet/reports"
	"github.com/mqttfleet/mqttfleet/targets"
)

// runFunc does a command's work until ctx ends; args are the positional
// arguments (flags are bound by the command's define function).
type runFunc func(ctx context.Context, args []string) error

// command is one subcommand: define binds its flags to fs and returns the
// function that runs it.
type command struct {
	use, summary, long string
	define             func(fs *pflag.FlagSet) runFunc
	subs               func() []*cobra.Command // a command made of subcommands
}

var commands = map[string]command{}

// register adds a subcommand: use is its usage line ("run [flags] scenario.yaml..."),
// the first word its name.
func register(use, summary, long string, define func(fs *pflag.FlagSet) runFunc) {
	name, _, _ := strings.Cut(use, " ")
	commands[name] = command{use: use, summary: summary, long: long, define: define}
}

// registerGroup adds a command made of subcommands (report html|junit|md|merge).
func registerGroup(use, summary string, subs func() []*cobra.Command) {
	name, _, _ := strings.Cut(use, " ")
	commands[name] = command{use: use, summary: summary, subs: subs}
}

// errUsage marks an error caused by bad arguments: exit code 2. It is the
// results model's ErrInvalid, so bad scenario files and configs exit 2 too.
var errUsage = reports.ErrInvalid

func main() {
	// A `process` scenario target runs this executable as its reference
	// broker child; serve as that and exit when asked.
	targets.RunChild()
	os.Exit(run(os.Args[1:]))
}

// newRoot builds the command tree afresh, so each run binds its own flags.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "mqttfleet",
		Short: "MQTT device-fleet simulator and protocol test harness",
		Long: "mqttfleet — MQTT device-fleet simulator and protocol test harness.\n\n" +
			"Exit status, for every command: 0 every verdict passed, 1 a verdict failed (or the run was\n" +
			"interrupted), 2 usage, configuration or scenario error (nothing ran), 3 the target could not\n" +
			"be reached or started.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v (see 'mqttfleet %s --help')", errUsage, err, c.Name())
	})
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		cmd := &cobra.Command{Use: c.use, Short: c.summary, Long: c.long}
		if c.subs != nil {
			cmd.AddCommand(c.subs()...)
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				var names []string
				for _, c := range cmd.Commands() {
					names = append(names, c.Name())
				}
				if len(args) > 0 {
					return fmt.Errorf("%w: unknown %s %q (%s)", errUsage, cmd.Name(), args[0], strings.Join(names, ", "))
				}
				return fmt.Errorf("%w: %s needs a subcommand (%s)", errUsage, cmd.Name(), strings.Join(names, ", "))
			}
		} else {
			runF := c.define(cmd.Flags())
			cmd.RunE = func(cmd *cobra.Command, args []string) error { return runF(cmd.Context(), args) }
		}
		root.AddCommand(cmd)
	}
	root.AddCommand(versionCommand())
	return root
}

// execute runs the command line args until ctx ends.
func execute(ctx context.Context, args []string) error {
	root := newRoot()
	root.SetArgs(legacyLongFlags(root, args))
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command") {
		err = fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}

func run(args []string) int {
	ctx, stop := interruptible()
	defer stop()
	err := execute(ctx, args)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	// One contract for every command (README, docs/results.md): 0 pass,
	// 1 a verdict failed, 2 bad usage/config/scenario, 3 target unavailable.
	code := reports.ExitCode(nil, err)
	if err != nil {
		name := "mqttfleet"
		if len(args) > 0 {
			name += " " + args[0]
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	return code
}

// repeated is a flag that may be given several times (--listen a --listen b).
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }
func (r *repeated) Type() string       { return "url" }

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
