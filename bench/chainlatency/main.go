package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/hashpool/hashpool/bench/host"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chainlatency:", err)
		os.Exit(1)
	}
}

// run parses args, starts btcd, measures the four combinations and prints
// the report to stdout (and to -out when set).
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chainlatency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	blocks := fs.Int("blocks", 50, "blocks mined per combination (one sample each, at least 1)")
	maxPause := fs.Duration("max-pause", time.Second, "random pause in [0, max-pause] before each block with long polling")
	pollMaxPause := fs.Duration("poll-max-pause", 2*time.Second, "the same with polling; at least one polling cycle (2 s), so blocks fall at every phase of it")
	seed := fs.Uint64("seed", 0, "seed of the pauses (0: from the clock)")
	out := fs.String("out", "", "also write the report to this file (e.g. bench/chainlatency/RESULTS.txt)")
	btcd := fs.String("btcd", "", "btcd binary (default: $HASHPOOL_BTCD, else built from the btcd module pinned in go.mod)")
	timeout := fs.Duration("timeout", 15*time.Minute, "bound on the whole run")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: go run ./bench/chainlatency [flags]\n\n"+
			"Measures the time from a new block on a regtest btcd to the StratumJob for the next\n"+
			"height on the bus: long poll and 1 s polling, bus/mem and bus/kafka on kfake.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *blocks < 1 || *blocks > 10000 {
		return fmt.Errorf("-blocks %d: want 1..10000", *blocks)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"max-pause", *maxPause}, {"poll-max-pause", *pollMaxPause}} {
		if f.d < 0 || f.d > time.Minute {
			return fmt.Errorf("-%s %v: want 0..1m", f.name, f.d)
		}
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "chainlatency-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	n, version, err := startBtcd(ctx, *btcd, dir)
	if err != nil {
		return err
	}
	defer n.Stop()

	cfg := config{Node: n.ClientOptions(), Payout: n.MiningAddress(), Blocks: *blocks, MaxPause: *maxPause,
		PollMaxPause: *pollMaxPause,
		Rand:         rand.New(rand.NewPCG(*seed, 0)), Progress: stderr}
	started := time.Now()
	load := host.LoadAvg()
	var results []result
	for _, c := range combos {
		r, err := measure(ctx, c, cfg)
		if err != nil {
			return fmt.Errorf("%s, %s: %w", c.Bus, c.Mode, err)
		}
		results = append(results, r)
	}
	report := renderReport(reportInfo{
		Date:     started.UTC(),
		Took:     time.Since(started),
		Command:  "go run ./bench/chainlatency " + strings.Join(args, " "),
		Seed:     *seed,
		MaxPause: *maxPause, PollMaxPause: *pollMaxPause,
		Btcd:     version,
		Machine:  machine(),
		LoadFrom: load, LoadTo: host.LoadAvg(),
	}, results)
	fmt.Fprint(stdout, report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// reportInfo is what the report says about the run besides the numbers.
type reportInfo struct {
	Date             time.Time
	Took             time.Duration
	Command          string
	Seed             uint64
	MaxPause         time.Duration
	PollMaxPause     time.Duration
	Btcd             string
	Machine          string
	LoadFrom, LoadTo string
}

// renderReport is the whole report: what was run, where, the table and its
// interpretation.
func renderReport(info reportInfo, results []result) string {
	var b strings.Builder
	b.WriteString("# Chain latency: new block on the node → StratumJob for the next height on the bus\n\n")
	fmt.Fprintf(&b, "Date: %s (run took %s)  \n", info.Date.Format(time.RFC3339), info.Took.Round(time.Second))
	fmt.Fprintf(&b, "Command: `%s` (seed %d)  \n", strings.TrimSpace(info.Command), info.Seed)
	fmt.Fprintf(&b, "Node: %s, regtest, alone (no peers); %s  \n", info.Btcd, runtime.Version())
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at start: %s; at end: %s\n\n", info.LoadFrom, info.LoadTo)
	fmt.Fprintf(&b, "Method: one btcd regtest node; per combination a fresh bus, jobmaker and gbtmaker. Each block is mined with "+
		"`generate 1` after a random pause, uniform in [0, %s] with long polling and [0, %s] with polling (one whole polling "+
		"cycle, so that blocks fall at every phase of it: the previous job always came right after a poll). "+
		"Latency = the time a consumer on the Job topic (BtcJob) receives the first StratumJob for the mined height + 1, "+
		"minus the time `generate` returned; the block was connected during the generate call, so the latency from the "+
		"connection lies between this value and this value plus the generate time. "+
		"Long poll: gbtmaker with long polling and btcpool's rpcinterval (10 s). Poll: long polling off, rpcinterval 1 s, "+
		"main-loop tick 1 s (gbtmaker's default). Percentiles interpolate between ranks (R-7), so with 50 blocks p99 lies "+
		"between the two largest samples.\n\n", info.MaxPause, info.PollMaxPause)
	b.WriteString(table(results))
	b.WriteString("\n")
	b.WriteString(interpretation(results))
	b.WriteString("\n\n## Machine\n\n```\n")
	b.WriteString(info.Machine)
	b.WriteString("```\n")
	return b.String()
}

// machine returns `lscpu | head -20` and `nproc`, as far as they run here.
func machine() string {
	var b strings.Builder
	if out, err := exec.Command("lscpu").Output(); err == nil {
		lines := strings.SplitAfter(string(out), "\n")
		b.WriteString(strings.Join(lines[:min(20, len(lines))], ""))
	} else {
		fmt.Fprintf(&b, "lscpu: %v\n", err)
	}
	if out, err := exec.Command("nproc").Output(); err == nil {
		b.WriteString("nproc: " + string(bytes.TrimSpace(out)) + "\n")
	} else {
		fmt.Fprintf(&b, "nproc: %v (runtime.NumCPU %d)\n", err, runtime.NumCPU())
	}
	return b.String()
}
