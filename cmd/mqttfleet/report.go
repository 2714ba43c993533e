package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttfleet/mqttfleet/reports"
)

func init() {
	registerGroup("report", "render (html, junit, md) or merge results files", reportCommands)
}

// renderers are the report formats, by subcommand name.
var renderers = map[string]struct {
	summary string
	render  func(io.Writer, *reports.Results) error
}{
	"html":  {"render a results file as a self-contained HTML page", reports.HTML},
	"junit": {"render a results file as JUnit XML", reports.JUnit},
	"md":    {"render a results file as a Markdown summary", reports.Markdown},
}

// reportCommands are `report html|junit|md results.json` and `report merge`.
func reportCommands() []*cobra.Command {
	var out []*cobra.Command
	for _, name := range []string{"html", "junit", "md"} {
		r := renderers[name]
		c := &cobra.Command{Use: name + " [-o FILE] results.json", Short: r.summary,
			Long: r.summary + ". Without -o it writes to standard output."}
		o := c.Flags().StringP("output", "o", "", "output file (default: standard output)")
		c.RunE = func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: report %s takes one results file, got %d", errUsage, name, len(args))
			}
			res, err := reports.Read(args[0])
			if err != nil {
				return err
			}
			return writeOutput(*o, func(w io.Writer) error { return r.render(w, res) })
		}
		out = append(out, c)
	}
	m := &cobra.Command{Use: "merge -o merged.json shard.json...", Short: "merge the results files of a sharded run into one",
		Long: "Merges shard results files of one run. A shard given twice or shards of different runs are refused;\n" +
			"missing shards are named and fail the merged run."}
	o := m.Flags().StringP("output", "o", "", "merged results file (required)")
	m.RunE = func(_ *cobra.Command, args []string) error { return mergeResults(*o, args) }
	return append(out, m, matrixCommand())
}

// matrixCommand is `report matrix`: the published broker comparison from a
// conformance results file and the scenario library's results per broker.
func matrixCommand() *cobra.Command {
	c := &cobra.Command{Use: "matrix --conformance results.json --scenarios DIR [--md FILE] [--html FILE]",
		Short: "write the broker matrix (statement x broker, scenario x broker) as Markdown and HTML",
		Long: "Reads a conformance results file and DIR/<broker>/<scenario>.json (or DIR/<broker>/<scenario>/results.json,\n" +
			"the layout `mqttfleet run --out` leaves) and writes the matrix `make matrix` publishes as docs/matrix.md."}
	conf := c.Flags().String("conformance", "", "conformance results file")
	scen := c.Flags().String("scenarios", "", "directory of scenario results per broker")
	md := c.Flags().String("md", "", "Markdown output (default: standard output)")
	html := c.Flags().String("html", "", "HTML output")
	c.RunE = func(_ *cobra.Command, args []string) error {
		if len(args) > 0 || (*conf == "" && *scen == "") {
			return fmt.Errorf("%w: report matrix needs --conformance and/or --scenarios", errUsage)
		}
		bm := &reports.BrokerMatrix{Scenarios: map[string]map[string]*reports.Results{}}
		if *conf != "" {
			r, err := reports.Read(*conf)
			if err != nil {
				return err
			}
			bm.Conformance = r
		}
		if *scen != "" {
			brokers, err := os.ReadDir(*scen)
			if err != nil {
				return err
			}
			for _, b := range brokers {
				if !b.IsDir() {
					continue
				}
				entries, err := os.ReadDir(filepath.Join(*scen, b.Name()))
				if err != nil {
					return err
				}
				for _, e := range entries {
					p, name := filepath.Join(*scen, b.Name(), e.Name()), strings.TrimSuffix(e.Name(), ".json")
					if e.IsDir() {
						p = filepath.Join(p, "results.json")
					} else if !strings.HasSuffix(e.Name(), ".json") {
						continue
					}
					r, err := reports.Read(p)
					if err != nil {
						return err
					}
					if bm.Scenarios[b.Name()] == nil {
						bm.Scenarios[b.Name()] = map[string]*reports.Results{}
					}
					bm.Scenarios[b.Name()][name] = r
				}
			}
		}
		if err := writeOutput(*md, bm.Markdown); err != nil {
			return err
		}
		if *html != "" {
			return writeOutput(*html, bm.HTML)
		}
		return nil
	}
	return c
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
		// Merge numbers the parts; say which file each number is.
		named := make([]string, len(files))
		for i, f := range files {
			named[i] = fmt.Sprintf("part %d = %s", i, f)
		}
		return fmt.Errorf("%w (%s)", err, strings.Join(named, ", "))
	}
	if err := merged.Write(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "merged %d results files into %s\n", len(parts), out)
	if len(merged.Run.MissingShards) > 0 {
		return fmt.Errorf("merged run is incomplete: shards %v of %d missing", merged.Run.MissingShards,
			len(merged.Run.Shards)+len(merged.Run.MissingShards))
	}
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
