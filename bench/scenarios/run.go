package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashpool/hashpool/loadgen"
)

// Config says which scenarios to run, how big, and where to write.
type Config struct {
	// Root is the module root: binaries are built there with `go build`.
	Root string
	// OutDir receives <scenario>.json (the loadgen report against the
	// engine), <scenario>-baseline.json when compared, <scenario>.result.json
	// and <scenario>.txt.
	OutDir string
	// Quick runs every scenario about ten times smaller and shorter.
	Quick bool
	// Only, when not empty, names the scenarios to run; opt-in scenarios
	// (agent-farm-10k) run only when named here.
	Only []string
	// Log receives what is happening (nil: nothing); LoadgenProgress also
	// loadgen's progress line each second.
	Log             io.Writer
	LoadgenProgress bool
}

// scenario is one entry of the fixed set.
type scenario struct {
	name, title string
	run         func(ctx context.Context, r *runner, res *Result) error
	// optIn scenarios run only when Config.Only names them (agent-farm-10k
	// takes 23 minutes).
	optIn bool
}

// all is the fixed set, in the order they run.
var all = []scenario{
	{name: "stratum-10k", title: "10,000 stratum miners at 1 share/s (engine vs baseline)", run: runStratum},
	{name: "broadcast-10k", title: "new-block broadcast to 10,000 sessions (engine vs baseline)", run: runBroadcast},
	{name: "sessions-100k", title: "100,000+ sessions: 3 engine processes on one SO_REUSEPORT port, stratum and agent miners", run: runSessions},
	{name: "farm-10k", title: "a 10,000-miner farm behind one agent connection", run: runFarm},
	{name: "sv1-vs-sv2-10k", title: "10,000 miners over Stratum V1, then Stratum V2 standard and extended channels: bytes per share and per job, server CPU per share, RSS per session", run: runSV1vsSV2},
	{name: "agent-farm-10k", title: "10,000 stratum miners behind one cmd/btcagent process: its upstream link, RSS and CPU vs BtcAgent's figures (with and without hashpool's extensions)",
		run: runAgentFarm, optIn: true},
}

// Names lists the scenarios in the order Run runs them.
func Names() []string {
	var out []string
	for _, s := range all {
		out = append(out, s.name)
	}
	return out
}

// runner holds what every scenario needs.
type runner struct {
	cfg       Config
	enginesrv string
	loadgen   string
	logw      io.Writer
}

func (r *runner) logf(format string, args ...any) {
	if r.logw != nil {
		fmt.Fprintf(r.logw, "scenarios: "+format+"\n", args...)
	}
}

