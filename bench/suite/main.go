// Command suite runs hashpool's benchmark suite and writes bench/RESULTS.md: the machine, the
// exact commands, the numbers (median of -count runs) and each number's ratio to its target.
//
//	go run ./bench/suite              # what `make bench` runs
//	go run ./bench/suite -count 1 -out /tmp/r.md
//	go run ./bench/suite -scenarios ckpool-compare -quick   # only the ckpool table, a few minutes
//
// Micro benchmarks come from `go test -bench`; load scenarios from bench/scenarios (run unless
// -scenarios=none, smaller with -quick), whose results and loadgen JSON reports land in bench/out;
// ckpool-compare (bench/ckpool) runs ckpool and `hashpool run` side by side on one btcd regtest
// node (ckpool from $CKPOOL_SRC or $CKPOOL_BIN; without it, hashpool alone and the report says so).
// Only the parts of -out between the suite's markers are rewritten (see results.go); sections
// written by hand outside them are kept. -scenarios with a list of names runs only those and
// replaces only the ckpool section of -out;
// any other loadgen report found there (bench/out/*.json) is summarised too. The machines we run on are shared and noisy, so every
// comparison is a ratio of numbers measured in the same run.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashpool/hashpool/bench/ckpool"
	"github.com/hashpool/hashpool/bench/host"
	"github.com/hashpool/hashpool/bench/scenarios"
)

// group is one `go test -bench` invocation.
type group struct {
	pkg       string
	regex     string
	benchtime string // "" = the -benchtime flag
	count     int    // 0 = the -count flag
}

var groups = []group{
	{pkg: "./sha/", regex: `^(BenchmarkDoubleSHA256|BenchmarkShareHash|BenchmarkSHA256Block)$`},
	{pkg: "./codec/stratum/", regex: `^(BenchmarkParseSubmit|BenchmarkAppendNotify)$`},
	{pkg: "./codec/agent/", regex: `^BenchmarkAgentSubmitDecode$`},
	{pkg: "./codec/btcpool/", regex: `^BenchmarkShareRecordEncode$`},
	{pkg: "./engine/", regex: `^(BenchmarkSubmitPath|BenchmarkBroadcast)$`},
	{pkg: "./bus/mem/", regex: `^(BenchmarkPublish|BenchmarkLatency)$`},
	// 15,000 authorized sessions held by one process: one iteration is the measurement.
	{pkg: "./engine/", regex: `^BenchmarkSessionMemory$`, benchtime: "1x", count: 1},
}

// result is the median of one benchmark's runs.
type result struct {
	name            string
	nsPerOp, bPerOp float64
	allocsPerOp     float64
	extra           map[string]float64 // custom metrics (b.ReportMetric)
	runs            int
	pkg             string
}

