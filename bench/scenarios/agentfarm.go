package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashpool/hashpool/internal/childproc"
	"github.com/hashpool/hashpool/loadgen"
)

// agentHeaderBytes is the per-segment overhead of the wire estimate: IPv4
// 20 + TCP 20 + timestamps option 12 (Ethernet framing not counted), as
// package agent and loadgen count it.
const agentHeaderBytes = 52

// agentVariant is one btcagent configuration the farm runs behind.
type agentVariant struct {
	label, what string
	exts        []string // the "extensions" config key (nil: left out, the agent's default)
}

// agentVariants: the same agent (batched writes, submit_response_from_server
// on, so that miners get the pool's real verdicts: "rejonly" applies only
// then) with the extensions it asks for by default, then speaking plain
// btcpool protocol.
var agentVariants = []agentVariant{
	{"extensions", `hashpool extensions (no "extensions" key: the agent's default list, negotiated with agent.get_capabilities; see the agent log line)`, nil},
	{"plain", `plain btcpool protocol ("extensions": [])`, []string{}},
}

// agentFigure is one of BtcAgent's published figures for 10,000 miners
// (btccom/btcagent README) and hashpool's target (half of it).
type agentFigure struct {
	what, unit      string
	btcagent, ours  float64
	perMiner        bool // scales with the number of miners (bandwidth, CPU)
	value           func(*agentFarmRun) float64
	format, compare string
}

var agentFigures = []agentFigure{
	{"upstream (farm → pool) wire", "kbps", 150, 75, true, func(m *agentFarmRun) float64 { return m.Window.UpKbps }, "%.1f", "<"},
	{"downstream (pool → farm) wire", "kbps", 50, 25, true, func(m *agentFarmRun) float64 { return m.Window.DownKbps }, "%.1f", "<"},
	{"agent RSS, peak", "MB", 64, 32, false, func(m *agentFarmRun) float64 { return float64(m.RSSKBPeak) / 1024 }, "%.1f", "<"},
	{"agent CPU", "cores", 0.05, 0.025, true, func(m *agentFarmRun) float64 { return m.CPUCores }, "%.4f", "<"},
}

// wireDelta is the upstream link over an interval.
type wireDelta struct {
	Seconds  float64 `json:"seconds"`
	BytesOut uint64  `json:"bytes_out"` // payload agent → pool (tcpi_bytes_acked)
	BytesIn  uint64  `json:"bytes_in"`  // payload pool → agent (tcpi_bytes_received)
	SegsOut  uint64  `json:"segs_out"`
	SegsIn   uint64  `json:"segs_in"`
	UpKbps   float64 `json:"up_wire_kbps"`   // (BytesOut + 52 × SegsOut) × 8 / 1000 / Seconds
	DownKbps float64 `json:"down_wire_kbps"` // (BytesIn + 52 × SegsIn) × 8 / 1000 / Seconds
}

// agentSample is the agent process and its upstream sockets at one moment.
type agentSample struct {
	At      time.Time `json:"at"`
	Wire    sockWire  `json:"wire"`    // summed over every upstream socket seen so far (closed ones at their last reading)
	Sockets int       `json:"sockets"` // upstream sockets seen so far
	RSSKB   int64     `json:"rss_kb"`
	CPU     float64   `json:"cpu_seconds"`
}

// agentFarmRun is one variant's measurement, written as
// <scenario>-<variant>-agent.json.
type agentFarmRun struct {
	Variant       string         `json:"variant"`
	What          string         `json:"what"`
	Config        map[string]any `json:"agent_config"`
	Miners        int            `json:"miners"`
	Window        wireDelta      `json:"window"` // the steady window: warm-up excluded
	Whole         wireDelta      `json:"whole"`  // agent connected → end of the window, ramp included
	Sockets       int            `json:"upstream_sockets"`
	RSSKBIdle     int64          `json:"rss_kb_idle"`
	RSSKBPeak     int64          `json:"rss_kb_peak"` // in the window
	RSSKBEnd      int64          `json:"rss_kb_end"`
	CPUCores      float64        `json:"cpu_cores"`       // in the window
	CPUCoresWhole float64        `json:"cpu_cores_whole"` // ramp included
	PoolLog       []string       `json:"pool_log"`        // the agent's "pool connected" lines
	StatsLog      []string       `json:"stats_log"`       // the agent's own per-minute counters (-stats 1m), the last few
	Engine        ServerStats    `json:"engine"`          // enginesrv counters at the end
	Samples       []agentSample  `json:"samples"`

	rep *loadgen.Report
}

