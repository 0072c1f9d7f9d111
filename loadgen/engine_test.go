package loadgen

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
)

// TestMain lets the test binary act as a loadgen child process.
func TestMain(m *testing.M) {
	if os.Getenv(ChildEnv) == "1" {
		if err := RunChild(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startEngine runs a real engine on 127.0.0.1 with one job published.
func startEngine(t *testing.T, tweak func(*engine.Options)) *enginetest.Engine {
	t.Helper()
	p := enginetest.Start(t, func(o *engine.Options) {
		o.EventLoops = 2
		// Re-send the job every second: agent miners may submit only after
		// the first notify that follows their registration.
		o.MiningNotifyPeriod = 1
		if tweak != nil {
			tweak(o)
		}
	})
	p.AddJob(false)
	return p
}

func testScenario(p *enginetest.Engine) Scenario {
	s := DefaultScenario()
	s.URL = p.Addr
	s.Miners = 0
	s.Duration = 2 * time.Second
	s.ResponseTimeout = 5 * time.Second
	s.MaxGrindHashes = 1 << 24
	return s
}

func run(t *testing.T, s Scenario) *Report {
	t.Helper()
	rep, err := Run(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", b.String())
	return rep
}

// totalRejects sums rejects.
func totalRejects(r *Report) int64 {
	var n int64
	for _, c := range r.Shares.Rejected {
		n += c
	}
	return n
}

func TestMinersGrindRealShares(t *testing.T) {
	p := startEngine(t, nil)
	s := testScenario(p)
	s.Miners = 20
	s.Rate = 4
	s.VersionRolling = true
	s.SourceIPs = []string{"127.0.0.2-127.0.0.5"}
	s.PID = os.Getpid() // the engine runs in this process
	// A new clean job at the next height (a new block), as the jobmaker
	// would on regtest: mainnet-like bits so no share solves a block.
	s.Publish = func(ctx context.Context, n int) error { _, err := p.Publish(false); return err }
	s.PublishEvery = 500 * time.Millisecond
	rep := run(t, s)

	if rep.Mode != "grind" {
		t.Errorf("mode %q, want grind", rep.Mode)
	}
	if rep.Sessions.Ever != 20 || rep.Sessions.Up != 20 || rep.Sessions.HandshakeFails != 0 || rep.Sessions.DialFails != 0 {
		t.Errorf("sessions %+v, want 20 up without failures", rep.Sessions)
	}
	if rep.Shares.Accepted < 20 {
		t.Errorf("accepted %d shares, want at least 20 (one per miner)", rep.Shares.Accepted)
	}
	// Shares submitted just before a new block may come back stale (21);
	// nothing else may be rejected.
	for k, n := range rep.Shares.Rejected {
		if !strings.HasPrefix(k, "21 ") {
			t.Errorf("rejected %d shares as %s", n, k)
		}
	}
	if got := rep.Shares.Accepted + totalRejects(rep) + rep.Shares.Unanswered; got != rep.Shares.Submitted {
		t.Errorf("accepted+rejected+unanswered = %d, submitted %d", got, rep.Shares.Submitted)
	}
	if got := p.Server.Metrics().SharesAccepted.Load(); got != rep.Shares.Accepted {
		t.Errorf("engine counted %d accepted shares, loadgen %d", got, rep.Shares.Accepted)
	}
	if rep.Shares.Latency.Count != uint64(rep.Shares.Accepted+totalRejects(rep)) {
		t.Errorf("latency samples %d, answers %d", rep.Shares.Latency.Count, rep.Shares.Accepted+totalRejects(rep))
	}
	if rep.Shares.Hashes == 0 {
		t.Error("no hashes counted in grind mode")
	}
	if rep.Fanout.Published == 0 || rep.Fanout.MaxReceipts != 20 || rep.Fanout.Receipt.Count == 0 {
		t.Errorf("fan-out %+v: want published jobs received by all 20 miners", rep.Fanout)
	}
	if rep.Net.Conns != 20 || rep.Net.TxBytes == 0 || rep.Net.RxBytes == 0 || rep.Net.TxSegs == 0 || rep.Net.RxSegs == 0 {
		t.Errorf("net %+v: want TCP_INFO of 20 connections", rep.Net)
	}
	if rep.Net.TxWireBytes != rep.Net.TxBytes+HeaderBytesPerSegment*rep.Net.TxSegs {
		t.Errorf("wire estimate %d", rep.Net.TxWireBytes)
	}
	if rep.Server == nil || rep.Server.Samples < 2 || rep.Server.RSSMaxKB == 0 || rep.Server.Error != "" {
		t.Errorf("server stats %+v", rep.Server)
	}
	if rep.ErrorCount != 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
}

func TestAgentFarmSubmitResponses(t *testing.T) {
	p := startEngine(t, nil)
	s := testScenario(p)
	s.Agents = 2
	s.MinersPerAgent = 50
	s.Rate = 1
	s.VersionRolling = true
	rep := run(t, s)

	if rep.Sessions.Ever != 2 || rep.Sessions.WorkersEver != 100 || rep.Sessions.WorkersUp != 100 {
		t.Errorf("sessions %+v, want 2 agents with 100 miners", rep.Sessions)
	}
	if rep.Shares.Accepted < 50 || totalRejects(rep) != 0 {
		t.Errorf("accepted %d, rejected %v: want ≥ 50 accepted SUBMIT_RESPONSEs and no rejects", rep.Shares.Accepted, rep.Shares.Rejected)
	}
	if got := p.Server.Metrics().SharesAccepted.Load(); got != rep.Shares.Accepted {
		t.Errorf("engine counted %d accepted shares, loadgen %d", got, rep.Shares.Accepted)
	}
	if rep.Shares.AgentSetDiff == 0 {
		t.Error("no MINING_SET_DIFF frame seen")
	}
	if rep.ErrorCount != 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
}

func TestBadClientsGetErrors(t *testing.T) {
	p := startEngine(t, nil)
	s := testScenario(p)
	s.BadClients = 2
	s.Miners = 2
	s.Rate = 1
	rep := run(t, s)

	want := []string{"garbage line, then subscribe", "params not an array", "authorize before subscribe",
		"submit before authorize", "unknown method", "empty user name", "oversize line (1 MiB, no newline)",
		"submit with 3 params", "unknown job id", "ntime too old", "version bits outside the server's mask",
		"valid share", "duplicate share"}
	for _, name := range want {
		c := rep.Bad[name]
		if c == nil || c.Pass == 0 || c.Fail != 0 {
			t.Errorf("bad case %q: %+v", name, c)
		}
	}
	// The good miners kept working next to the bad clients.
	if rep.Shares.Accepted == 0 || rep.Sessions.Up != 2 {
		t.Errorf("good miners: %d accepted, %d up", rep.Shares.Accepted, rep.Sessions.Up)
	}
	if rep.ErrorCount != 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
}

func TestSimulatorMode(t *testing.T) {
	// Difficulty 2^20 cannot be ground in a test: only a simulator server
	// accepts these shares, and a normal one rejects them as low difficulty.
	for _, sim := range []bool{true, false} {
		t.Run(fmt.Sprint("server simulator=", sim), func(t *testing.T) {
			p := startEngine(t, func(o *engine.Options) {
				o.MinDifficulty, o.DefaultDifficulty, o.Simulator = 1<<20, 1<<20, sim
			})
			s := testScenario(p)
			s.Miners = 5
			s.Agents = 1
			s.MinersPerAgent = 10
			s.Rate = 2
			s.SimulatorMode = true
			s.Duration = 2 * time.Second
			rep := run(t, s)
			if rep.Mode != "simulator" || rep.Shares.Hashes != 0 {
				t.Errorf("mode %q with %d hashes", rep.Mode, rep.Shares.Hashes)
			}
			if rep.Shares.Submitted < 10 {
				t.Fatalf("submitted %d", rep.Shares.Submitted)
			}
			if sim && (rep.Shares.Accepted == 0 || totalRejects(rep) != 0) {
				t.Errorf("simulator server: accepted %d, rejected %v", rep.Shares.Accepted, rep.Shares.Rejected)
			}
			if !sim && (rep.Shares.Accepted != 0 || rep.Shares.Rejected["23 Low difficulty"] == 0) {
				t.Errorf("normal server: accepted %d, rejected %v", rep.Shares.Accepted, rep.Shares.Rejected)
			}
		})
	}
}

func TestChurnReconnects(t *testing.T) {
	p := startEngine(t, nil)
	s := testScenario(p)
	s.Miners = 10
	s.Rate = 4
	s.Churn = 400 * time.Millisecond
	s.Duration = 2 * time.Second
	rep := run(t, s)
	if rep.Sessions.Reconnects < 10 || rep.Sessions.Ever <= 10 {
		t.Errorf("sessions %+v: want reconnects", rep.Sessions)
	}
	if rep.Shares.Accepted == 0 {
		t.Error("no shares accepted")
	}
	if rep.Net.Conns != rep.Sessions.Dials-rep.Sessions.DialFails {
		t.Errorf("TCP_INFO of %d connections, %d dials, %d failed", rep.Net.Conns, rep.Sessions.Dials, rep.Sessions.DialFails)
	}
}

func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	p := startEngine(t, nil)
	s := testScenario(p)
	s.Miners = 9
	s.Agents = 2
	s.MinersPerAgent = 5
	s.Rate = 2
	s.Procs = 3
	s.Executable = os.Args[0]
	s.SourceIPs = []string{"127.0.0.2-127.0.0.4"}
	rep := run(t, s)
	if rep.Procs != 3 || rep.Sessions.Ever != 11 || rep.Sessions.WorkersEver != 10 {
		t.Errorf("procs %d, sessions %+v", rep.Procs, rep.Sessions)
	}
	if rep.Shares.Accepted == 0 || totalRejects(rep) != 0 {
		t.Errorf("accepted %d, rejected %v", rep.Shares.Accepted, rep.Shares.Rejected)
	}
	if got := p.Server.Metrics().SharesAccepted.Load(); got != rep.Shares.Accepted {
		t.Errorf("engine counted %d accepted shares, merged report %d", got, rep.Shares.Accepted)
	}
	if rep.Net.Conns != 11 || rep.Shares.Latency.Count != uint64(rep.Shares.Accepted+totalRejects(rep)) {
		t.Errorf("net conns %d, latency samples %d", rep.Net.Conns, rep.Shares.Latency.Count)
	}
}

// TestScale is a manual soak: LOADGEN_SCALE=<miners> go test -run TestScale
// ./loadgen (simulator mode, several child processes, one agent farm).
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LOADGEN_SCALE"))
	if n == 0 {
		t.Skip("set LOADGEN_SCALE=<miners> to run")
	}
	p := startEngine(t, func(o *engine.Options) { o.Simulator = true; o.MiningNotifyPeriod = 5 })
	s := testScenario(p)
	s.Miners = n
	s.Agents = 1
	s.MinersPerAgent = 10000
	s.Rate = 0.1
	s.SimulatorMode = true
	s.Duration = 30 * time.Second
	s.Procs = max(2, (n+MaxConnsPerProc-1)/MaxConnsPerProc)
	s.Executable = os.Args[0]
	s.SourceIPs = []string{"127.0.0.2-127.0.0.20"}
	s.PID = os.Getpid()
	s.Progress = os.Stderr
	rep := run(t, s)
	if rep.Sessions.Up != int64(n+1) || rep.Shares.Accepted == 0 {
		t.Errorf("sessions %+v, accepted %d", rep.Sessions, rep.Shares.Accepted)
	}
}

// TestLowDifficulty: every share misses its target, so a normal server
// rejects each as low difficulty (code 23) and none is accepted or a block,
// at about one or two hashes per share.
func TestLowDifficulty(t *testing.T) {
	p := startEngine(t, nil)
	s := testScenario(p)
	s.Miners, s.Rate, s.LowDifficulty = 5, 5, true
	s.Duration, s.SubmitDelay = 2500*time.Millisecond, 500*time.Millisecond
	rep := run(t, s)
	if rep.Mode != "low-difficulty" {
		t.Errorf("mode %q", rep.Mode)
	}
	answered := rep.Shares.Submitted - rep.Shares.Unanswered
	if rep.Shares.Submitted < 5 || rep.Shares.Accepted != 0 || rep.Shares.Rejected["23 Low difficulty"] != answered {
		t.Fatalf("submitted %d, accepted %d, rejected %v: want every answered share rejected as low difficulty",
			rep.Shares.Submitted, rep.Shares.Accepted, rep.Shares.Rejected)
	}
	if rep.Shares.Hashes < rep.Shares.Submitted || rep.Shares.Hashes > 4*rep.Shares.Submitted || rep.Shares.GrindGiveUps != 0 {
		t.Errorf("%d hashes, %d give-ups for %d shares: want 1–2 hashes per share", rep.Shares.Hashes, rep.Shares.GrindGiveUps, rep.Shares.Submitted)
	}
}
