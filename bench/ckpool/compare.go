package ckpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashpool/hashpool/bench/host"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/loadgen"
)

// The named scenarios, in the order they run.
const (
	RSSSlope     = "rss-slope"
	CPUPerSubmit = "cpu-per-submit"
	SubmitP99    = "submit-p99"
	Fanout       = "fanout"
	ConnectRate  = "connect-rate"
	RSSSustained = "rss-sustained"
)

// Names lists the scenarios in the order Compare runs them.
func Names() []string {
	return []string{RSSSlope, CPUPerSubmit, SubmitP99, Fanout, ConnectRate, RSSSustained}
}

// ParseScenarios reads a comma-separated list of scenario names ("" or
// "all": every one) and reports every unknown name at once.
func ParseScenarios(list string) ([]string, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return Names(), nil
	}
	var out []string
	var errs []error
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			errs = append(errs, errors.New("empty scenario name"))
		case !slices.Contains(Names(), n):
			errs = append(errs, fmt.Errorf("unknown scenario %q (have %s)", n, strings.Join(Names(), ", ")))
		case !slices.Contains(out, n):
			out = append(out, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Run in the canonical order whatever the list's.
	slices.SortFunc(out, func(a, b string) int { return slices.Index(Names(), a) - slices.Index(Names(), b) })
	return out, nil
}