// runAgentFarm: 10,000 stratum miners at a share per 10 s → one
// cmd/btcagent process → one enginesrv, with and without hashpool's
// extensions; the agent's upstream link, RSS and CPU against BtcAgent's
// published figures and hashpool's targets.
func runAgentFarm(ctx context.Context, r *runner, res *Result) error {
	miners := r.scale(10_000, 1_000)
	warm := r.dur(60*time.Second, 15*time.Second)
	window := r.dur(10*time.Minute, 60*time.Second)
	block := r.dur(5*time.Minute, 30*time.Second)
	const refresh = 20 * time.Second
	res.Mode = fmt.Sprintf("simulator: loadgen's miners submit without grinding and the engine skips only the low-difficulty check "+
		"(through an agent a miner cannot be given a difficulty below 1); difficulty %d with per-worker vardiff; "+
		"a job at the same height every %v (btcpool jobmaker's default; the engine notifies the newest every 30 s) and a new block every %v; "+
		"miners use version rolling; measured over a %v window after %v of warm-up (connect, register, vardiff), as BtcAgent's figures exclude the start",
		realisticDifficulty, refresh, block, window, warm)
	bin := filepath.Join(filepath.Dir(r.enginesrv), "btcagent")
	r.logf("building btcagent")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/btcagent")
	build.Dir = r.cfg.Root
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/btcagent: %v\n%s", err, out)
	}
	var runs []*agentFarmRun
	for _, v := range agentVariants {
		m, err := r.agentFarmOnce(ctx, res, v, bin, miners, warm, window, block, refresh)
		if err != nil {
			return fmt.Errorf("%s: %w", v.label, err)
		}
		runs = append(runs, m)
	}
	scale := float64(miners) / 10_000
	for _, m := range runs {
		rep := m.rep
		rej := int64(0)
		for _, n := range rep.Shares.Rejected {
			rej += n
		}
		res.number("%-10s %s", m.Variant, m.What)
		res.number("%-10s miners %d/%d up; %d shares submitted, %d accepted, %d rejected, %d unanswered (miners' count); engine: %d accepted, %d rejected; submit → answer p50 %s p99 %s (miner → agent → pool → agent → miner)",
			m.Variant, rep.Sessions.Up, miners, rep.Shares.Submitted, rep.Shares.Accepted, rej, rep.Shares.Unanswered,
			m.Engine.Accepted, m.Engine.Rejected, ms(rep.Shares.Latency.P50us), ms(rep.Shares.Latency.P99us))
		w := m.Window
		res.number("%-10s upstream link over %.0f s: up %.2f kbps (%d B payload, %d segments), down %.2f kbps (%d B, %d segments); %d upstream socket(s); ramp included (%.0f s): up %.2f, down %.2f kbps",
			m.Variant, w.Seconds, w.UpKbps, w.BytesOut, w.SegsOut, w.DownKbps, w.BytesIn, w.SegsIn, m.Sockets, m.Whole.Seconds, m.Whole.UpKbps, m.Whole.DownKbps)
		res.number("%-10s agent RSS %d KiB idle, peak %d KiB in the window, %d KiB at its end; CPU %.4f cores in the window (%.4f with the ramp)",
			m.Variant, m.RSSKBIdle, m.RSSKBPeak, m.RSSKBEnd, m.CPUCores, m.CPUCoresWhole)
		res.number("%-10s miners' LAN (loadgen's TCP_INFO, whole run): miners → agent %.0f kbps, agent → miners %.0f kbps; %d notifies and %d set_difficulty received",
			m.Variant, rep.Net.TxWireKbps, rep.Net.RxWireKbps, rep.Shares.Notifies, rep.Shares.SetDiffs)
		for _, l := range m.PoolLog {
			res.number("%-10s agent log: %s", m.Variant, l)
		}
		if n := len(m.StatsLog); n > 0 {
			res.number("%-10s agent's own counters (last -stats line): %s", m.Variant, m.StatsLog[n-1])
		}
	}
	for _, m := range runs {
		res.target(m.Variant+": miners up through the agent", fmt.Sprintf("%d of %d", m.rep.Sessions.Up, miners), "all", m.rep.Sessions.Up == int64(miners))
		sub, acc := m.rep.Shares.Submitted, m.rep.Shares.Accepted
		res.target(m.Variant+": shares accepted", fmt.Sprintf("%d of %d submitted; engine %d", acc, sub, m.Engine.Accepted),
			"≥ 99% of submitted", sub > 0 && float64(acc) >= 0.99*float64(sub))
		for _, f := range agentFigures {
			v := f.value(m)
			meas := fmt.Sprintf(f.format+" %s", v, f.unit)
			bt, ours := f.btcagent, f.ours
			note := ""
			if f.perMiner && scale != 1 {
				bt, ours = bt*scale, ours*scale
				note = fmt.Sprintf(", scaled to %d miners", miners)
			}
			res.target(fmt.Sprintf("%s: %s vs BtcAgent", m.Variant, f.what), meas,
				fmt.Sprintf("< %.4g %s (BtcAgent, 10,000 miners%s)", bt, f.unit, note), v < bt)
			res.target(fmt.Sprintf("%s: %s, hashpool target", m.Variant, f.what), meas,
				fmt.Sprintf("≤ %.4g %s%s", ours, f.unit, note), v <= ours)
		}
	}
	if len(runs) == 2 {
		e, p := runs[0], runs[1]
		res.reference("upstream kbps, plain ÷ extensions", fmt.Sprintf("%.2fx (%.2f vs %.2f kbps)", ratio(p.Window.UpKbps, e.Window.UpKbps), e.Window.UpKbps, p.Window.UpKbps), "what the extensions save")
		res.reference("downstream kbps, plain ÷ extensions", fmt.Sprintf("%.2fx (%.2f vs %.2f kbps)", ratio(p.Window.DownKbps, e.Window.DownKbps), e.Window.DownKbps, p.Window.DownKbps), "what the extensions save")
	}
	res.Notes = append(res.Notes,
		"wire estimate: TCP_INFO of the agent's upstream socket(s), read from outside the agent with pidfd_getfd once a second: payload (tcpi_bytes_acked out, tcpi_bytes_received in) + 52 B per segment (tcpi_segs_out / tcpi_segs_in: data, pure ACKs, retransmissions; IPv4 20 + TCP 20 + timestamps 12, no Ethernet framing)",
		"loopback's MSS is ~65 KB: a write larger than ~1448 B (a notify with a 12-step branch is ~1.3 KB) would take more segments on a real link, adding ~52 B per extra segment",
		"the agent, loadgen and enginesrv share the 2 cores with other engineers' work; agent CPU is its /proc utime+stime over the window")
	if r.cfg.Quick {
		res.Notes = append(res.Notes, fmt.Sprintf("quick runs %d miners: bandwidth and CPU figures are scaled by miners/10,000, RSS is not", miners))
	}
	return nil
}