// Run builds enginesrv and loadgen, runs the selected scenarios one after
// the other and writes their files to OutDir. A failed scenario is reported
// in its Result (Error) and the next one still runs; the error returned is
// for what stops everything (a build, the output directory).
func Run(ctx context.Context, cfg Config) ([]*Result, error) {
	for _, n := range cfg.Only {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", n, strings.Join(Names(), ", "))
		}
	}
	if cfg.Root == "" {
		cfg.Root = "."
	}
	if cfg.OutDir == "" {
		cfg.OutDir = filepath.Join(cfg.Root, "bench", "out")
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	bin, err := os.MkdirTemp("", "scenarios-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bin)
	r := &runner{cfg: cfg, logw: cfg.Log, enginesrv: filepath.Join(bin, "enginesrv"), loadgen: filepath.Join(bin, "loadgen")}
	r.logf("building enginesrv and loadgen")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./bench/scenarios/cmd/enginesrv", "./cmd/loadgen")
	build.Dir = cfg.Root
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	var results []*Result
	for _, s := range all {
		if (len(cfg.Only) > 0 || s.optIn) && !slices.Contains(cfg.Only, s.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		res := &Result{Name: s.name, Title: s.title, Quick: cfg.Quick, Started: time.Now().UTC(), Reports: map[string]string{}}
		r.logf("%s: %s", s.name, s.title)
		if err := s.run(ctx, r, res); err != nil {
			res.Error = err.Error()
			r.logf("%s: FAILED: %v", s.name, err)
		}
		res.Seconds = time.Since(res.Started).Seconds()
		if err := res.write(cfg.OutDir); err != nil {
			return results, err
		}
		r.logf("%s: done in %.0f s\n%s", s.name, res.Seconds, res.Text())
		results = append(results, res)
	}
	return results, nil
}

// scale returns full, or quick when running -quick.
func (r *runner) scale(full, quick int) int {
	if r.cfg.Quick {
		return quick
	}
	return full
}

func (r *runner) dur(full, quick time.Duration) time.Duration {
	if r.cfg.Quick {
		return quick
	}
	return full
}

// server starts an enginesrv and records its command line in res.
func (r *runner) server(ctx context.Context, res *Result, label string, args ...string) (*serverProc, error) {
	res.Commands = append(res.Commands, "enginesrv "+strings.Join(args, " "))
	r.logf("start %s: enginesrv %s", label, strings.Join(args, " "))
	return startServer(ctx, label, r.enginesrv, args...)
}

// sampler polls servers once a second while loadgen runs: peak sessions
// and descriptors, and one sample after a garbage collection at gcAt.
type sampler struct {
	mu       sync.Mutex
	peakSess []int64
	peakFDs  []int
	gc       []ServerStats
	errs     []string
}

func sample(ctx context.Context, servers []*serverProc, gcAt time.Duration) (*sampler, func()) {
	s := &sampler{peakSess: make([]int64, len(servers)), peakFDs: make([]int, len(servers)), gc: make([]ServerStats, len(servers))}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		gcDone := false
		for range 24 * 3600 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			doGC := !gcDone && time.Since(start) >= gcAt
			for i, p := range servers {
				st, err := p.stats(ctx, doGC)
				fds := fdCount(p.pid)
				s.mu.Lock()
				if err != nil {
					if ctx.Err() == nil && len(s.errs) < 5 {
						s.errs = append(s.errs, err.Error())
					}
				} else {
					s.peakSess[i] = max(s.peakSess[i], st.Sessions)
					if doGC {
						s.gc[i] = st
					}
				}
				s.peakFDs[i] = max(s.peakFDs[i], fds)
				s.mu.Unlock()
			}
			gcDone = gcDone || doGC
		}
	})
	return s, func() { cancel(); wg.Wait() }
}

// load runs a loadgen scenario in this process (children of the built
// loadgen binary when it needs several) and writes its JSON report.
func (r *runner) load(ctx context.Context, res *Result, label, file string, s loadgen.Scenario) (*loadgen.Report, error) {
	s.Executable = r.loadgen
	if r.cfg.LoadgenProgress && r.logw != nil {
		s.Progress = r.logw
	}
	res.Commands = append(res.Commands, loadgenCommand(&s))
	r.logf("%s: %s", label, loadgenCommand(&s))
	rep, err := loadgen.Run(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("%s: loadgen: %w", label, err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(r.cfg.OutDir, file), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	res.Reports[label] = file
	return rep, nil
}

// loadgenCommand is the cmd/loadgen command line equivalent to s.
func loadgenCommand(s *loadgen.Scenario) string {
	parts := []string{"loadgen", "-url", s.URL, "-miners", fmt.Sprint(s.Miners)}
	if s.Agents > 0 {
		parts = append(parts, "-agents", fmt.Sprint(s.Agents), "-miners-per-agent", fmt.Sprint(s.MinersPerAgent))
	}
	parts = append(parts, "-rate", fmt.Sprint(s.Rate), "-duration", s.Duration.String(), "-connect-rate", fmt.Sprint(s.ConnectRate))
	if s.SimulatorMode {
		parts = append(parts, "-simulator-mode")
	}
	if s.VersionRolling {
		parts = append(parts, "-version-rolling")
	}
	if len(s.SourceIPs) > 0 {
		parts = append(parts, "-source-ips", strings.Join(s.SourceIPs, ","))
	}
	if s.Procs > 0 {
		parts = append(parts, "-procs", fmt.Sprint(s.Procs))
	}
	if s.PID > 0 {
		parts = append(parts, "-pid", "<server pid>")
	}
	if s.Publish != nil {
		parts = append(parts, fmt.Sprintf("(library call with a Publish hook: POST /job every %v)", s.PublishEvery))
	}
	return strings.Join(parts, " ")
}

// settle waits until the server holds no sessions (the previous scenario's
// closing), at most 30 s.
func settle(ctx context.Context, p *serverProc) {
	for range 300 {
		st, err := p.stats(ctx, false)
		if err != nil || st.Sessions == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
