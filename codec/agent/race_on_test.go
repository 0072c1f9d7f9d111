//go:build race

package agent

// raceEnabled is true under -race, where the detector's bookkeeping
// allocates; allocation assertions are skipped then.
const raceEnabled = true