// agentFarmOnce runs one variant: a fresh enginesrv, a fresh btcagent, the
// miners, the sampler.
func (r *runner) agentFarmOnce(ctx context.Context, res *Result, v agentVariant, bin string, miners int, warm, window, block, refresh time.Duration) (*agentFarmRun, error) {
	enginePort, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := r.server(ctx, res, "engine-"+v.label, "-listen", "127.0.0.1:"+strconv.Itoa(enginePort), "-simulator",
		"-difficulty", strconv.Itoa(realisticDifficulty), "-job-interval", block.String(), "-refresh-interval", refresh.String())
	if err != nil {
		return nil, err
	}
	defer p.stop()
	agentPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "agent-farm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	conf := map[string]any{
		"agent_listen_ip": "127.0.0.1", "agent_listen_port": agentPort,
		"pools":                       [][]any{{"127.0.0.1", enginePort, "farm"}},
		"submit_response_from_server": true,
	}
	if v.exts != nil {
		conf["extensions"] = v.exts
	}
	cb, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	confPath, logDir := filepath.Join(dir, "agent_conf.json"), filepath.Join(dir, "log")
	if err := os.WriteFile(confPath, cb, 0o644); err != nil {
		return nil, err
	}
	res.Commands = append(res.Commands, fmt.Sprintf("btcagent -c agent_conf.json -l log   # agent_conf.json: %s", cb))
	r.logf("start agent (%s): btcagent -c %s -l %s: %s", v.label, confPath, logDir, cb)
	a, err := startAgent(ctx, bin, "-c", confPath, "-l", logDir)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	agentAddr := "127.0.0.1:" + strconv.Itoa(agentPort)
	if err := a.waitReady(ctx, agentAddr, enginePort); err != nil {
		return nil, err
	}
	m := &agentFarmRun{Variant: v.label, What: v.what, Config: conf, Miners: miners}

	smp := &agentSampler{pid: a.pid, port: enginePort, seen: map[uint64]sockWire{}}
	first, err := smp.take()
	if err != nil {
		return nil, err
	}
	m.RSSKBIdle = first.RSSKB
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { smp.run(sctx) })

	s := loadgen.DefaultScenario()
	s.URL, s.Miners, s.Rate, s.SimulatorMode, s.VersionRolling = agentAddr, miners, 0.1, true, true
	s.Duration, s.PID = warm+window+3*time.Second, a.pid
	s.SourceIPs, s.ConnectRate = []string{sourceIPs}, 2000
	t0 := time.Now()
	rep, err := r.load(ctx, res, v.label, res.Name+"-"+v.label+".json", s)
	cancel()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	m.rep = rep
	if !a.alive() {
		return nil, fmt.Errorf("btcagent exited during the run: %s", a.stderrText())
	}
	time.Sleep(1500 * time.Millisecond) // the last share-record batch
	if m.Engine, err = p.stats(ctx, false); err != nil {
		return nil, err
	}
	m.PoolLog, m.StatsLog = agentLogLines(filepath.Join(logDir, "btcagent.log"))

	m.Samples = smp.all()
	from, to := t0.Add(warm), t0.Add(warm+window)
	var wa, wb *agentSample
	for i := range m.Samples {
		sm := &m.Samples[i]
		if wa == nil && !sm.At.Before(from) {
			wa = sm
		}
		if !sm.At.After(to) {
			wb = sm
		}
	}
	if wa == nil || wb == nil || !wb.At.After(wa.At) {
		return nil, fmt.Errorf("no samples in the window (%d samples)", len(m.Samples))
	}
	m.Window, m.Whole = delta(wa, wb), delta(&m.Samples[0], wb)
	m.Sockets, m.RSSKBEnd = wb.Sockets, wb.RSSKB
	for i := range m.Samples {
		sm := &m.Samples[i]
		if !sm.At.Before(wa.At) && !sm.At.After(wb.At) {
			m.RSSKBPeak = max(m.RSSKBPeak, sm.RSSKB)
		}
	}
	m.CPUCores = (wb.CPU - wa.CPU) / m.Window.Seconds
	m.CPUCoresWhole = (wb.CPU - m.Samples[0].CPU) / m.Whole.Seconds
	if smp.err != nil {
		res.Notes = append(res.Notes, v.label+": sampler: "+smp.err.Error())
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	file := res.Name + "-" + v.label + "-agent.json"
	if err := os.WriteFile(filepath.Join(r.cfg.OutDir, file), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	res.Reports[v.label+" agent"] = file
	return m, nil
}

// delta is the upstream link from a to b.
func delta(a, b *agentSample) wireDelta {
	d := wireDelta{Seconds: b.At.Sub(a.At).Seconds(), BytesOut: b.Wire.BytesOut - a.Wire.BytesOut, BytesIn: b.Wire.BytesIn - a.Wire.BytesIn,
		SegsOut: b.Wire.SegsOut - a.Wire.SegsOut, SegsIn: b.Wire.SegsIn - a.Wire.SegsIn}
	if d.Seconds > 0 {
		d.UpKbps = float64(d.BytesOut+agentHeaderBytes*d.SegsOut) * 8 / 1000 / d.Seconds
		d.DownKbps = float64(d.BytesIn+agentHeaderBytes*d.SegsIn) * 8 / 1000 / d.Seconds
	}
	return d
}

// agentSampler reads the agent's upstream sockets and /proc once a second.
type agentSampler struct {
	pid, port int

	mu      sync.Mutex
	seen    map[uint64]sockWire // by socket inode: the last reading
	samples []agentSample
	err     error // the first error
}

// maxAgentSamples bounds the samples kept (a day at one a second).
const maxAgentSamples = 86_400

func (s *agentSampler) take() (agentSample, error) {
	w, err := upstreamWire(s.pid, s.port)
	if err != nil {
		return agentSample{}, err
	}
	ps, err := loadgen.ReadProc(s.pid)
	if err != nil {
		return agentSample{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ino, sw := range w {
		s.seen[ino] = sw
	}
	sm := agentSample{At: ps.At, Sockets: len(s.seen), RSSKB: ps.RSSKB, CPU: ps.CPUTime.Seconds()}
	for _, sw := range s.seen {
		sm.Wire.BytesOut += sw.BytesOut
		sm.Wire.BytesIn += sw.BytesIn
		sm.Wire.SegsOut += sw.SegsOut
		sm.Wire.SegsIn += sw.SegsIn
	}
	if len(s.samples) < maxAgentSamples {
		s.samples = append(s.samples, sm)
	}
	return sm, nil
}

func (s *agentSampler) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range maxAgentSamples {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.take(); err != nil {
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
		}
	}
}

func (s *agentSampler) all() []agentSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]agentSample(nil), s.samples...)
}

