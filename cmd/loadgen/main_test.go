package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
	"github.com/hashpool/hashpool/loadgen"
)

// TestMain lets the test binary serve as loadgen's child process.
func TestMain(m *testing.M) {
	if os.Getenv(loadgen.ChildEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func startEngine(t *testing.T) string {
	t.Helper()
	e := enginetest.Start(t, func(o *engine.Options) {
		o.EventLoops, o.MiningNotifyPeriod = 2, 1
		o.VersionMask = 0 // the engine's default: no version rolling offered
	})
	e.AddJob(false)
	return e.Addr
}

func TestCommandTwoProcesses(t *testing.T) {
	addr := startEngine(t)
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", addr, "-miners", "6", "-agents", "2", "-miners-per-agent", "5", "-rate", "2",
		"-duration", "2s", "-procs", "2", "-source-ips", "127.0.0.2-127.0.0.3", "-version-rolling",
		"-pid", "0", "-json", out}, nil, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadgen.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Procs != 2 || rep.Mode != "grind" || rep.Sessions.Ever != 8 || rep.Shares.Accepted == 0 || len(rep.Shares.Rejected) != 0 {
		t.Errorf("report: procs %d mode %s sessions %+v accepted %d rejected %v", rep.Procs, rep.Mode, rep.Sessions, rep.Shares.Accepted, rep.Shares.Rejected)
	}
	if !strings.Contains(stdout.String(), "submit latency") || !strings.Contains(stderr.String(), "loadgen ") {
		t.Error("want the table on stdout and progress lines on stderr")
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-url", "10.1.2.3:3333"}, "outside 127.0.0.0/8"},
		{[]string{"-url", "example.com:3333"}, "give an IP address"},
		{[]string{"-version-mask", "xyz"}, "-version-mask"},
		{[]string{"-miners", "0"}, "nothing to run"},
		{[]string{"-duration", "0s"}, "duration"},
		{[]string{"-source-ips", "10.0.0.1-10.0.0.5"}, "source ip"},
		{[]string{"-agents", "1", "-miners-per-agent", "70000"}, "miners per agent"},
		{[]string{"-procs", "1", "-miners", "20000"}, "one process"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-low-difficulty", "-simulator-mode"}, "exclude each other"},
		{[]string{"-submit-delay", "1m", "-duration", "30s"}, "submit delay"},
	} {
		var stderr bytes.Buffer
		if code := run(tc.args, nil, &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
