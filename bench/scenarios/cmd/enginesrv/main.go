// Command enginesrv is the stratum server process the benchmark scenarios
// load: hashpool's engine (default) or, with -impl baseline, the
// goroutine-per-connection server of bench/baseline, fed the same synthetic
// jobs so that one scenario can run against both.
//
// The engine runs on the in-process bus with a consumer draining (and
// counting) share records, solved shares and common events, with the users
// embedded in a temporary data dir. It listens with SO_REUSEPORT (several
// processes with different -server-id share one port), publishes a job at
// start, a job on a new height every -job-interval and, with
// -refresh-interval, a job at the same height that often (the engine, like
// btcpool's sserver, sends the newest every mining_notify_interval, 30 s),
// and is controlled
// three ways:
//
//   - stdout: one JSON line at start ({"pid":..,"listen":..,"control":..}),
//     then one JSON line per job published;
//
//   - SIGUSR1: publish a new-block job at once (reported on stdout);
//
//   - HTTP on 127.0.0.1 (-control): POST /job publishes a new-block job and
//     answers when every session has it, with the broadcast duration and
//     RSS; GET /stats returns the counters, RSS and CPU (?gc=1 first runs a
//     garbage collection and returns free memory to the OS).
//
//     enginesrv -listen 127.0.0.1:3340 -server-id 1 -difficulty 65536 -simulator
//     enginesrv -impl baseline -listen 127.0.0.1:3341 -difficulty 0.0000000596
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashpool/hashpool/bench/scenarios"
	"github.com/hashpool/hashpool/loadgen"
)

// config is the command line.
type config struct {
	impl        string
	listen      string
	control     string
	serverID    int
	reusePort   bool
	simulator   bool
	difficulty  float64
	fixedDiff   bool
	bits        uint32
	branch      int
	versionMask uint32
	interval    time.Duration
	refresh     time.Duration
	loops       int
	maxRun      time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("enginesrv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.impl, "impl", "engine", "server: engine (hashpool) or baseline (goroutine per connection)")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:3340", "stratum address (127.0.0.0/8)")
	fs.StringVar(&c.control, "control", "127.0.0.1:0", "HTTP control address (127.0.0.0/8)")
	fs.IntVar(&c.serverID, "server-id", 1, "engine server id 1..255 (top byte of extranonce1)")
	fs.BoolVar(&c.reusePort, "reuseport", true, "SO_REUSEPORT on the stratum port")
	fs.BoolVar(&c.simulator, "simulator", false, "engine: skip the low-difficulty check (loadgen -simulator-mode)")
	fs.Float64Var(&c.difficulty, "difficulty", 65536, "share difficulty: the engine's default and minimum, the baseline's only one")
	fs.BoolVar(&c.fixedDiff, "fixed-difficulty", false, "engine: no vardiff, every miner stays at -difficulty (dev_fixed_difficulty)")
	bits := fs.String("bits", "mainnet", "network target of the jobs: mainnet (17034219), regtest (207fffff) or 8 hex digits")
	fs.IntVar(&c.branch, "branch", 12, "merkle branch steps of the jobs (0..20)")
	vmask := fs.String("version-mask", "1fffe000", "version-rolling mask (hex, 0: none)")
	fs.DurationVar(&c.interval, "job-interval", 30*time.Second, "publish a job on a new height this often (0: never)")
	fs.DurationVar(&c.refresh, "refresh-interval", 0, "add a job at the current height (new coinbase and branch, clean_jobs false) this often, like btcpool's jobmaker; the engine sends the newest at its 30 s mining_notify_interval (0: never)")
	fs.IntVar(&c.loops, "loops", 0, "engine event loops (0: GOMAXPROCS)")
	fs.DurationVar(&c.maxRun, "max-run", time.Hour, "exit after this long whatever happens (bounds a forgotten server)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var errs []error
	switch *bits {
	case "mainnet":
		c.bits = MainnetBits
	case "regtest":
		c.bits = RegtestBits
	default:
		v, err := strconv.ParseUint(*bits, 16, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("-bits %q: want mainnet, regtest or 8 hex digits", *bits))
		}
		c.bits = uint32(v)
	}
	m, err := strconv.ParseUint(*vmask, 16, 32)
	if err != nil {
		errs = append(errs, fmt.Errorf("-version-mask %q: want hex", *vmask))
	}
	c.versionMask = uint32(m)
	if c.impl != "engine" && c.impl != "baseline" {
		errs = append(errs, fmt.Errorf("-impl %q: want engine or baseline", c.impl))
	}
	for name, addr := range map[string]string{"-listen": c.listen, "-control": c.control} {
		if _, err := loadgen.CheckTarget(addr, false); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if c.serverID < 1 || c.serverID > 255 {
		errs = append(errs, fmt.Errorf("-server-id %d: want 1..255", c.serverID))
	}
	if !(c.difficulty > 0) || c.difficulty < math.Ldexp(1, -40) || c.difficulty > math.Ldexp(1, 62) {
		errs = append(errs, fmt.Errorf("-difficulty %g: want 2^-40..2^62", c.difficulty))
	}
	if c.branch < 0 || c.branch > 20 {
		errs = append(errs, fmt.Errorf("-branch %d: want 0..20", c.branch))
	}
	if c.interval != 0 && c.interval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("-job-interval %v: want 0 or ≥ 100ms", c.interval))
	}
	if c.refresh != 0 && c.refresh < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("-refresh-interval %v: want 0 or ≥ 100ms", c.refresh))
	}
	if c.loops < 0 || c.loops > 256 {
		errs = append(errs, fmt.Errorf("-loops %d: want 0..256", c.loops))
	}
	if c.maxRun <= 0 || c.maxRun > 24*time.Hour {
		errs = append(errs, fmt.Errorf("-max-run %v: want (0, 24h]", c.maxRun))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	return c, errors.Join(errs...)
}

