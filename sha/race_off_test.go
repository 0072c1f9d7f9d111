//go:build !race

package sha

const raceEnabled = false
