#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each (default 20s).
# Usage: scripts/fuzz.sh [duration]   e.g. scripts/fuzz.sh 10m
# Targets are found, not listed: every `func Fuzz...` in a _test.go file. Today: packet FuzzDecode311,
# FuzzDecode5; broker FuzzLoadConfig (YAML config loader) and FuzzConn (byte streams on a live broker
# connection, with goroutine and heap checks after each input); scenarios FuzzParse (scenario loader).
# This explores; `make test` does not call it (go test replays the seeds and testdata/fuzz crashers).
# `make fuzz` runs each briefly; the long run (`make fuzz-long`, 10m each) is the acceptance step for
# FuzzConn: run it on an otherwise idle machine and record execs and the result in docs/benchmarks.md.
set -euo pipefail
t=${1:-20s}
found=0
while read -r dir; do
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //'); do
		found=1
		echo "== fuzz $dir $f for $t"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "./$dir"
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | sed 's|^\./||')
[ "$found" = 1 ] || { echo "no fuzz targets found" >&2; exit 1; }
