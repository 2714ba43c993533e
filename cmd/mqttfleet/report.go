package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/mqttfleet/mqttfleet/reports"
)

func init() {
	register("report", "render (html, junit, md) or merge results files", runReport)
}

const reportUsage = `usage:
  mqttfleet report html  [-o report.html] results.json
  mqttfleet report junit [-o junit.xml]   results.json
  mqttfleet report md    [-o summary.md]  results.json
  mqttfleet report merge -o merged.json shard-*.json

Without -o, html, junit and md write to standard output.`

// renderers are the report formats, by subcommand name.
var renderers = map[string]func(io.Writer, *reports.Results) error{
	"html":  reports.HTML,
	"junit": reports.JUnit,
	"md":    reports.Markdown,
}

func runReport(_ context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, reportUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: report needs a subcommand", errUsage)
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("report "+sub, flag.ContinueOnError)
	out := fs.String("o", "", "output file (default: standard output; required for merge)")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), reportUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if sub == "merge" {
		return mergeResults(*out, fs.Args())
	}
	render, ok := renderers[sub]
	if !ok {
		return fmt.Errorf("%w: unknown report %q (html, junit, md or merge)", errUsage, sub)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: report %s takes one results file, got %d", errUsage, sub, fs.NArg())
	}
	res, err := reports.Read(fs.Arg(0))
	if err != nil {
		return err
	}
	return writeOutput(*out, func(w io.Writer) error { return render(w, res) })
}

// mergeResults merges shard files into one results file.
func mergeResults(out string, paths []string) error {
	if out == "" {
		return fmt.Errorf("%w: report merge needs -o merged.json", errUsage)
	}
	if len(paths) == 0 {
		return fmt.Errorf("%w: report merge needs the shard files", errUsage)
	}
	// Globs the shell did not expand (no match, or a quoted pattern).
	var files []string
	for _, p := range paths {
		m, err := filepath.Glob(p)
		if err != nil || len(m) == 0 {
			files = append(files, p) // let Read name the missing file
			continue
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	parts := make([]*reports.Results, 0, len(files))
	for _, f := range files {
		r, err := reports.Read(f)
		if err != nil {
			return err
		}
		parts = append(parts, r)
	}
	merged, err := reports.Merge(parts...)
	if err != nil {
		return err
	}
	if err := merged.Write(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "merged %d results files into %s\n", len(parts), out)
	return nil
}

// writeOutput runs write against the file at path, or standard output when
// path is empty. The file is complete or absent: written beside and renamed.
func writeOutput(path string, write func(io.Writer) error) error {
	if path == "" {
		return write(os.Stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file private; reports are meant to be shared.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
