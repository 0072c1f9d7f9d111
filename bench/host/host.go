// Package host describes the machine a benchmark runs on, for the reports under bench/: the
// load average, the CPU model and features, the CPU count. Every benchmark report of the
// suite states them, because the machines are shared and noisy.
//
// It must never fail a benchmark: what cannot be read is reported as "unknown" or a fallback.
package host

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// LoadAvg returns the 1, 5 and 15 minute load averages ("0.12 0.14 0.22"), or "unknown".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// cpuinfo returns the first value of each key of /proc/cpuinfo in keys.
func cpuinfo(keys ...string) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		for _, want := range keys {
			if _, seen := out[k]; k == want && !seen {
				out[k] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// CPUModel returns the CPU's model name, or the architecture when it cannot be read.
func CPUModel() string {
	if m := cpuinfo("model name")["model name"]; m != "" {
		return m
	}
	return runtime.GOARCH
}

// CPUFeatures returns those of names (e.g. "sha_ni", "avx2") the CPU has, in the order given.
func CPUFeatures(names ...string) []string {
	flags := " " + cpuinfo("flags")["flags"] + " "
	var has []string
	for _, f := range names {
		if strings.Contains(flags, " "+f+" ") {
			has = append(has, f)
		}
	}
	return has
}

// Nproc returns the CPUs this process may use as `nproc` says, or runtime.NumCPU.
func Nproc() int {
	if out, err := exec.Command("nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			return n
		}
	}
	return runtime.NumCPU()
}
