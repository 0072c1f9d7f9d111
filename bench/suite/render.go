package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/hashpool/hashpool/bench/scenarios"
)

// target is one line of the targets table.
type target struct {
	what, measured, goal, verdict string
}

func ok(pass bool) string {
	if pass {
		return "met"
	}
	return "**missed**"
}

func render(started time.Time, load string, cmds []string, all []*result, texts []textSection, results []*scenarios.Result, scen []scenario, count int) []byte {
	var b bytes.Buffer
	uname, _ := exec.Command("uname", "-sr").Output()
	goVer, _ := exec.Command("go", "version").Output()
	fmt.Fprintf(&b, "# hashpool benchmark results\n\n")
	fmt.Fprintf(&b, "Written by `make bench` (`go run ./bench/suite`) between the `bench/suite` markers, which a rerun replaces;\n")
	fmt.Fprintf(&b, "sections outside the markers are written by hand (measurements `make bench` does not run) and kept as they are.\n\n")
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| date | %s |\n| machine | %s, %d cores |\n| kernel | %s |\n| go | %s |\n| load average at start | %s |\n| runs per benchmark | %d (median shown) |\n\n",
		started.Format(time.RFC3339), cpuModel(), runtime.NumCPU(), strings.TrimSpace(string(uname)), strings.TrimSpace(string(goVer)), load, count)
	fmt.Fprintf(&b, "The machine is shared and noisy: absolute numbers move 2–4× between runs, so targets are judged\n")
	fmt.Fprintf(&b, "on ratios of numbers measured in the same run wherever a ratio exists.\n\n")

	fmt.Fprintf(&b, "## Targets\n\n| what | measured | target | |\n|---|---|---|---|\n")
	for _, t := range targets(all) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.what, t.measured, t.goal, t.verdict)
	}
	for _, r := range results {
		if r.Error != "" {
			fmt.Fprintf(&b, "| %s | failed: %s | | **missed** |\n", r.Name, strings.ReplaceAll(r.Error, "|", "/"))
		}
		for _, t := range r.Targets {
			v := t.Verdict
			if v == "missed" {
				v = "**missed**"
			}
			fmt.Fprintf(&b, "| %s: %s | %s | %s | %s |\n", r.Name, t.What, t.Measured, t.Goal, v)
		}
	}

	fmt.Fprintf(&b, "\n## All micro benchmarks\n\n| package | benchmark | ns/op | B/op | allocs/op | other |\n|---|---|---:|---:|---:|---|\n")
	for _, r := range all {
		var extra []string
		keys := make([]string, 0, len(r.extra))
		for k := range r.extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			extra = append(extra, fmt.Sprintf("%.4g %s", r.extra[k], k))
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.0f | %.0f | %s |\n", strings.Trim(r.pkg, "./"), r.name, r.nsPerOp, r.bPerOp, r.allocsPerOp, strings.Join(extra, ", "))
	}

	for _, t := range texts {
		fmt.Fprintf(&b, "\n## %s\n\n```\n%s\n```\n", t.title, strings.TrimRight(t.body, "\n"))
	}
	if len(results) > 0 {
		fmt.Fprintf(&b, "\n## Load scenarios (bench/scenarios; loadgen reports in bench/out)\n\n")
		for _, r := range results {
			fmt.Fprintf(&b, "### %s\n\n```\n%s```\n\nCommands (started %s):\n\n```\n%s\n```\n\n",
				r.Name, r.Text(), r.Started.Format(time.RFC3339), strings.Join(r.Commands, "\n"))
		}
	}
	if len(scen) > 0 {
		fmt.Fprintf(&b, "\n## Other loadgen reports in bench/out\n\n")
		for _, s := range scen {
			fmt.Fprintf(&b, "### %s\n\n```\n%s\n```\n\n", s.file, summarize(s.raw))
		}
	}

	fmt.Fprintf(&b, "\n## Commands\n\n```\n%s\n```\n", strings.Join(cmds, "\n"))
	return b.Bytes()
}

