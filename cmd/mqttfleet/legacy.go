package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// legacyLongFlags rewrites single-dash long flags of the old flag-package
// command line (`-listen URL`, `-config=FILE`) to pflag's double dash when
// the name is a long flag of the command args select, so scripts and docs
// written for the old parser keep working. Shorthands (`-o`), negative
// numbers (`--devices -3`) and everything after `--` are left alone.
func legacyLongFlags(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return args
	}
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) < 2 {
			continue
		}
		if cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil || name == "help" {
			out[i] = "-" + a
		}
	}
	return out
}
