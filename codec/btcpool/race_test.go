//go:build race

package btcpool

// raceEnabled skips allocation assertions: the race detector allocates on its own.
const raceEnabled = true
