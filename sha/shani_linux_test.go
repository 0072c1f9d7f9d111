//go:build linux && amd64 && !purego

package sha

import (
	"os"
	"strings"
	"testing"
)

// TestSHANIDetection checks that the kernel is used wherever the CPU has it:
// on Linux the kernel's own flags (/proc/cpuinfo) must agree with our CPUID
// check, so a broken detection cannot silently fall back to the slower path
// with only a log line.
func TestSHANIDetection(t *testing.T) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip(err)
	}
	var flags []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags = strings.Fields(v)
			break
		}
	}
	has := map[string]bool{}
	for _, f := range flags {
		has[f] = true
	}
	cpuHas := has["sha_ni"] && has["ssse3"] && has["sse4_1"]
	if cpuHas != useSHANI {
		t.Fatalf("/proc/cpuinfo says sha_ni+ssse3+sse4_1 = %v, but the SHA-NI kernel selected = %v", cpuHas, useSHANI)
	}
	if !cpuHas {
		t.Log("this CPU has no SHA-NI: the share path runs on crypto/sha256 (slower); the kernel's own tests are skipped")
	}
}
