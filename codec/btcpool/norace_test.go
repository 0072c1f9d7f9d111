//go:build !race

package btcpool

const raceEnabled = false