// summarize prints a scenario report's top-level numbers.
func summarize(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		switch v := m[k].(type) {
		case map[string]any, []any:
			continue
		default:
			lines = append(lines, fmt.Sprintf("%-28s %v", k, v))
		}
	}
	return strings.Join(lines, "\n")
}

func targets(all []*result) []target {
	var out []target
	add := func(t target) { out = append(out, t) }
	block := find(all, "BenchmarkSHA256Block")
	var perBlock float64
	if block != nil && block.nsPerOp > 0 {
		perBlock = block.nsPerOp / 1024 // 64 KiB = 1024 blocks of 64 bytes
		add(target{"SHA-256, one 64-byte block (64 KiB buffer)", fmt.Sprintf("%.1f ns", perBlock), "≈ 36 ns (hardware floor)", "reference"})
	}
	for _, n := range []string{"BenchmarkShareHash/branch=0", "BenchmarkShareHash/branch=12"} {
		r := find(all, n)
		if r == nil || perBlock == 0 {
			continue
		}
		// The work of one share: a 181-byte test coinbase after the job's midstate is 2 blocks + 1 for
		// the second hash; each merkle step 2 + 1; the header 2 + 1.
		steps := 0
		if strings.HasSuffix(n, "12") {
			steps = 12
		}
		compressions := 3 + 3*steps + 3
		units := r.nsPerOp / perBlock
		add(target{n + " (ns/op in SHA-256 blocks)", fmt.Sprintf("%.0f ns = %.1f blocks, %.0f allocs", r.nsPerOp, units, r.allocsPerOp),
			fmt.Sprintf("0 allocs; ≤ 1.5× the %d compressions it must do", compressions), ok(r.allocsPerOp == 0 && units <= 1.5*float64(compressions))})
	}
	if r := find(all, "BenchmarkDoubleSHA256/80B"); r != nil && perBlock > 0 {
		add(target{"double SHA-256 of an 80-byte header", fmt.Sprintf("%.0f ns = %.1f blocks", r.nsPerOp, r.nsPerOp/perBlock), "0 allocs (3 compressions)", ok(r.allocsPerOp == 0)})
	}
	scan, js, fj := find(all, "BenchmarkParseSubmit/scanner"), find(all, "BenchmarkParseSubmit/encoding_json"), find(all, "BenchmarkParseSubmit/fastjson")
	if scan != nil {
		m := fmt.Sprintf("%.0f ns, %.0f allocs", scan.nsPerOp, scan.allocsPerOp)
		if js != nil {
			m += fmt.Sprintf("; encoding/json %.1f× slower", js.nsPerOp/scan.nsPerOp)
		}
		if fj != nil {
			m += fmt.Sprintf("; fastjson %.1f× slower", fj.nsPerOp/scan.nsPerOp)
		}
		add(target{"parse one mining.submit line", m, "0 allocs; faster than fastjson and encoding/json", ok(scan.allocsPerOp == 0 && (fj == nil || fj.nsPerOp > scan.nsPerOp))})
	}
	for _, n := range []string{"BenchmarkAppendNotify", "BenchmarkAgentSubmitDecode", "BenchmarkShareRecordEncode", "BenchmarkSubmitPath"} {
		if r := find(all, n); r != nil {
			add(target{n, fmt.Sprintf("%.0f ns, %.0f allocs", r.nsPerOp, r.allocsPerOp), "0 allocs/op", ok(r.allocsPerOp == 0)})
		}
	}
	if r := find(all, "BenchmarkSessionMemory"); r != nil {
		if v, found := r.extra["rss-B/session"]; found {
			add(target{"RSS per authorized idle stratum session (15,000 in one process)", fmt.Sprintf("%.0f B", v),
				"< 2 KB (btcpool measured ≈ 10.6 KB)", ok(v < 2048)})
		}
	}
	if r := find(all, "BenchmarkBroadcast/sessions=10000"); r != nil {
		add(target{"notify fan-out to 10,000 loopback sessions", fmt.Sprintf("%.0f ms", r.nsPerOp/1e6),
			"every session has the notify; about one write syscall per session", "reference"})
	}
	return out
}