// Options configure [Compare].
type Options struct {
	// Root is the module root (hashpool and loadgen are built there).
	Root string
	// Scenarios are the names to run (nil: all).
	Scenarios []string
	// Quick runs every scenario smaller and shorter (a few minutes in all).
	Quick bool
	// CkpoolBin is the ckpool binary; "" looks at $CKPOOL_BIN, then
	// $CKPOOL_SRC/src/ckpool. Absent: hashpool is measured alone and the
	// report says why.
	CkpoolBin string
	// Pools restricts the pools measured ("hashpool", "ckpool"; nil: both).
	Pools []string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Validate reports every problem with o.
func (o *Options) Validate() error {
	var errs []error
	for _, s := range o.Scenarios {
		if !slices.Contains(Names(), s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q", s))
		}
	}
	for _, p := range o.Pools {
		if p != "hashpool" && p != "ckpool" {
			errs = append(errs, fmt.Errorf("unknown pool %q (hashpool, ckpool)", p))
		}
	}
	if o.Root == "" {
		errs = append(errs, errors.New("root: empty (the module directory)"))
	}
	return errors.Join(errs...)
}

// size is what a scenario runs with in full and quick runs.
type size struct {
	sessions      int           // sessions of the CPU, p99, fan-out, connect and sustained runs
	slopeSessions int           // rss-slope's top
	window        time.Duration // submit window at each rate
	sustained     time.Duration // rss-sustained's window
	fanoutJobs    int           // new blocks in the fan-out run
	margin        time.Duration // added to the computed connect time
	cpuRates      []int         // submits/s of cpu-per-submit
	p99Rates      []int         // submits/s of submit-p99
	sustainedRate int           // submits/s of rss-sustained
}

func sizes(quick bool) size {
	if quick {
		return size{sessions: 2_000, slopeSessions: 3_000, window: 6 * time.Second, sustained: 15 * time.Second, fanoutJobs: 3,
			margin: 3 * time.Second, cpuRates: cpuRates, p99Rates: p99Rates, sustainedRate: 20_000}
	}
	return size{sessions: 10_000, slopeSessions: 15_000, window: 20 * time.Second, sustained: 60 * time.Second, fanoutJobs: 5,
		margin: 3 * time.Second, cpuRates: cpuRates, p99Rates: p99Rates, sustainedRate: 20_000}
}

// cpuRates are the submit rates of cpu-per-submit, p99Rates those of
// submit-p99 (issue 11's table); the same in quick runs.
var (
	cpuRates = []int{2_000, 5_000, 10_000, 20_000}
	p99Rates = []int{5_000, 10_000, 20_000}
)

// connectRatePerProc bounds each loadgen process's dials in the runs that
// are not about the connect rate (so the ramp never overflows a backlog).
const connectRatePerProc = 2_500

// sourceIPs spread the clients over enough addresses for their ports.
const sourceIPs = "127.0.0.2-127.0.0.21"

// comparer runs the scenarios.
type comparer struct {
	opts    Options
	size    size
	dir     string
	loadgen string
	node    *btcdtest.Node
	pools   []*pool
	rep     *Report
	cache   map[string]*runResult // pool/rate/broadcast → submit run
}

func (c *comparer) logf(format string, args ...any) {
	if c.opts.Log != nil {
		fmt.Fprintf(c.opts.Log, "ckpool-compare: "+format+"\n", args...)
	}
}

// resolveCkpool finds the ckpool binary or says why there is none.
func resolveCkpool(explicit string) (string, string) {
	bin := explicit
	if bin == "" {
		bin = os.Getenv("CKPOOL_BIN")
	}
	if bin == "" {
		if src := os.Getenv("CKPOOL_SRC"); src != "" {
			bin = filepath.Join(src, "src", "ckpool")
		}
	}
	if bin == "" {
		return "", "no ckpool: set CKPOOL_SRC (and build it with bench/ckpool/build.sh) or CKPOOL_BIN"
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Sprintf("no ckpool binary at %s (build it: CKPOOL_SRC=<dir> bench/ckpool/build.sh)", bin)
	}
	return bin, ""
}

// Compare starts a btcd regtest node, the proxy, `hashpool run` and ckpool
// on it, runs the scenarios against both pools alternating and returns the
// table. A pool that cannot start is reported and the other still
// measured; the error is for what stops everything (a build, the node).
func Compare(ctx context.Context, opts Options) (*Report, error) {
	if len(opts.Scenarios) == 0 {
		opts.Scenarios = Names()
	}
	if len(opts.Pools) == 0 {
		opts.Pools = []string{"hashpool", "ckpool"}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ckpool-compare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c := &comparer{opts: opts, size: sizes(opts.Quick), dir: dir, cache: map[string]*runResult{}}
	c.rep = &Report{Started: time.Now().UTC(), Quick: opts.Quick, Scenarios: opts.Scenarios, Machine: machine()}
	defer func() { c.rep.Ended, c.rep.LoadEnd = time.Now().UTC(), host.LoadAvg() }()

	ckBin, why := "", "not asked for (-pools)"
	if slices.Contains(opts.Pools, "ckpool") {
		ckBin, why = resolveCkpool(opts.CkpoolBin)
	}
	if ckBin == "" {
		c.rep.Ckpool = "absent: " + why
		c.logf("%s; measuring hashpool alone", why)
	} else {
		c.rep.Ckpool = ckBin + ckpoolRev(ckBin)
	}

	bin := filepath.Join(dir, "bin")
	c.logf("building hashpool and loadgen")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./cmd/hashpool", "./cmd/loadgen")
	build.Dir = opts.Root
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	c.loadgen = filepath.Join(bin, "loadgen")

	c.logf("starting btcd regtest")
	node, err := btcdtest.Launch(ctx, btcdtest.Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	defer node.Stop()
	c.node = node
	if _, err := node.Client().Generate(ctx, 1); err != nil { // a recent tip: btcd serves templates only then
		return nil, fmt.Errorf("generate: %w", err)
	}

	if slices.Contains(opts.Pools, "hashpool") {
		c.logf("starting hashpool run")
		start := func(ctx context.Context) (*pool, error) {
			return startHashpool(ctx, dir, filepath.Join(bin, "hashpool"), node.RPCURL, node.RPCUser, node.RPCPass)
		}
		hp, err := start(ctx)
		if err != nil {
			c.rep.Notes = append(c.rep.Notes, "hashpool did not start: "+err.Error())
		} else {
			hp.start, hp.grace = start, 30*time.Second
			c.pools = append(c.pools, hp)
			c.rep.Commands = append(c.rep.Commands, hp.command)
		}
	}
	if ckBin != "" {
		proxy, err := NewProxy(ProxyOptions{Upstream: node.RPCURL, User: node.RPCUser, Password: node.RPCPass,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pctx, stopProxy := context.WithCancel(context.Background())
		proxyDone := make(chan error, 1)
		go func() { proxyDone <- proxy.Serve(pctx, ln) }()
		defer func() { stopProxy(); <-proxyDone }()
		c.logf("starting ckpool (rpc through the proxy on %s)", ln.Addr())
		start := func(ctx context.Context) (*pool, error) { return startCkpool(ctx, dir, ckBin, ln.Addr().String()) }
		ck, err := start(ctx)
		if err != nil {
			c.rep.Notes = append(c.rep.Notes, "ckpool did not start: "+err.Error())
		} else {
			ck.start, ck.grace = start, 10*time.Second
			c.pools = append(c.pools, ck)
			c.rep.Commands = append(c.rep.Commands, ck.command+"   (config: btcd = the rewriting proxy, serverurl 127.0.0.1, mindiff = startdiff = maxdiff = 1, other keys at their defaults)")
		}
	}
	if len(c.pools) == 0 {
		return c.rep, errors.New("no pool started")
	}
	defer func() {
		for _, p := range c.pools {
			p.stop()
		}
	}()
	c.rep.LoadStart = host.LoadAvg()
	for i, s := range opts.Scenarios {
		if ctx.Err() != nil {
			break
		}
		if i > 0 && s != SubmitP99 { // submit-p99 reuses cpu-per-submit's runs: keep its pools
			if err := c.restart(ctx); err != nil {
				return c.rep, err
			}
		}
		c.logf("scenario %s", s)
		var err error
		switch s {
		case RSSSlope:
			err = c.rssSlope(ctx)
		case CPUPerSubmit:
			err = c.cpuPerSubmit(ctx)
		case SubmitP99:
			err = c.submitP99(ctx)
		case Fanout:
			err = c.fanout(ctx)
		case ConnectRate:
			err = c.connectRate(ctx)
		case RSSSustained:
			err = c.rssSustained(ctx)
		}
		if err != nil {
			c.rep.Notes = append(c.rep.Notes, s+": "+err.Error())
			c.logf("%s: %v", s, err)
		}
	}
	return c.rep, ctx.Err()
}

// restart replaces every pool with a fresh process, so each scenario
// starts from a pool that has served nothing (RSS from a clean start).
func (c *comparer) restart(ctx context.Context) error {
	for i, p := range c.pools {
		p.stop()
		np, err := p.start(ctx)
		if err != nil {
			c.pools = append(c.pools[:i:i], c.pools[i+1:]...)
			return fmt.Errorf("restart %s: %w", p.name, err)
		}
		np.start, np.grace = p.start, p.grace
		c.pools[i] = np
	}
	return nil
}

// ckpoolRev names the source revision build.sh recorded.
func ckpoolRev(bin string) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(bin)), ".ckpool-rev"))
	if err != nil {
		return ""
	}
	return " (source " + strings.TrimSpace(string(b))[:min(12, len(strings.TrimSpace(string(b))))] + ")"
}

// order returns the pools in alternating order for the i-th measurement.
func (c *comparer) order(i int) []*pool {
	out := slices.Clone(c.pools)
	if i%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

// scenario is the loadgen scenario every run starts from.
func (c *comparer) scenario(p *pool, sessions int) loadgen.Scenario {
	s := loadgen.DefaultScenario()
	s.URL, s.Miners, s.Rate = p.addr, sessions, 0
	s.SourceIPs, s.Executable = []string{sourceIPs}, c.loadgen
	s.Procs = max(1, (sessions+7_999)/8_000) // ≤ 8,000 descriptors per loadgen process
	s.ConnectRate = connectRatePerProc
	s.User = "bench"
	s.ResponseTimeout = 30 * time.Second
	return s
}

// connectTime is how long s's sessions take to come up at its connect rate,
// with the size's margin.
func (c *comparer) connectTime(s *loadgen.Scenario) time.Duration {
	per := float64(s.Miners) / float64(s.Procs) / s.ConnectRate
	return time.Duration(per*float64(time.Second)) + c.size.margin
}

// settle waits for the previous run's connections to be gone from p (its
// descriptor count stops falling), at most 20 s.
func settle(ctx context.Context, p *pool) {
	prev := -1
	for i := 0; i < 40 && ctx.Err() == nil; i++ {
		s, err := readSample(p.pid(), true)
		if err != nil || s.fds == prev {
			return
		}
		prev = s.fds
		time.Sleep(500 * time.Millisecond)
	}
}

// runResult is one loadgen run against one pool with its samples.
type runResult struct {
	rep     *loadgen.Report
	samples []sample
	start   time.Time
	// submitStart is when submits began (start + SubmitDelay).
	submitStart time.Time
	end         time.Time
}

// run runs s against p while sampling p's process; during is called once
// the run has started (for block generation), with the run's context.
func (c *comparer) run(ctx context.Context, p *pool, s loadgen.Scenario, fds bool, during func(ctx context.Context, start time.Time)) (*runResult, error) {
	settle(ctx, p)
	if gone, log := p.gone(); gone {
		return nil, fmt.Errorf("%s has exited:\n%s", p.name, log)
	}
	smp := startSampler(p.pid(), 250*time.Millisecond, fds)
	r := &runResult{start: time.Now()}
	r.submitStart = r.start.Add(s.SubmitDelay)
	dctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	if during != nil {
		go func() { defer close(done); during(dctx, r.start) }()
	} else {
		close(done)
	}
	rep, err := loadgen.Run(ctx, s)
	stop()
	<-done
	r.end = time.Now()
	r.samples = smp.finish()
	if err != nil {
		return nil, fmt.Errorf("%s: loadgen: %w", p.name, err)
	}
	r.rep = rep
	if rep.Sessions.Up == 0 {
		return r, fmt.Errorf("%s: no session up of %d (dial fails %d, handshake fails %d, first errors %q)", p.name,
			s.Miners, rep.Sessions.DialFails, rep.Sessions.HandshakeFails, rep.Errors)
	}
	if rep.Sessions.Up < int64(s.Miners)*99/100 {
		c.rep.Notes = append(c.rep.Notes, fmt.Sprintf("%s, %s run at %.0f submits/s: only %d of %d sessions up at the end (ever %d, dial fails %d, handshake fails %d, first errors %q)",
			p.name, s.Duration, s.Rate*float64(s.Miners), rep.Sessions.Up, s.Miners, rep.Sessions.Ever, rep.Sessions.DialFails, rep.Sessions.HandshakeFails, rep.Errors))
	}
	return r, nil
}

// generate mines one block on the node (both pools see a new block).
func (c *comparer) generate(ctx context.Context) error {
	_, err := c.node.Client().Generate(ctx, 1)
	return err
}

// sleepUntil waits until t or ctx ends; false if ctx ended.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// rssSlope: idle authorized sessions 0 → N; the least-squares slope of RSS
// over the pool's descriptor count (one per session) while they come up.
func (c *comparer) rssSlope(ctx context.Context) error {
	vals := map[string]string{}
	notes := []string{}
	n := c.size.slopeSessions
	for _, p := range c.order(0) {
		s := c.scenario(p, n)
		s.Duration = c.connectTime(&s) + c.size.margin + time.Second // hold: RSS settles
		r, err := c.run(ctx, p, s, true, nil)
		if err != nil {
			return err
		}
		slope, pts := fitSlope(r.samples)
		first, last := r.samples[0], r.samples[len(r.samples)-1]
		peak := first
		for _, sm := range r.samples {
			if sm.fds > peak.fds {
				peak = sm
			}
		}
		vals[p.name] = thousands(int(math.Round(slope)))
		notes = append(notes, fmt.Sprintf("%s: RSS %d KiB at %d fds → %d KiB at %d fds (%d samples; end %d KiB); slope %.0f B/session",
			p.name, first.rssKB, first.fds, peak.rssKB, peak.fds, pts, last.rssKB, slope))
	}
	c.rep.add(Row{Metric: fmt.Sprintf("RSS per idle authorized session (slope 0→%s)", thousands(n)), Unit: "B",
		Ckpool: vals["ckpool"], Hashpool: vals["hashpool"], Lower: true, Goal: "≤ 1,024 B in `hashpool run` defaults", GoalMax: 1024}, notes...)
	return nil
}

// fitSlope is the least-squares slope of RSS (bytes) over descriptors,
// over the samples while descriptors were rising (the ramp) and after.
func fitSlope(ss []sample) (float64, int) {
	var sx, sy, sxx, sxy, k float64
	for _, s := range ss {
		x, y := float64(s.fds), float64(s.rssKB)*1024
		sx, sy, sxx, sxy, k = sx+x, sy+y, sxx+x*x, sxy+x*y, k+1
	}
	d := k*sxx - sx*sx
	if k < 2 || d == 0 {
		return 0, int(k)
	}
	return (k*sxy - sx*sy) / d, int(k)
}

// submitRun is one fixed-rate low-difficulty run (cached: cpu-per-submit
// and submit-p99 share the runs without a broadcast).
func (c *comparer) submitRun(ctx context.Context, p *pool, rate int, broadcast bool, window time.Duration) (*runResult, error) {
	key := fmt.Sprintf("%s/%d/%v/%v", p.name, rate, broadcast, window)
	if r := c.cache[key]; r != nil {
		return r, nil
	}
	s := c.scenario(p, c.size.sessions)
	s.LowDifficulty = true
	s.Rate = float64(rate) / float64(s.Miners)
	s.SubmitDelay = c.connectTime(&s)
	s.Duration = s.SubmitDelay + window
	var during func(context.Context, time.Time)
	if broadcast {
		during = func(ctx context.Context, start time.Time) {
			if sleepUntil(ctx, start.Add(s.SubmitDelay+window/3)) {
				if err := c.generate(ctx); err != nil {
					c.logf("generate: %v", err)
				}
			}
		}
	}
	r, err := c.run(ctx, p, s, false, during)
	if err != nil {
		return nil, err
	}
	c.cache[key] = r
	return r, nil
}

// cpuPerSubmit is the pool's CPU time over the submit window divided by
// the submits it answered, at each rate.
func (c *comparer) cpuPerSubmit(ctx context.Context) error {
	vals := map[string][]string{}
	var notes []string
	var ck, hp []float64
	for i, rate := range c.size.cpuRates {
		for _, p := range c.order(i) {
			r, err := c.submitRun(ctx, p, rate, false, c.size.window)
			if err != nil {
				return err
			}
			a, b := at(r.samples, r.submitStart), r.samples[len(r.samples)-1]
			answered := r.rep.Shares.Submitted - r.rep.Shares.Unanswered
			us := 0.0
			if answered > 0 {
				us = float64((b.cpu - a.cpu).Microseconds()) / float64(answered)
			}
			vals[p.name] = append(vals[p.name], fmt.Sprintf("%.0f", us))
			if p.name == "ckpool" {
				ck = append(ck, us)
			} else {
				hp = append(hp, us)
			}
			secs := b.at.Sub(a.at).Seconds()
			notes = append(notes, fmt.Sprintf("%s at %s/s: %d submits answered in %.1f s (%.0f/s), CPU %.2f s (%.2f cores), rejects %v, p99 %s",
				p.name, thousands(rate), answered, secs, float64(answered)/math.Max(secs, 1e-9), (b.cpu-a.cpu).Seconds(),
				(b.cpu-a.cpu).Seconds()/math.Max(secs, 1e-9), r.rep.Shares.Rejected, ms(r.rep.Shares.Latency.P99us)))
		}
	}
	c.rep.add(Row{Metric: "server CPU per submit at " + rateList(c.size.cpuRates) + " per s", Unit: "µs",
		Ckpool: strings.Join(vals["ckpool"], " / "), Hashpool: strings.Join(vals["hashpool"], " / "),
		Ratio: ratios(ck, hp), Goal: "≤ 10 µs at every rate", GoalMax: 10, hashpoolVals: hp}, notes...)
	return nil
}

// submitP99 is loadgen's submit → answer p99 at each rate, with no job
// broadcast in the window and with one new block a third into it.
func (c *comparer) submitP99(ctx context.Context) error {
	for _, broadcast := range []bool{false, true} {
		vals := map[string][]string{}
		var notes []string
		var ck, hp []float64
		for i, rate := range c.size.p99Rates {
			for _, p := range c.order(i) {
				r, err := c.submitRun(ctx, p, rate, broadcast, c.size.window)
				if err != nil {
					return err
				}
				p99 := float64(r.rep.Shares.Latency.P99us) / 1000
				vals[p.name] = append(vals[p.name], fmt.Sprintf("%.1f", p99))
				if p.name == "ckpool" {
					ck = append(ck, p99)
				} else {
					hp = append(hp, p99)
				}
				notes = append(notes, fmt.Sprintf("%s at %s/s%s: p50 %s p99 %s max %s, %d submits, %d unanswered, %d distinct jobs seen",
					p.name, thousands(rate), map[bool]string{true: " with a new block", false: ""}[broadcast],
					ms(r.rep.Shares.Latency.P50us), ms(r.rep.Shares.Latency.P99us), ms(r.rep.Shares.Latency.MaxUs),
					r.rep.Shares.Submitted, r.rep.Shares.Unanswered, r.rep.Fanout.Jobs))
			}
		}
		metric := "submit p99 at " + rateList(c.size.p99Rates) + " per s"
		goal := "≤ 1 ms at 10k/s"
		if broadcast {
			metric += ", a new block broadcast inside the window"
			goal += ", including while a job is broadcast"
		}
		var at10k []float64
		if i := slices.Index(c.size.p99Rates, 10_000); i >= 0 && len(hp) == len(c.size.p99Rates) {
			at10k = []float64{hp[i]}
		}
		c.rep.add(Row{Metric: metric, Unit: "ms", Ckpool: strings.Join(vals["ckpool"], " / "), Hashpool: strings.Join(vals["hashpool"], " / "),
			Ratio: ratios(ck, hp), Goal: goal, GoalMax: 1, hashpoolVals: at10k}, notes...)
	}
	return nil
}

// fanout: N idle sessions, a few new blocks a few seconds apart; per job,
// the first receipt to the last receipt over every session (median).
func (c *comparer) fanout(ctx context.Context) error {
	vals := map[string]string{}
	var notes []string
	jobs := c.size.fanoutJobs
	for _, p := range c.order(1) {
		s := c.scenario(p, c.size.sessions)
		ramp := c.connectTime(&s)
		s.Duration = ramp + time.Duration(jobs)*3*time.Second + 3*time.Second
		during := func(ctx context.Context, start time.Time) {
			for j := 0; j < jobs; j++ {
				if !sleepUntil(ctx, start.Add(ramp+time.Duration(j)*3*time.Second+time.Second)) {
					return
				}
				if err := c.generate(ctx); err != nil {
					c.logf("generate: %v", err)
				}
			}
		}
		r, err := c.run(ctx, p, s, false, during)
		if err != nil {
			return err
		}
		// Jobs every session got: the new blocks (and refreshes) after the ramp.
		var full []float64
		for _, j := range r.rep.Fanout.Seen {
			if int64(j.Count) >= r.rep.Sessions.Up*99/100 {
				full = append(full, float64(j.Last-j.First)/1e6)
			}
		}
		slices.Sort(full)
		med := math.NaN()
		if len(full) > 0 {
			med = full[len(full)/2]
		}
		vals[p.name] = fmt.Sprintf("%.0f", med)
		notes = append(notes, fmt.Sprintf("%s: %d jobs reached ≥ 99%% of %d sessions, first→last %s ms (median %.0f ms)",
			p.name, len(full), r.rep.Sessions.Up, fmtList(full), med))
	}
	c.rep.add(Row{Metric: fmt.Sprintf("new-block fan-out first→last to %s sessions", thousands(c.size.sessions)), Unit: "ms",
		Ckpool: vals["ckpool"], Hashpool: vals["hashpool"], Lower: true, Goal: "≤ 100 ms", GoalMax: 100}, notes...)
	return nil
}

// connectRate: N sessions dialled as fast as the pool takes them (two
// loadgen processes at up to 20,000 dials/s each): sessions up per second
// from the first to the last.
func (c *comparer) connectRate(ctx context.Context) error {
	vals := map[string]string{}
	var notes []string
	for _, p := range c.order(0) {
		s := c.scenario(p, c.size.sessions)
		s.Procs = max(2, s.Procs)
		s.ConnectRate = 20_000
		s.Duration = time.Duration(float64(s.Miners)/1000*float64(time.Second)) + c.size.margin + 2*time.Second
		r, err := c.run(ctx, p, s, false, nil)
		if err != nil {
			return err
		}
		vals[p.name] = thousands(int(math.Round(r.rep.Sessions.ConnectRate)))
		notes = append(notes, fmt.Sprintf("%s: %d sessions up in %.2f s (%.0f/s), %d dial fails, %d handshake fails",
			p.name, r.rep.Sessions.Ever, r.rep.Sessions.RampSeconds, r.rep.Sessions.ConnectRate, r.rep.Sessions.DialFails, r.rep.Sessions.HandshakeFails))
	}
	c.rep.add(Row{Metric: "connect+subscribe+authorize", Unit: "/s", Ckpool: vals["ckpool"], Hashpool: vals["hashpool"],
		Higher: true, Goal: "≥ 20,000/s", GoalMin: 20_000}, notes...)
	return nil
}

// rssSustained: RSS when the submits start (sessions up, idle) and at the
// end of a window at 20,000 submits/s.
func (c *comparer) rssSustained(ctx context.Context) error {
	vals := map[string]string{}
	ends := map[string]float64{}
	var notes []string
	growth := math.NaN()
	for _, p := range c.order(1) {
		r, err := c.submitRun(ctx, p, c.size.sustainedRate, false, c.size.sustained)
		if err != nil {
			return err
		}
		a, b := at(r.samples, r.submitStart), r.samples[len(r.samples)-1]
		peak := a.rssKB
		for _, sm := range r.samples {
			if !sm.at.Before(r.submitStart) {
				peak = max(peak, sm.rssKB)
			}
		}
		vals[p.name] = fmt.Sprintf("%.0f → %.0f MB", float64(a.rssKB)/1024, float64(b.rssKB)/1024)
		ends[p.name] = float64(b.rssKB)
		if p.name == "hashpool" && a.rssKB > 0 {
			growth = float64(b.rssKB) / float64(a.rssKB)
		}
		notes = append(notes, fmt.Sprintf("%s: RSS %d KiB when submits start → %d KiB after %.0f s (peak %d KiB), %d submits answered",
			p.name, a.rssKB, b.rssKB, b.at.Sub(a.at).Seconds(), peak, r.rep.Shares.Submitted-r.rep.Shares.Unanswered))
	}
	row := Row{Metric: fmt.Sprintf("RSS under %s submits/s for %.0f s: start → end", thousands(c.size.sustainedRate), c.size.sustained.Seconds()),
		Ckpool: vals["ckpool"], Hashpool: vals["hashpool"], Goal: "bounded: end ≤ 1.5× start", GoalMax: 1.5}
	if ends["ckpool"] > 0 && ends["hashpool"] > 0 {
		row.Ratio = fmt.Sprintf("%.2f× (end RSS)", ends["ckpool"]/ends["hashpool"])
	}
	if !math.IsNaN(growth) {
		row.hashpoolVals = []float64{growth}
	}
	c.rep.add(row, notes...)
	return nil
}

func ms(us uint64) string { return strconv.FormatFloat(float64(us)/1000, 'f', 2, 64) + " ms" }

func rateList(rs []int) string {
	var out []string
	for _, r := range rs {
		if r%1000 == 0 {
			out = append(out, strconv.Itoa(r/1000)+"k")
		} else {
			out = append(out, strconv.Itoa(r))
		}
	}
	return strings.Join(out, " / ")
}

func fmtList(xs []float64) string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%.0f", x))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// ratios renders ckpool ÷ hashpool per rate ("2.1 / 3.2 ×").
func ratios(ck, hp []float64) string {
	if len(ck) == 0 || len(ck) != len(hp) {
		return "–"
	}
	var out []string
	for i := range ck {
		if hp[i] <= 0 {
			out = append(out, "–")
			continue
		}
		out = append(out, fmt.Sprintf("%.2f", ck[i]/hp[i]))
	}
	return strings.Join(out, " / ") + "×"
}

func thousands(n int) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// machine describes the box.
func machine() Machine { return Machine{Nproc: host.Nproc(), CPU: host.CPUModel()} }
