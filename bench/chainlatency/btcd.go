package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/hashpool/hashpool/internal/btcdtest"
)

// startBtcd starts btcd in regtest with btcdtest.Launch (free 127.0.0.1 ports,
// a data dir under dir that Stop removes, no --txindex) and waits until its
// RPC answers. bin is the -btcd flag; empty means btcdtest's build
// ($HASHPOOL_BTCD, else the module pinned in go.mod, cached under
// os.TempDir()). It also returns what `btcd --version` printed, for the report.
func startBtcd(ctx context.Context, bin, dir string) (*btcdtest.Node, string, error) {
	if bin == "" {
		var err error
		if bin, err = btcdtest.BuildBinary(); err != nil {
			return nil, "", fmt.Errorf("%w (run from inside the hashpool module, or pass -btcd)", err)
		}
	} else if _, err := os.Stat(bin); err != nil {
		return nil, "", fmt.Errorf("btcd binary: %w", err)
	}
	var version string
	if v, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		version = strings.TrimSpace(string(v))
	}
	n, err := btcdtest.Launch(ctx, btcdtest.Options{Binary: bin, Dir: dir, NoTxIndex: true})
	if err != nil {
		return nil, "", fmt.Errorf("btcd: %w", err)
	}
	return n, version, nil
}
