package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/hashpool/hashpool/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, jsonPath, child, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	if child {
		if err := loadgen.RunChild(ctx, stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "loadgen child:", err)
			return 1
		}
		return 0
	}
	rep, err := loadgen.Run(ctx, s)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	if jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(jsonPath, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "loadgen: -json:", err)
			return 1
		}
	}
	return 0
}

// parseFlags maps the command line to a Scenario.
func parseFlags(args []string, stderr io.Writer) (s loadgen.Scenario, jsonPath string, child bool, err error) {
	s = loadgen.DefaultScenario()
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sourceIPs, versionMask string
	fs.StringVar(&s.URL, "url", s.URL, "stratum server host:port (127.0.0.0/8 only unless -allow-remote)")
	fs.BoolVar(&s.AllowRemote, "allow-remote", false, "allow a target outside 127.0.0.0/8")
	fs.IntVar(&s.Miners, "miners", s.Miners, "stratum miners (one connection each)")
	fs.IntVar(&s.Agents, "agents", 0, "agent connections (BtcAgent protocol)")
	fs.IntVar(&s.MinersPerAgent, "miners-per-agent", s.MinersPerAgent, "miners behind each agent connection (1..65535)")
	fs.IntVar(&s.BadClients, "bad-clients", 0, "clients that send bad input and check the errors")
	fs.Float64Var(&s.Rate, "rate", s.Rate, "shares per second per miner (0.1 = one per 10 s)")
	fs.Float64Var(&s.ConnectRate, "connect-rate", s.ConnectRate, "new connections per second per process (0: no limit)")
	fs.Float64Var(&s.RegisterRate, "register-rate", 0, "REGISTER_WORKER frames per second per agent (0: all at once)")
	fs.DurationVar(&s.Duration, "duration", s.Duration, "how long to run (at most 24h)")
	fs.DurationVar(&s.Churn, "churn", 0, "stratum miners reconnect after about this long (0: never)")
	fs.StringVar(&s.User, "user", s.User, "sub-account; workers are <user>.m<n>")
	fs.StringVar(&s.Password, "password", s.Password, "mining.authorize password")
	fs.BoolVar(&s.VersionRolling, "version-rolling", false, "negotiate BIP310 version rolling and roll version bits")
	fs.StringVar(&versionMask, "version-mask", fmt.Sprintf("%08x", s.VersionMask), "version mask asked for (hex)")
	fs.BoolVar(&s.SimulatorMode, "simulator-mode", false, "submit without grinding (the server must run in simulator mode)")
	fs.BoolVar(&s.LowDifficulty, "low-difficulty", false, "submit shares that miss their target (rejected as low difficulty, never a block): a fixed submit rate without grinding")
	fs.DurationVar(&s.SubmitDelay, "submit-delay", 0, "hold submits until this long after the start (connect first, then submit)")
	fs.StringVar(&s.SV2, "sv2", "", "Stratum V2 miners: standard or extended channels (empty: Stratum V1)")
	fs.StringVar(&s.AuthorityKey, "authority-key", "", "the SV2 pool's authority public key (base58): its certificate must be signed by it")
	fs.Uint64Var(&s.MaxGrindHashes, "max-grind-hashes", s.MaxGrindHashes, "nonces tried per share before giving up")
	fs.StringVar(&sourceIPs, "source-ips", "", "local addresses to dial from, e.g. 127.0.0.2-127.0.0.20")
	fs.IntVar(&s.Procs, "procs", 0, "processes to spread connections over (0: one per 18,000 connections)")
	fs.IntVar(&s.PID, "pid", 0, "server pid whose RSS and CPU are sampled from /proc")
	fs.DurationVar(&s.ResponseTimeout, "response-timeout", s.ResponseTimeout, "wait for handshake replies")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress line")
	fs.BoolVar(&child, "child", false, "internal: run as a child process (scenario on stdin)")
	if err = fs.Parse(args); err != nil {
		return s, "", false, err
	}
	if fs.NArg() > 0 {
		return s, "", false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if child {
		return s, "", true, nil
	}
	m, perr := strconv.ParseUint(versionMask, 16, 32)
	if perr != nil {
		return s, "", false, fmt.Errorf("-version-mask %q: want 8 hex digits", versionMask)
	}
	s.VersionMask = uint32(m)
	if sourceIPs != "" {
		s.SourceIPs = []string{sourceIPs}
	}
	if !*quiet {
		s.Progress = stderr
	}
	exe, err := os.Executable()
	if err != nil {
		return s, "", false, err
	}
	s.Executable = exe
	return s, jsonPath, false, s.Validate()
}
