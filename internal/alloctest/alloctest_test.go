package alloctest

import "testing"

var sink []byte

func TestCountSeesEveryAlloc(t *testing.T) {
	if Race {
		t.Skip("allocation counts are meaningless under -race")
	}
	// Every other run allocates: AllocsPerRun reports 0 for this, Count must not.
	i := 0
	allocs, bytes := Count(100, func() {
		i++
		if i%2 == 0 {
			sink = make([]byte, 64)
		}
	})
	if allocs < 50 || bytes < 50*64 {
		t.Fatalf("Count = %d allocs, %d bytes; want at least 50 and 3200", allocs, bytes)
	}
	if a := testing.AllocsPerRun(100, func() {
		i++
		if i%2 == 0 {
			sink = make([]byte, 64)
		}
	}); a != 0 {
		t.Logf("AllocsPerRun now reports %v for half an allocation per run", a)
	}
}

func TestZeroAllocPasses(t *testing.T) {
	x := 0
	Zero(t, "increment", 1000, func() { x++ })
}
