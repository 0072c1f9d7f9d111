package tlsfront

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
	"github.com/hashpool/hashpool/tlsfront/tlstest"
)

// TestMain runs a Front as a child process when TLSFRONT_CHILD is set
// (TLSFRONT_BACKEND, TLSFRONT_CERT, TLSFRONT_KEY), so the cost benchmark
// measures the front alone: it prints its address and serves until its
// stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("TLSFRONT_CHILD") == "" {
		os.Exit(m.Run())
	}
	o := NewOptions()
	o.Listen, o.Backend = "127.0.0.1:0", os.Getenv("TLSFRONT_BACKEND")
	o.CertFile, o.KeyFile = os.Getenv("TLSFRONT_CERT"), os.Getenv("TLSFRONT_KEY")
	f, err := New(o, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { bufio.NewReader(os.Stdin).ReadString('\n'); cancel() }()
	go func() { <-f.Ready(); fmt.Println(f.Addr().String()) }()
	if err := f.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// procStat returns a process's resident set (bytes) and CPU time (user +
// system) from /proc.
func procStat(tb testing.TB, pid int) (rss int64, cpu time.Duration) {
	tb.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			rss = kb << 10
		}
	}
	return rss, time.Duration(ut+stt) * 10 * time.Millisecond // USER_HZ 100
}

// BenchmarkTLSCost measures what TLS termination costs: a Front in a child
// process between 1,000 TLS stratum sessions (loadgen-like: subscribe,
// authorize, then pipelined mining.submit) and the real engine (simulator,
// PROXY v1). Reported: the front's resident set per session
// (rss-bytes/session, idle front subtracted) and its CPU per share
// (cpu-ns/share: one miner line in, decrypt, pipe, answer line back,
// encrypt). Plain sessions cost the front nothing (they do not pass it),
// so these are the whole TLS cost on the pool side.
//
//	go test -run '^$' -bench TLSCost -benchtime 20000x ./tlsfront/
func BenchmarkTLSCost(b *testing.B) {
	const sessions = 1000
	chain := tlstest.New(b, b.TempDir(), "pool", "127.0.0.1")
	e := enginetest.Start(b, func(o *engine.Options) { o.ProxyProtocol, o.Simulator = true, true })
	e.AddJob(false)
	go drainShares(e)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TLSFRONT_CHILD=1", "TLSFRONT_BACKEND="+e.Addr,
		"TLSFRONT_CERT="+chain.CertFile, "TLSFRONT_KEY="+chain.KeyFile)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	addr = strings.TrimSpace(addr)
	time.Sleep(200 * time.Millisecond)
	idle, _ := procStat(b, cmd.Process.Pid)
	cfg := &tls.Config{RootCAs: chain.CA, ServerName: "127.0.0.1"}
	ms := make([]*tlsMiner, sessions)
	for i := range ms {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ms[i] = &tlsMiner{t: b, c: c, r: bufio.NewReader(c)}
		ms[i].mine(fmt.Sprintf("farm.w%d", i), 1)
	}
	time.Sleep(500 * time.Millisecond)
	loaded, cpu0 := procStat(b, cmd.Process.Pid)
	b.ResetTimer() // (it also drops metrics reported before it)
	// b.N shares, round robin, in rounds of one share per session.
	sent := 0
	for sent < b.N {
		round := min(sessions, b.N-sent)
		for i := 0; i < round; i++ {
			m := ms[i]
			m.id++
			fmt.Fprintf(m.c, `{"id":%d,"method":"mining.submit","params":["farm","%s","%016x","%s","%08x"]}`+"\n",
				m.id, m.job, 1000+m.id, m.time, m.id)
		}
		for i := 0; i < round; i++ {
			m := ms[i]
			m.c.SetReadDeadline(time.Now().Add(30 * time.Second))
			for {
				l, err := m.r.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				if strings.HasPrefix(l, fmt.Sprintf(`{"id":%d,`, m.id)) {
					break
				}
			}
		}
		sent += round
	}
	b.StopTimer()
	_, cpu1 := procStat(b, cmd.Process.Pid)
	b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/share")
	b.ReportMetric(float64(loaded-idle)/sessions, "rss-bytes/session")
	b.ReportMetric(float64(loaded)/(1<<20), "front-rss-MB")
}

// drainShares reads the engine's share topic so the bus never fills.
func drainShares(e *enginetest.Engine) {
	for {
		if _, err := e.Shares.Poll(context.Background()); err != nil {
			return
		}
	}
}
