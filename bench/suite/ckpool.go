package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/hashpool/hashpool/bench/ckpool"
	"github.com/hashpool/hashpool/bench/scenarios"
)

// ckpoolCompare is the -scenarios name of the ckpool side-by-side run.
const ckpoolCompare = "ckpool-compare"

// selection is what -scenarios and -ckpool-scenarios asked for.
type selection struct {
	all             bool     // everything: micro benchmarks, comparisons, every default scenario
	partial         bool     // a list: only the named scenarios
	only            []string // bench/scenarios names of a partial run
	ckpool          bool     // run ckpool-compare
	ckpoolScenarios []string
}

// parseSelection reads -scenarios ("all", "none"/"false", or a list of
// bench/scenarios names and ckpool-compare) and -ckpool-scenarios, and
// reports every unknown name at once.
func parseSelection(list, ckList string) (selection, error) {
	var sel selection
	var errs []error
	ck, err := ckpool.ParseScenarios(ckList)
	if err != nil {
		errs = append(errs, fmt.Errorf("-ckpool-scenarios: %w", err))
	}
	sel.ckpoolScenarios = ck
	switch l := strings.TrimSpace(list); l {
	case "all", "true", "":
		sel.all, sel.ckpool = true, true
	case "none", "false":
	default:
		sel.partial = true
		for _, n := range strings.Split(l, ",") {
			n = strings.TrimSpace(n)
			switch {
			case n == ckpoolCompare:
				sel.ckpool = true
			case slices.Contains(scenarios.Names(), n):
				if !slices.Contains(sel.only, n) {
					sel.only = append(sel.only, n)
				}
			default:
				errs = append(errs, fmt.Errorf("-scenarios: unknown %q (have all, none, %s, %s)", n, strings.Join(scenarios.Names(), ", "), ckpoolCompare))
			}
		}
	}
	return sel, errors.Join(errs...)
}

// runCkpool runs the comparison and writes bench/out/ckpool-compare.{md,json};
// it returns the RESULTS.md section and the command line to record.
func runCkpool(names []string, quick bool, invocation string) ([]byte, string, error) {
	cmd := invocation
	if quick {
		cmd += " -quick"
	}
	if len(names) != len(ckpool.Names()) {
		cmd += " -ckpool-scenarios " + strings.Join(names, ",")
	}
	src := os.Getenv("CKPOOL_SRC")
	if src == "" {
		src = "<unset>"
	}
	cmd = "CKPOOL_SRC=" + src + " " + cmd
	fmt.Fprintf(os.Stderr, "suite: %s\n", cmd)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, _ := os.Getwd()
	rep, err := ckpool.Compare(ctx, ckpool.Options{Root: root, Scenarios: names, Quick: quick, Log: os.Stderr})
	if rep == nil {
		return nil, cmd, err
	}
	sec := rep.Markdown(cmd + "   (build ckpool first: CKPOOL_GIT=<ckpool git dir> CKPOOL_SRC=<dir> bench/ckpool/build.sh)")
	if mkErr := os.MkdirAll("bench/out", 0o755); mkErr == nil {
		os.WriteFile(filepath.Join("bench/out", "ckpool-compare.md"), sec, 0o644)
		if b, jerr := json.MarshalIndent(rep, "", "  "); jerr == nil {
			os.WriteFile(filepath.Join("bench/out", "ckpool-compare.json"), b, 0o644)
		}
	}
	return sec, cmd, err
}

// runPartial runs only the named scenarios; the ckpool section of out is
// replaced (the rest of the file is kept), other scenarios' results land
// in bench/out for the next full run to render. It returns the exit code.
func runPartial(sel selection, out string, quick bool) int {
	code := 0
	if len(sel.only) > 0 {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		_, err := scenarios.Run(ctx, scenarios.Config{Root: ".", OutDir: "bench/out", Quick: quick, Only: sel.only, Log: os.Stderr})
		stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite: scenarios: %v\n", err)
			code = 1
		}
		fmt.Fprintf(os.Stderr, "suite: results of %s are in bench/out (a full run renders them into %s)\n", strings.Join(sel.only, ", "), out)
	}
	if sel.ckpool {
		sec, _, err := runCkpool(sel.ckpoolScenarios, quick, "go run ./bench/suite -scenarios "+ckpoolCompare)
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite: ckpool-compare: %v\n", err)
			code = 1
		}
		if sec != nil {
			if err := updateResults(out, nil, sec); err != nil {
				fmt.Fprintln(os.Stderr, "suite:", err)
				return 1
			}
			fmt.Fprintf(os.Stderr, "suite: wrote the ckpool section of %s\n", out)
		}
	}
	return code
}
