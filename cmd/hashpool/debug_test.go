package main

import (
	"strings"
	"testing"
)

func TestDebugAndRuntimeKeysValidated(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{{":6060", "127.0.0.1:6060"}, {"127.0.0.1:0", "127.0.0.1:0"}, {"0.0.0.0:6060", "0.0.0.0:6060"}} {
		got, err := DebugConfig{PprofListen: tc.listen}.pprofAddr()
		if err != nil || got != tc.want {
			t.Errorf("pprofAddr(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
	cfg := defaultConfig()
	if cfg.Debug.PprofListen != "" {
		t.Fatalf("pprof is on by default: %q", cfg.Debug.PprofListen)
	}
	cfg.Debug.PprofListen = "6060"
	cfg.Runtime.MemoryLimitMiB = -1
	err := cfg.validate()
	if err == nil || !strings.Contains(err.Error(), "debug.pprof_listen") || !strings.Contains(err.Error(), "runtime.memory_limit_mib") {
		t.Fatalf("validate = %v; want both keys reported", err)
	}
}
