package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemoShort is the short version of `make demo`: real btcd, real pool, real loadgen
// processes, two blocks.
func TestDemoShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs btcd, hashpool and loadgen")
	}
	var out strings.Builder
	sum, err := Run(context.Background(), Options{Blocks: 2, Miners: 4, Timeout: 4 * time.Minute, Out: &out})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if sum.Height-sum.StartHeight < 2 || sum.Blocks < 2 || sum.Accepted < 2 {
		t.Fatalf("summary %+v\n%s", sum, out.String())
	}
	if !strings.Contains(out.String(), "blocks 2/2") && !strings.Contains(out.String(), "blocks 3/2") {
		t.Logf("progress:\n%s", out.String())
	}
}
