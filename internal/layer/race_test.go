//go:build race

package layer_test

// raceEnabled: the race detector makes sync.Pool drop items, so allocation
// counts say nothing about streaming.
const raceEnabled = true
