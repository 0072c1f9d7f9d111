// Package alloctest checks that a function allocates nothing: neither an
// allocation nor a byte per run. testing.AllocsPerRun truncates the average
// (half an allocation per run reads as 0) and says nothing of bytes; Zero
// counts both over every run.
//
// Under the race detector allocation counts are meaningless, so Zero skips
// the test there; `make test` runs the allocation tests a second time
// without -race (`go test -run Alloc ./...`), so CI checks every claim.
package alloctest

import (
	"runtime"
	"testing"
)

// Race is true when the binary was built with -race.
const Race = raceEnabled

// Zero runs f once to warm up, then runs times more and fails the test if
// any of those runs allocated. what names f in the failure message.
func Zero(t testing.TB, what string, runs int, f func()) {
	t.Helper()
	if Race {
		t.Skip("allocation counts are meaningless under -race; `go test -run Alloc` without -race checks them")
	}
	allocs, bytes := Count(runs, f)
	if allocs != 0 || bytes != 0 {
		t.Fatalf("%s: %d allocations, %d bytes over %d runs (%.3f allocs, %.1f B per run); want 0",
			what, allocs, bytes, runs, float64(allocs)/float64(runs), float64(bytes)/float64(runs))
	}
}

// Count runs f once to warm up, then runs times more with one P, and returns
// the allocations and bytes allocated by those runs.
func Count(runs int, f func()) (allocs, bytes uint64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs, after.TotalAlloc - before.TotalAlloc
}
