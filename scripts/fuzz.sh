#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each (default 20s).
# Usage: scripts/fuzz.sh [duration]   e.g. scripts/fuzz.sh 10m
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