func main() {
	out := flag.String("out", "bench/RESULTS.md", "Markdown file to write")
	count := flag.Int("count", 3, "runs of each benchmark (the median is reported)")
	benchtime := flag.String("benchtime", "", "go test -benchtime (default: go's)")
	compare := flag.Bool("compare", true, "run the engine vs goroutine-per-connection comparison (10k sessions, ~1 min)")
	chain := flag.Bool("chain", true, "measure new block → job latency on a regtest btcd (bench/chainlatency, ~4 min)")
	scenFlag := flag.String("scenarios", "all", "all (everything), none, or a comma-separated list of "+strings.Join(append(scenarios.Names(), ckpoolCompare), ", ")+" (a list runs only those, no micro benchmarks)")
	ckScen := flag.String("ckpool-scenarios", "all", "ckpool-compare's scenarios: all or a list of "+strings.Join(ckpool.Names(), ", "))
	quick := flag.Bool("quick", false, "run the loadgen scenarios about ten times smaller (~2 min) and ckpool-compare in its quick size (~5 min)")
	flag.Parse()
	sel, err := parseSelection(*scenFlag, *ckScen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "suite:", err)
		os.Exit(2)
	}
	if sel.partial {
		os.Exit(runPartial(sel, *out, *quick))
	}
	runScen := &sel.all

	started := time.Now().UTC()
	load := host.LoadAvg()
	var cmds []string
	var all []*result
	for _, g := range groups {
		n, bt := *count, *benchtime
		if g.count > 0 {
			n = g.count
		}
		if g.benchtime != "" {
			bt = g.benchtime
		}
		args := []string{"test", "-run", "^$", "-bench", g.regex, "-benchmem", "-count", strconv.Itoa(n)}
		if bt != "" {
			args = append(args, "-benchtime", bt)
		}
		args = append(args, g.pkg)
		cmds = append(cmds, "go "+strings.Join(args, " "))
		fmt.Fprintf(os.Stderr, "suite: go %s\n", strings.Join(args, " "))
		cmd := exec.Command("go", args...)
		cmd.Stderr = os.Stderr
		b, err := cmd.Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite: %s failed: %v\n%s\n", g.pkg, err, b)
			os.Exit(1)
		}
		all = append(all, parse(b, g.pkg)...)
	}
	var texts []textSection
	if *compare {
		os.MkdirAll("bench/out", 0o755)
		c := "HASHPOOL_BENCH=1 HASHPOOL_BENCH_OUT=bench/out/compare.txt go test -count=1 -run TestCompareEngine -timeout 15m ./bench/baseline/"
		cmds = append(cmds, c)
		fmt.Fprintf(os.Stderr, "suite: %s\n", c)
		cmd := exec.Command("go", "test", "-count=1", "-run", "TestCompareEngine", "-timeout", "15m", "./bench/baseline/")
		abs, _ := filepath.Abs("bench/out/compare.txt")
		cmd.Env = append(os.Environ(), "HASHPOOL_BENCH=1", "HASHPOOL_BENCH_OUT="+abs)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "suite: comparison failed: %v\n", err)
			os.Exit(1)
		}
		if b, err := os.ReadFile(abs); err == nil {
			texts = append(texts, textSection{"Engine vs a goroutine-per-connection server (same run)", string(b)})
		}
	}
	if *chain {
		os.MkdirAll("bench/out", 0o755)
		c := "go run ./bench/chainlatency -out bench/out/chainlatency.txt"
		cmds = append(cmds, c)
		fmt.Fprintf(os.Stderr, "suite: %s\n", c)
		cmd := exec.Command("go", "run", "./bench/chainlatency", "-out", "bench/out/chainlatency.txt")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "suite: chain latency failed: %v\n", err)
			os.Exit(1)
		}
		if b, err := os.ReadFile("bench/out/chainlatency.txt"); err == nil {
			texts = append(texts, textSection{"New block on the node → StratumJob on the bus", string(b)})
		}
	}
	var ckSection []byte
	if sel.ckpool {
		sec, c, err := runCkpool(sel.ckpoolScenarios, *quick, "go run ./bench/suite")
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite: ckpool-compare: %v\n", err)
		}
		ckSection = sec
		cmds = append(cmds, c)
	}
	if *runScen {
		c := "go run ./bench/scenarios/cmd/scenarios -out bench/out"
		if *quick {
			c += " -quick"
		}
		cmds = append(cmds, c+"   (run in-process by the suite)")
		fmt.Fprintf(os.Stderr, "suite: %s\n", c)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		_, err := scenarios.Run(ctx, scenarios.Config{Root: ".", OutDir: "bench/out", Quick: *quick, Log: os.Stderr})
		stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite: scenarios: %v\n", err)
			os.Exit(1)
		}
	}
	results, err := scenarios.Load("bench/out")
	if err != nil {
		fmt.Fprintf(os.Stderr, "suite: %v\n", err)
	}
	results = addRecorded(results, recordedAgentFarm)
	var others []scenario
	for _, s := range loadScenarios("bench/out") {
		if !scenarios.Owned(results, filepath.Base(s.file)) {
			others = append(others, s)
		}
	}
	md := render(started, load, cmds, all, texts, results, others, *count)
	if err := updateResults(*out, md, ckSection); err != nil {
		fmt.Fprintln(os.Stderr, "suite:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "suite: wrote %s\n", *out)
}

// parse reads `go test -bench` output and returns the median of each benchmark's runs.
func parse(out []byte, pkg string) []*result {
	runs := map[string][]map[string]float64{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // drop the GOMAXPROCS suffix
			}
		}
		vals := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				vals[f[i+1]] = v
			}
		}
		if _, ok := runs[name]; !ok {
			order = append(order, name)
		}
		runs[name] = append(runs[name], vals)
	}
	var res []*result
	for _, name := range order {
		r := &result{name: name, runs: len(runs[name]), pkg: pkg, extra: map[string]float64{}}
		keys := map[string]bool{}
		for _, v := range runs[name] {
			for k := range v {
				keys[k] = true
			}
		}
		for k := range keys {
			var xs []float64
			for _, v := range runs[name] {
				if x, ok := v[k]; ok {
					xs = append(xs, x)
				}
			}
			m := median(xs)
			switch k {
			case "ns/op":
				r.nsPerOp = m
			case "B/op":
				r.bPerOp = m
			case "allocs/op":
				r.allocsPerOp = m
			default:
				r.extra[k] = m
			}
		}
		res = append(res, r)
	}
	return res
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func find(all []*result, name string) *result {
	for _, r := range all {
		if r.name == name {
			return r
		}
	}
	return nil
}

// cpuModel is the CPU's model and the features the share path uses.
func cpuModel() string {
	return fmt.Sprintf("%s (%s)", host.CPUModel(), strings.Join(host.CPUFeatures("sha_ni", "avx2", "avx512f"), ", "))
}

// textSection is a report included verbatim.
type textSection struct{ title, body string }

// scenario is the part of a loadgen JSON report the suite shows.
type scenario struct {
	file string
	raw  map[string]any
}

func loadScenarios(dir string) []scenario {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	sort.Strings(files)
	var out []scenario
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			out = append(out, scenario{file: f, raw: m})
		}
	}
	return out
}

// recordedAgentFarm is the committed full run of the opt-in agent-farm-10k
// scenario (23 minutes, so `make bench` does not rerun it).
const recordedAgentFarm = "bench/scenarios/agent-farm-10k.result.json"

// addRecorded appends the recorded agent-farm-10k run when bench/out has
// none of its own, so RESULTS.md always carries the agent's figures.
func addRecorded(results []*scenarios.Result, path string) []*scenarios.Result {
	for _, r := range results {
		if r.Name == "agent-farm-10k" {
			return results
		}
	}
	r, err := scenarios.LoadFile(path)
	if err != nil {
		if !os.IsNotExist(err) {
			fmt.Fprintf(os.Stderr, "suite: %v\n", err)
		}
		return results
	}
	r.Notes = append(r.Notes, "recorded run ("+path+", bench/scenarios/RESULTS-agent.txt), not rerun by make bench: go run ./bench/scenarios/cmd/scenarios -only agent-farm-10k")
	return append(results, r)
}
