//go:build race

package sha

// raceEnabled is true under -race, where the detector's bookkeeping makes
// allocation counts meaningless.
const raceEnabled = true
