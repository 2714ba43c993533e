//go:build race

package netem

// raceEnabled: the race detector allows at most 8,128 live goroutines, fewer
// than 5,000 links need.
const raceEnabled = true
