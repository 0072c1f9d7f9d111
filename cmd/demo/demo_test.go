package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/namecoindtest"
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

// TestDemoMergedMining is `make demo AUX=1` short: the same processes with namecoind regtest
// merge-mined; namecoind's chain grows and every accepted found_nmc_blocks row is on it.
func TestDemoMergedMining(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs btcd, namecoind, hashpool and loadgen")
	}
	namecoindtest.Require(t)
	var out strings.Builder
	sum, err := Run(context.Background(), Options{Blocks: 2, Miners: 4, Timeout: 4 * time.Minute, Out: &out, Aux: true})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if sum.Blocks < 2 || sum.AuxHeight <= sum.AuxStart || sum.AuxBlocks < 1 || !strings.Contains(out.String(), "aux blocks") {
		t.Fatalf("summary %+v\n%s", sum, out.String())
	}
}
