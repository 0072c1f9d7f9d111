//go:build !race

package auxpow

const raceEnabled = false
