//go:build farmbench

package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
	"github.com/hashpool/hashpool/loadgen"
)

// TestFarmMeasure runs the farm scenario at a small scale: FARM_MINERS
// simulated miners (default 1000) at one share per 10 s behind one btcagent
// process for FARM_SECONDS (default 30) after a 10 s warm-up, against an
// in-process engine in simulator mode, and prints the agent's upstream wire
// kbps (TCP_INFO bytes + 52 × segments), RSS and CPU for each variant.
// FARM_CONF is a JSON object of agent config keys that override the
// variant's (e.g. {"miner_poll_coalesce_ms":0}); FARM_AGENT_ENV adds
// environment variables to the agent process only (e.g. GOMAXPROCS=1).
//
//	go test -tags farmbench -run TestFarmMeasure -v -timeout 30m ./agent/
func TestFarmMeasure(t *testing.T) {
	miners := envInt("FARM_MINERS", 1000)
	window := time.Duration(envInt("FARM_SECONDS", 30)) * time.Second
	dir := t.TempDir()
	bin := filepath.Join(dir, "btcagent")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/btcagent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := startSimEngine(t)
	host, port, _ := net.SplitHostPort(addr)
	for _, v := range []struct {
		name    string
		batchMs int
		subres  bool
		exts    []string
	}{
		{"A plain btcpool protocol, one write per share (like BtcAgent), subres", 0, true, []string{}},
		{"B batched 20 ms, subres", 20, true, []string{}},
		{"C batched 20 ms, subres + rejonly", 20, true, []string{ExtRejOnly}},
		{"D batched 20 ms, subres + zstd", 20, true, []string{ExtZstd}},
		{"E batched 20 ms, subres + rejonly + zstd", 20, true, []string{ExtRejOnly, ExtZstd}},
		{"H batched 20 ms, subres + rejonly + csub", 20, true, []string{ExtRejOnly, ExtCompact}},
		{"I batched 20 ms, subres + rejonly + zstd + csub", 20, true, []string{ExtRejOnly, ExtZstd, ExtCompact}},
		{"J batched 100 ms, subres + rejonly + zstd + csub (default)", 100, true, []string{ExtRejOnly, ExtZstd, ExtCompact}},
		{"F batched 50 ms, subres + rejonly + zstd", 50, true, []string{ExtRejOnly, ExtZstd}},
		{"G batched 20 ms, no subres (BtcAgent's default) + zstd", 20, false, []string{ExtZstd}},
		{"K batched 200 ms, subres + rejonly + csub", 200, true, []string{ExtRejOnly, ExtCompact}},
		{"L batched 200 ms, subres + rejonly + zstd + csub", 200, true, []string{ExtRejOnly, ExtZstd, ExtCompact}},
	} {
		if only := os.Getenv("FARM_VARIANT"); only != "" && !strings.Contains(v.name, only) {
			continue
		}
		listen := freePort(t)
		conf := map[string]any{
			"agent_listen_ip": "127.0.0.1", "agent_listen_port": listen,
			"pools":                       [][]any{{host, mustAtoi(port), "farm"}},
			"submit_response_from_server": v.subres, "batch_interval_ms": v.batchMs, "extensions": v.exts,
		}
		if extra := os.Getenv("FARM_CONF"); extra != "" { // e.g. {"miner_poll_coalesce_ms":0}
			if err := json.Unmarshal([]byte(extra), &conf); err != nil {
				t.Fatalf("FARM_CONF: %v", err)
			}
		}
		b, _ := json.Marshal(conf)
		confPath := filepath.Join(dir, "conf.json")
		os.WriteFile(confPath, b, 0o644)
		statsPath := filepath.Join(dir, "stats.json")
		os.Remove(statsPath)
		args := []string{"-c", confPath, "-l", filepath.Join(dir, "log"), "-stats", "1s", "-stats-file", statsPath}
		if p := os.Getenv("FARM_CPUPROFILE"); p != "" {
			args = append(args, "-cpuprofile", p)
		}
		if p := os.Getenv("FARM_MEMPROFILE"); p != "" {
			args = append(args, "-memprofile", p)
		}
		cmd := exec.Command(bin, args...)
		if env := os.Getenv("FARM_AGENT_ENV"); env != "" { // e.g. GOMAXPROCS=1, for the agent only
			cmd.Env = append(os.Environ(), strings.Fields(env)...)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitListen(t, fmt.Sprintf("127.0.0.1:%d", listen))

		s := loadgen.DefaultScenario()
		s.URL = fmt.Sprintf("127.0.0.1:%d", listen)
		s.Miners = miners
		s.Rate = 0.1
		s.SimulatorMode = true
		s.VersionRolling = true
		s.Duration = window + 12*time.Second
		s.PID = cmd.Process.Pid
		type sample struct {
			st   StatsRecordT
			proc loadgen.ProcSample
		}
		take := func() sample {
			var r StatsRecordT
			b, err := os.ReadFile(statsPath)
			if err == nil {
				err = json.Unmarshal(b, &r)
			}
			if err != nil {
				t.Fatalf("stats file: %v", err)
			}
			p, err := loadgen.ReadProc(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			return sample{r, p}
		}
		res := make(chan [2]sample, 1)
		go func() {
			time.Sleep(10 * time.Second)
			a := take()
			time.Sleep(window)
			res <- [2]sample{a, take()}
		}()
		rep, err := loadgen.Run(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		w := <-res
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		a, z := w[0], w[1]
		secs := z.st.At.Sub(a.st.At).Seconds()
		kbps := func(d int64) float64 { return float64(d) * 8 / 1000 / secs }
		sa, sz := a.st.Stats, z.st.Stats
		cpu := (z.proc.CPUTime - a.proc.CPUTime).Seconds() / z.proc.At.Sub(a.proc.At).Seconds()
		fmt.Printf("%s\n  miners %d, window %.1fs, shares/s %.1f (accepted by loadgen %d, rejected %v, unanswered %d)\n"+
			"  upstream wire: up %.1f kbps, down %.1f kbps (payload up %.1f, down %.1f kbps; writes/s %.1f, segs/s out %.1f in %.1f)\n"+
			"  agent RSS %.1f MB (max over run %.1f MB), CPU %.4f cores\n",
			v.name, miners, secs, float64(sz.Shares-sa.Shares)/secs, rep.Shares.Accepted, rep.Shares.Rejected, rep.Shares.Unanswered,
			kbps(sz.Wire.EstOut()-sa.Wire.EstOut()), kbps(sz.Wire.EstIn()-sa.Wire.EstIn()),
			kbps(sz.Wire.BytesOut-sa.Wire.BytesOut), kbps(sz.Wire.BytesIn-sa.Wire.BytesIn),
			float64(sz.UpWrites-sa.UpWrites)/secs, float64(sz.Wire.SegsOut-sa.Wire.SegsOut)/secs, float64(sz.Wire.SegsIn-sa.Wire.SegsIn)/secs,
			float64(z.proc.RSSKB)/1024, float64(rep.Server.RSSMaxKB)/1024, cpu)
	}
}

// StatsRecordT mirrors cmd/btcagent's -stats-file record.
type StatsRecordT struct {
	At    time.Time `json:"at"`
	Stats Snapshot  `json:"stats"`
}

func startSimEngine(t *testing.T) string {
	e := enginetest.Start(t, func(o *engine.Options) { o.Simulator, o.GracePeriod = true, 100*time.Millisecond })
	e.AddJob(false)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Drain share records so the in-memory bus does not grow.
	go func() {
		for ctx.Err() == nil {
			e.Shares.Poll(ctx)
		}
	}()
	go func() { // a new block every 60 s, like mainnet's pace scaled down
		tk := time.NewTicker(60 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				e.Publish(false)
			}
		}
	}()
	return e.Addr
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListen(t *testing.T, addr string) {
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			time.Sleep(1500 * time.Millisecond) // let the upstream connect
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("agent not listening on %s", addr)
}