// stats is GET /stats and published one job publication (POST /job,
// SIGUSR1, the interval): the types the scenarios package reads.
type (
	stats     = scenarios.ServerStats
	published = scenarios.JobEvent
)

// node is the running process: one server, its job sequence and output.
type node struct {
	cfg *config
	srv stratumServer

	mu     sync.Mutex // serialises publications and stdout
	height int32
	seq    uint32
	out    *json.Encoder
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "enginesrv:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.maxRun)
	defer cancel()

	dir, err := os.MkdirTemp("", "enginesrv-")
	if err != nil {
		fmt.Fprintln(stderr, "enginesrv:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	n := &node{cfg: cfg, height: 800_000, out: json.NewEncoder(stdout)}
	if cfg.impl == "engine" {
		es, err := newEngineServer(cfg, dir)
		if err != nil {
			fmt.Fprintln(stderr, "enginesrv:", err)
			return 1
		}
		n.srv = es
	} else {
		n.srv = newBaselineServer(cfg)
	}

	ready := make(chan struct{})
	served := make(chan error, 1)
	go func() { served <- n.srv.serve(ctx, ready) }()
	select {
	case <-ready:
	case err := <-served:
		fmt.Fprintln(stderr, "enginesrv:", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.control)
	if err != nil {
		fmt.Fprintln(stderr, "enginesrv: control:", err)
		cancel()
		<-served
		return 1
	}
	hs := &http.Server{Handler: n.mux(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()

	n.publish("start")
	n.mu.Lock()
	n.out.Encode(map[string]any{"event": "ready", "pid": os.Getpid(), "impl": cfg.impl, "server_id": cfg.serverID,
		"listen": cfg.listen, "control": "http://" + ln.Addr().String(), "simulator": cfg.simulator,
		"difficulty": cfg.difficulty, "bits": fmt.Sprintf("%08x", cfg.bits)})
	n.mu.Unlock()

	usr1 := make(chan os.Signal, 4)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	var tick <-chan time.Time
	if cfg.interval > 0 {
		t := time.NewTicker(cfg.interval)
		defer t.Stop()
		tick = t.C
	}
	var refresh <-chan time.Time
	if cfg.refresh > 0 {
		t := time.NewTicker(cfg.refresh)
		defer t.Stop()
		refresh = t.C
	}
	for {
		select {
		case <-usr1:
			n.publish("sigusr1")
		case <-tick:
			n.publish("interval")
		case <-refresh:
			n.refresh()
		case err := <-served:
			if err != nil && ctx.Err() == nil {
				fmt.Fprintln(stderr, "enginesrv:", err)
				return 1
			}
			return 0
		}
	}
}

// publish makes a job on the next height (a new block: clean_jobs), waits
// until every session has it and reports on stdout.
func (n *node) publish(reason string) published {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.height++
	n.seq++
	j := newSyntheticJob(n.height, n.cfg.bits, n.cfg.branch, n.seq, time.Now())
	start := time.Now()
	d, err := n.srv.publish(j)
	p := published{Event: "job", Height: n.height, Reason: reason, BroadcastUs: d.Microseconds(),
		WaitedUs: time.Since(start).Microseconds()}
	var st stats
	n.srv.counters(&st)
	p.Sessions = st.Sessions
	if ps, perr := loadgen.ReadProc(os.Getpid()); perr == nil {
		p.RSSKB = ps.RSSKB
	}
	if err != nil {
		p.Error = err.Error()
	}
	n.out.Encode(p)
	return p
}

// refresh adds a job at the current height: not a new block, so the server
// does not broadcast it at once (the engine sends it at its next periodic
// notify); reported on stdout like a publication.
func (n *node) refresh() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	j := newSyntheticJob(n.height, n.cfg.bits, n.cfg.branch, n.seq, time.Now())
	p := published{Event: "job", Height: n.height, Reason: "refresh"}
	if err := n.srv.add(j); err != nil {
		p.Error = err.Error()
	}
	n.out.Encode(p)
}

func (n *node) stats(gc bool) stats {
	if gc {
		runtime.GC()
		debug.FreeOSMemory()
	}
	st := stats{PID: os.Getpid(), Impl: n.cfg.impl, ServerID: n.cfg.serverID, GC: gc}
	n.srv.counters(&st)
	n.mu.Lock()
	st.Height = n.height
	n.mu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st.HeapInuse, st.StackInuse, st.Goroutines = ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()
	if ps, err := loadgen.ReadProc(os.Getpid()); err == nil {
		st.RSSKB, st.CPUSeconds = ps.RSSKB, ps.CPUTime.Seconds()
	} else {
		st.Error = err.Error()
	}
	return st
}

func (n *node) mux() *http.ServeMux {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /job", func(w http.ResponseWriter, _ *http.Request) {
		p := n.publish("http")
		if p.Error != "" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		reply(w, p)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		reply(w, n.stats(r.URL.Query().Get("gc") == "1"))
	})
	return mux
}
