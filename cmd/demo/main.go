// Command demo shows the whole pool working on one machine: it builds hashpool, loadgen and btcd,
// starts btcd in regtest on loopback with a temporary data dir, runs `hashpool run` against it and
// loadgen's simulated miners grinding real shares at a low difficulty, prints live progress, and
// stops after a number of blocks accepted by btcd, leaving no process behind.
//
//	go run ./cmd/demo              # what `make demo` runs: 10 blocks
//	go run ./cmd/demo -blocks 3 -miners 8
//	go run ./cmd/demo -aux         # with namecoind regtest merge-mined: `make demo AUX=1`
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var o Options
	flag.IntVar(&o.Blocks, "blocks", 10, "stop after this many blocks accepted by btcd")
	flag.IntVar(&o.Miners, "miners", 32, "simulated miners")
	flag.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up after this long")
	flag.StringVar(&o.WorkDir, "dir", "", "work directory (default: a new temporary directory, removed at the end)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the work directory (logs, database, share logs)")
	flag.DurationVar(&o.Linger, "linger", 0, "keep mining this long after the last block, to watch the dashboard (Ctrl-C ends it)")
	flag.BoolVar(&o.Aux, "aux", false, "merge-mine a namecoind regtest node as an aux chain ($NAMECOIND, shared/bin/namecoind or PATH)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Out = os.Stdout
	sum, err := Run(ctx, o)
	if sum != nil {
		sum.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// Options configure one demo run.
type Options struct {
	Blocks  int
	Miners  int
	Timeout time.Duration
	WorkDir string
	Keep    bool
	Linger  time.Duration // keep mining after the last block (the dashboard stays live)
	Aux     bool          // merge-mine namecoind regtest ([[aux]] "nmc")
	Out     io.Writer     // progress lines
}
