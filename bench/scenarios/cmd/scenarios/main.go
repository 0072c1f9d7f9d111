// Command scenarios runs the benchmark load scenarios alone (bench/suite
// runs them as part of `make bench`) and prints each one's summary.
//
//	go run ./bench/scenarios/cmd/scenarios -quick
//	go run ./bench/scenarios/cmd/scenarios -only stratum-10k,farm-10k
//	go run ./bench/scenarios/cmd/scenarios -only agent-farm-10k -quick
//
// agent-farm-10k (one btcagent process in front of the engine, ~23 minutes
// full size) runs only when named with -only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashpool/hashpool/bench/scenarios"
)

func main() {
	out := flag.String("out", "bench/out", "directory for the reports")
	quick := flag.Bool("quick", false, "about ten times smaller and shorter")
	only := flag.String("only", "", "comma-separated scenarios: "+strings.Join(scenarios.Names(), ",")+" (default: all but the opt-in agent-farm-10k)")
	progress := flag.Bool("progress", false, "show loadgen's progress line every second")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := scenarios.Config{Root: ".", OutDir: *out, Quick: *quick, Log: os.Stderr, LoadgenProgress: *progress}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	results, err := scenarios.Run(ctx, cfg)
	for _, r := range results {
		fmt.Println(r.Text())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenarios:", err)
		os.Exit(1)
	}
	for _, r := range results {
		if r.Error != "" {
			os.Exit(1)
		}
	}
}
