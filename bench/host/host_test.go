package host

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestHost(t *testing.T) {
	if _, err := os.Stat("/proc/loadavg"); err == nil {
		if f := strings.Fields(LoadAvg()); len(f) != 3 {
			t.Errorf("LoadAvg = %q, want three numbers", LoadAvg())
		}
	}
	if CPUModel() == "" {
		t.Error("CPUModel is empty")
	}
	if n := Nproc(); n < 1 || n > runtime.NumCPU() {
		t.Errorf("Nproc = %d (NumCPU %d)", n, runtime.NumCPU())
	}
	if got := CPUFeatures("no_such_flag_here"); len(got) != 0 {
		t.Errorf("CPUFeatures of an absent flag = %v", got)
	}
	if runtime.GOARCH == "amd64" && runtime.GOOS == "linux" {
		if got := CPUFeatures("sse2", "no_such_flag"); len(got) != 1 || got[0] != "sse2" {
			t.Errorf("CPUFeatures(sse2, no_such_flag) = %v, want [sse2]", got)
		}
	}
}
