//go:build race

package auxpow

// raceEnabled skips allocation assertions: the race detector allocates on its own.
const raceEnabled = true