// agentProc is a running cmd/btcagent.
type agentProc struct {
	proc   *childproc.Process
	pid    int
	stderr *stderrBuffer // its stdout and stderr
}

func startAgent(ctx context.Context, bin string, args ...string) (*agentProc, error) {
	a := &agentProc{}
	p, stderr, err := startChild(ctx, nil, bin, args...)
	if err != nil {
		return nil, fmt.Errorf("btcagent: %w", err)
	}
	a.proc, a.pid, a.stderr = p, p.Pid, stderr
	return a, nil
}

func (a *agentProc) alive() bool { return a.proc.Running() }

func (a *agentProc) stderrText() string { return a.stderr.String() }

// waitReady waits (at most 30 s) until the agent accepts miners on addr
// and holds an upstream connection to enginePort.
func (a *agentProc) waitReady(ctx context.Context, addr string, enginePort int) error {
	deadline := time.Now().Add(30 * time.Second)
	listening := false
	for time.Now().Before(deadline) {
		if !a.alive() {
			return fmt.Errorf("btcagent exited at start: %s", a.stderrText())
		}
		if !listening {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				listening = true
			}
		}
		if listening {
			w, err := upstreamWire(a.pid, enginePort)
			if err != nil {
				return err
			}
			if len(w) > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("btcagent: not listening with an upstream connection within 30 s: " + a.stderrText())
}

// stop sends SIGTERM and waits; after 20 s the agent is killed.
func (a *agentProc) stop() { a.proc.Stop(syscall.SIGTERM, 20*time.Second) }

// agentLogLines returns the agent log's "pool connected" lines (at most 8),
// which say which extensions were negotiated, and its last 16 "stats"
// lines (the agent's own counters, a cross-check); each cut to 400 bytes.
func agentLogLines(path string) (pool, stats []string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for n := 0; sc.Scan() && n < 1_000_000; n++ {
		l := sc.Text()
		l = l[:min(len(l), 400)]
		switch {
		case strings.Contains(l, "pool connected") && len(pool) < 8:
			pool = append(pool, l)
		case strings.Contains(l, "msg=stats"):
			if len(stats) == 16 {
				stats = stats[1:]
			}
			stats = append(stats, l)
		}
	}
	return pool, stats
}

// parseProcNetTCP adds to inodes the sockets of a /proc/net/tcp table
// connected to 127.0.0.1:port, in any state that still has a socket (an
// inode: not TIME_WAIT), so a connection the pool closed is read once more.
// The remote address must match, not only the port: a miner's connection
// from another 127.0.0.x may come from the same port number.
func parseProcNetTCP(b []byte, port int, inodes map[uint64]bool) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 1<<16)
	first := true
	for n := 0; sc.Scan() && n < 10_000_000; n++ {
		if first { // header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		raddr, rport, ok := strings.Cut(f[2], ":")
		if !ok || raddr != "0100007F" { // 127.0.0.1, little-endian hex
			continue
		}
		p, err := strconv.ParseUint(rport, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || inode == 0 {
			continue
		}
		inodes[inode] = true
	}
	return sc.Err()
}
