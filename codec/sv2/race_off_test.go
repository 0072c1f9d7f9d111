//go:build !race

package sv2

const raceEnabled = false
