//go:build !race

package client

// raceEnabled: the race detector inflates heap and stacks, so footprint
// bounds are only logged.
const raceEnabled = false
