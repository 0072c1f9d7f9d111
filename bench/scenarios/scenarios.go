package scenarios

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashpool/hashpool/loadgen"
)

// Scenario constants that both sizes share.
const (
	// grindDifficulty is the share difficulty of stratum-10k: 2^-24, about
	// 256 nonces (≈ 60 µs of SHA-NI) per share, cheap enough for 10,000
	// shares/s on the loadgen side, and the same real work for the engine
	// and the baseline (which has no simulator mode).
	grindExp = -24
	// realisticDifficulty is what simulator-mode scenarios give miners (the
	// engine skips only the low-difficulty check, as btcpool's simulator).
	realisticDifficulty = 65536
	// sourceIPs spread the client side over enough addresses that no
	// address runs out of its ~28,000 ephemeral ports.
	sourceIPs = "127.0.0.2-127.0.0.21"
	// agentJobInterval is how often scenarios with agent miners publish a
	// new block: a registered agent miner may submit only once a notify
	// after its registration has told it its difficulty (MINING_SET_DIFF),
	// and without new jobs that would be the engine's 30 s refresh.
	agentJobInterval = "10s"
)

// measured is one server's side of a load run.
type measured struct {
	rep     *loadgen.Report
	servers []Server
	wall    time.Duration
}

// measure samples the servers idle, runs the load with the sampler on and
// collects the servers' end counters.
func (r *runner) measure(ctx context.Context, res *Result, label, file string, procs []*serverProc, s loadgen.Scenario, gcAt time.Duration) (*measured, error) {
	m := &measured{servers: make([]Server, len(procs))}
	for i, p := range procs {
		settle(ctx, p)
		st, err := p.stats(ctx, true)
		if err != nil {
			return nil, err
		}
		m.servers[i] = Server{Label: p.label, Idle: st}
	}
	smp, stop := sample(ctx, procs, gcAt)
	start := time.Now()
	rep, err := r.load(ctx, res, label, file, s)
	m.wall = time.Since(start)
	stop()
	if err != nil {
		return nil, err
	}
	m.rep = rep
	// The engine hands share records to the bus once a second: let the
	// last batch reach the draining consumer before reading the counters.
	time.Sleep(1500 * time.Millisecond)
	for i, p := range procs {
		sv := &m.servers[i]
		sv.Loaded, sv.PeakSess, sv.PeakFDs = smp.gc[i], smp.peakSess[i], smp.peakFDs[i]
		end, err := p.stats(ctx, false)
		if err != nil {
			return nil, err
		}
		sv.End = end
		sv.CPUCores = (end.CPUSeconds - sv.Idle.CPUSeconds) / m.wall.Seconds()
	}
	res.Notes = append(res.Notes, smp.errs...)
	return m, nil
}

// rssPerSession is (loaded − idle RSS) over sessions, in bytes.
func rssPerSession(servers []Server, sessions int64) float64 {
	var d int64
	for _, s := range servers {
		d += s.Loaded.RSSKB - s.Idle.RSSKB
	}
	if sessions <= 0 {
		return 0
	}
	return float64(d) * 1024 / float64(sessions)
}

func ms(us uint64) string { return strconv.FormatFloat(float64(us)/1000, 'f', 2, 64) + " ms" }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// runStratum: 10,000 miners grinding real shares at 1 share/s each, against
// the engine and then the baseline.
func runStratum(ctx context.Context, r *runner, res *Result) error {
	miners := r.scale(10_000, 1_000)
	dur := r.dur(60*time.Second, 15*time.Second)
	diff := math.Ldexp(1, grindExp)
	res.Mode = fmt.Sprintf("grind: real shares at fixed difficulty 2^%d (%g) on both servers, jobs with mainnet bits (no share solves a block)", grindExp, diff)
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	d := strconv.FormatFloat(diff, 'g', -1, 64)
	out := map[string]*measured{}
	for _, impl := range []string{"engine", "baseline"} {
		p, err := r.server(ctx, res, impl, "-impl", impl, "-listen", addr, "-difficulty", d, "-fixed-difficulty", "-job-interval", "0")
		if err != nil {
			return err
		}
		s := loadgen.DefaultScenario()
		s.URL, s.Miners, s.Rate, s.Duration, s.PID = addr, miners, 1, dur, p.pid
		s.SourceIPs, s.ConnectRate, s.MaxGrindHashes = []string{sourceIPs}, 2000, 1<<22
		file := res.Name + ".json"
		if impl != "engine" {
			file = res.Name + "-" + impl + ".json"
		}
		m, err := r.measure(ctx, res, impl, file, []*serverProc{p}, s, dur-5*time.Second)
		p.stop()
		if err != nil {
			return err
		}
		out[impl] = m
	}
	e, b := out["engine"], out["baseline"]
	for _, impl := range []string{"engine", "baseline"} {
		m := out[impl]
		rep, sv := m.rep, m.servers[0]
		rej := int64(0)
		for _, n := range rep.Shares.Rejected {
			rej += n
		}
		res.number("%-8s sessions %d/%d up, %d accepted (%.0f/s), %d rejected, %d unanswered; submit latency p50 %s p99 %s max %s",
			impl, rep.Sessions.Up, rep.Sessions.Wanted, rep.Shares.Accepted, rep.Shares.PerSecond, rej, rep.Shares.Unanswered,
			ms(rep.Shares.Latency.P50us), ms(rep.Shares.Latency.P99us), ms(rep.Shares.Latency.MaxUs))
		res.number("%-8s server RSS %d KiB idle → %d KiB loaded (after GC), %.0f B/session; CPU %.2f cores; loadgen ground %.1f MH/s",
			impl, sv.Idle.RSSKB, sv.Loaded.RSSKB, rssPerSession(m.servers, rep.Sessions.Up), sv.CPUCores, rep.Shares.MHps)
		res.Servers = append(res.Servers, sv)
	}
	offered := float64(miners)
	res.target("engine accepted shares/s", fmt.Sprintf("%.0f", e.rep.Shares.PerSecond), fmt.Sprintf("≥ 90%% of %d miners × 1/s", miners),
		e.rep.Shares.PerSecond >= 0.9*offered)
	res.target("submit latency p99, baseline ÷ engine", fmt.Sprintf("%.2fx (%s vs %s)", ratio(float64(b.rep.Shares.Latency.P99us), float64(e.rep.Shares.Latency.P99us)),
		ms(e.rep.Shares.Latency.P99us), ms(b.rep.Shares.Latency.P99us)), "≥ 1x (engine no slower)", e.rep.Shares.Latency.P99us <= b.rep.Shares.Latency.P99us)
	ec, bc := e.servers[0].CPUCores/max(e.rep.Shares.PerSecond, 1)*1000, b.servers[0].CPUCores/max(b.rep.Shares.PerSecond, 1)*1000
	res.target("server CPU per 1,000 shares/s, baseline ÷ engine", fmt.Sprintf("%.2fx (%.3f vs %.3f cores)", ratio(bc, ec), ec, bc), "> 1x", ec < bc)
	er, br := rssPerSession(e.servers, e.rep.Sessions.Up), rssPerSession(b.servers, b.rep.Sessions.Up)
	res.target("server RSS per busy session, baseline ÷ engine", fmt.Sprintf("%.1fx (%.0f B vs %.0f B)", ratio(br, er), er, br), "> 1x", er < br && er > 0)
	return nil
}

// runBroadcast: 10,000 idle sessions, 10 new-block jobs published over the
// control endpoint; fan-out measured from the publish call to each miner.
func runBroadcast(ctx context.Context, r *runner, res *Result) error {
	miners := r.scale(10_000, 1_000)
	jobs := r.scale(10, 5)
	res.Mode = "no shares (rate 0): idle authorized sessions at difficulty 65536"
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	type side struct {
		m         *measured
		full      []uint64 // per published job: publish → last receipt, µs
		broadcast []int64  // the server's own measure, µs
		complete  int      // jobs every session received
	}
	out := map[string]*side{}
	for _, impl := range []string{"engine", "baseline"} {
		p, err := r.server(ctx, res, impl, "-impl", impl, "-listen", addr, "-difficulty", strconv.Itoa(realisticDifficulty), "-job-interval", "0")
		if err != nil {
			return err
		}
		sd := &side{}
		var mu sync.Mutex
		s := loadgen.DefaultScenario()
		s.URL, s.Miners, s.Rate, s.PID = addr, miners, 0, p.pid
		s.SourceIPs, s.ConnectRate = []string{sourceIPs}, 2000
		s.PublishEvery = time.Second
		// Ramp (≈ miners/2000 s), then one job a second, and a margin.
		s.Duration = time.Duration(miners/2000+jobs+6) * time.Second
		s.Publish = func(ctx context.Context, n int) error {
			if n >= jobs {
				<-ctx.Done()
				return ctx.Err()
			}
			ev, err := p.publish(ctx)
			if err != nil {
				return err
			}
			mu.Lock()
			sd.broadcast = append(sd.broadcast, ev.BroadcastUs)
			mu.Unlock()
			return nil
		}
		file := res.Name + ".json"
		if impl != "engine" {
			file = res.Name + "-" + impl + ".json"
		}
		m, err := r.measure(ctx, res, impl, file, []*serverProc{p}, s, s.Duration-3*time.Second)
		p.stop()
		if err != nil {
			return err
		}
		sd.m = m
		for _, j := range m.rep.Fanout.Seen {
			if j.Publish == 0 {
				continue
			}
			sd.full = append(sd.full, uint64(max(j.Last-j.Publish, 0)/1000))
			if int64(j.Count) >= m.rep.Sessions.Up {
				sd.complete++
			}
		}
		slices.Sort(sd.full)
		m.servers[0].Broadcast = sd.broadcast
		out[impl] = sd
	}
	pct := func(xs []uint64, q float64) uint64 {
		if len(xs) == 0 {
			return 0
		}
		return xs[min(len(xs)-1, int(math.Ceil(q*float64(len(xs))))-1)]
	}
	med := func(xs []int64) int64 {
		if len(xs) == 0 {
			return 0
		}
		ys := slices.Clone(xs)
		slices.Sort(ys)
		return ys[len(ys)/2]
	}
	for _, impl := range []string{"engine", "baseline"} {
		sd := out[impl]
		rep := sd.m.rep
		res.number("%-8s %d sessions up; %d jobs published, %d reached every session; publish → last miner p50 %s p99 %s; per receipt p50 %s p99 %s; server-side broadcast median %s; RSS %d KiB",
			impl, rep.Sessions.Up, len(sd.full), sd.complete, ms(pct(sd.full, 0.5)), ms(pct(sd.full, 0.99)),
			ms(rep.Fanout.Receipt.P50us), ms(rep.Fanout.Receipt.P99us), ms(uint64(med(sd.broadcast))), sd.m.servers[0].Loaded.RSSKB)
		res.Servers = append(res.Servers, sd.m.servers[0])
	}
	e, b := out["engine"], out["baseline"]
	res.target("new-block jobs that reached every engine session", fmt.Sprintf("%d of %d", e.complete, len(e.full)), fmt.Sprintf("all %d", jobs),
		e.complete == jobs && len(e.full) == jobs)
	ep50, bp50 := pct(e.full, 0.5), pct(b.full, 0.5)
	ep99, bp99 := pct(e.full, 0.99), pct(b.full, 0.99)
	res.target("fan-out publish → last miner p50, baseline ÷ engine", fmt.Sprintf("%.2fx (%s vs %s)", ratio(float64(bp50), float64(ep50)), ms(ep50), ms(bp50)), "> 1x", ep50 > 0 && ep50 < bp50)
	res.target("fan-out publish → last miner p99, baseline ÷ engine", fmt.Sprintf("%.2fx (%s vs %s)", ratio(float64(bp99), float64(ep99)), ms(ep99), ms(bp99)), "> 1x", ep99 > 0 && ep99 < bp99)
	res.Notes = append(res.Notes, "fan-out is measured from just before the HTTP POST /job that makes the server publish, so it includes one loopback HTTP round trip (~0.2 ms); loadgen's miners read in their own goroutines, so the last receipt also waits for the client side to be scheduled")
	return nil
}

// runSessions: three engine processes share one port with SO_REUSEPORT;
// stratum miners from several loadgen processes and source addresses plus
// agent-multiplexed miners, 100,000+ sessions in all.
func runSessions(ctx context.Context, r *runner, res *Result) error {
	stratum := r.scale(45_000, 4_500)
	agents := r.scale(6, 2)
	perAgent := r.scale(10_000, 3_000)
	procs := r.scale(4, 2)
	dur := r.dur(75*time.Second, 25*time.Second)
	want := int64(stratum + agents*perAgent)
	res.Mode = "simulator: loadgen submits without grinding, the engine skips only the low-difficulty check (the agent protocol cannot express difficulty < 1); difficulty 65536 with vardiff; a new block every " + agentJobInterval + "; stratum and agent miners at a share per 30 s"
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var servers []*serverProc
	defer func() {
		for _, p := range servers {
			p.stop()
		}
	}()
	for id := 1; id <= 3; id++ {
		p, err := r.server(ctx, res, fmt.Sprintf("engine-%d", id), "-listen", addr, "-server-id", strconv.Itoa(id),
			"-simulator", "-difficulty", strconv.Itoa(realisticDifficulty), "-job-interval", agentJobInterval)
		if err != nil {
			return err
		}
		servers = append(servers, p)
	}
	s := loadgen.DefaultScenario()
	s.URL, s.Miners, s.Agents, s.MinersPerAgent = addr, stratum, agents, perAgent
	s.Rate, s.Duration, s.SimulatorMode, s.Procs = 1.0/30, dur, true, procs
	s.SourceIPs, s.ConnectRate = []string{sourceIPs}, 3000
	m, err := r.measure(ctx, res, "engine", res.Name+".json", servers, s, dur-12*time.Second)
	if err != nil {
		return err
	}
	rep := m.rep
	total := rep.Sessions.Up - int64(rep.Scenario.Agents) + rep.Sessions.WorkersUp // agent connections carry miners, not count as ones
	var accepted, records int64
	maxFDs := 0
	for _, sv := range m.servers {
		accepted += sv.End.Accepted
		records += sv.End.RecordsConsumed
		maxFDs = max(maxFDs, sv.PeakFDs)
		res.number("%s: %d connections at peak, %d fds at peak, RSS %d KiB idle → %d KiB loaded (after GC), %.2f cores, %d shares accepted, %d records drained",
			sv.Label, sv.PeakSess, sv.PeakFDs, sv.Idle.RSSKB, sv.Loaded.RSSKB, sv.CPUCores, sv.End.Accepted, sv.End.RecordsConsumed)
	}
	res.Servers = m.servers
	perSess := rssPerSession(m.servers, total)
	res.number("sessions: %d stratum up of %d, %d agent miners registered of %d over %d agent connections: %d in all; connect ramp %.1f s (%.0f connections/s over %d loadgen processes)",
		rep.Sessions.Up-int64(agents), stratum, rep.Sessions.WorkersUp, agents*perAgent, agents, total, rep.Sessions.RampSeconds, rep.Sessions.ConnectRate, rep.Procs)
	res.number("shares: %d submitted, %d accepted by loadgen's count (%.0f/s), %d by the servers'; submit latency p50 %s p99 %s",
		rep.Shares.Submitted, rep.Shares.Accepted, rep.Shares.PerSecond, accepted, ms(rep.Shares.Latency.P50us), ms(rep.Shares.Latency.P99us))
	res.number("RSS per session over the three processes: %.0f B (all sessions, stratum and agent miners)", perSess)
	goal := int64(100_000)
	if r.cfg.Quick {
		goal = 10_000
	}
	res.target("sessions up at once", strconv.FormatInt(total, 10), fmt.Sprintf("≥ %d", goal), total >= goal && total >= want*99/100)
	res.target("server RSS per session", fmt.Sprintf("%.0f B", perSess), "< 2 KB (btcpool ≈ 10.6 KB)", perSess > 0 && perSess < 2048)
	res.target("descriptors per server process", fmt.Sprintf("peak %d", maxFDs), "< 20,000", maxFDs > 0 && maxFDs < 20_000)
	res.target("shares accepted by the servers", strconv.FormatInt(accepted, 10), "> 0, every record drained from the bus", accepted > 0 && records >= accepted)
	return nil
}

// runFarm: one agent connection carrying 10,000 miners at a share per 10 s.
func runFarm(ctx context.Context, r *runner, res *Result) error {
	miners := r.scale(10_000, 1_000)
	dur := r.dur(60*time.Second, 15*time.Second)
	res.Mode = "simulator (the agent protocol cannot express difficulty < 1): difficulty 65536 with per-worker vardiff; a new block every " + agentJobInterval
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := r.server(ctx, res, "engine", "-listen", addr, "-simulator", "-difficulty", strconv.Itoa(realisticDifficulty), "-job-interval", agentJobInterval)
	if err != nil {
		return err
	}
	defer p.stop()
	s := loadgen.DefaultScenario()
	s.URL, s.Miners, s.Agents, s.MinersPerAgent = addr, 0, 1, miners
	s.Rate, s.Duration, s.SimulatorMode, s.PID = 0.1, dur, true, p.pid
	m, err := r.measure(ctx, res, "engine", res.Name+".json", []*serverProc{p}, s, dur-5*time.Second)
	if err != nil {
		return err
	}
	rep, sv := m.rep, m.servers[0]
	res.Servers = m.servers
	n := rep.Net
	res.number("agent miners %d registered of %d; %d shares submitted, %d accepted (%.0f/s); submit→SUBMIT_RESPONSE p50 %s p99 %s",
		rep.Sessions.WorkersUp, miners, rep.Shares.Submitted, rep.Shares.Accepted, rep.Shares.PerSecond, ms(rep.Shares.Latency.P50us), ms(rep.Shares.Latency.P99us))
	res.number("upstream (farm → pool) %.1f kbps on the wire: %d B payload in %d segments; downstream %.1f kbps: %d B in %d segments (TCP_INFO, +%d B per segment)",
		n.TxWireKbps, n.TxBytes, n.TxSegs, n.RxWireKbps, n.RxBytes, n.RxSegs, n.HeaderPerSeg)
	res.number("server: RSS %d KiB idle → %d KiB loaded (after GC), %.0f B per agent miner, CPU %.3f cores",
		sv.Idle.RSSKB, sv.Loaded.RSSKB, rssPerSession(m.servers, rep.Sessions.WorkersUp), sv.CPUCores)
	perShare := ratio(float64(n.TxWireBytes), float64(rep.Shares.Submitted))
	res.reference("upstream wire bytes per share (agent)", fmt.Sprintf("%.1f B", perShare), "stratum miners: see below")
	if st := readReport(filepath.Join(r.cfg.OutDir, "stratum-10k.json")); st != nil && st.Shares.Submitted > 0 {
		sp := float64(st.Net.TxWireBytes) / float64(st.Shares.Submitted)
		res.target("upstream wire bytes per share, stratum ÷ agent", fmt.Sprintf("%.1fx (%.1f B vs %.1f B, stratum-10k of this run)", ratio(sp, perShare), perShare, sp),
			"> 1x: the agent protocol saves bandwidth", perShare > 0 && perShare < sp)
	}
	res.target("agent miners registered", fmt.Sprintf("%d of %d", rep.Sessions.WorkersUp, miners), "all", rep.Sessions.WorkersUp == int64(miners))
	res.reference("upstream wire kbps for the farm", fmt.Sprintf("%.1f kbps (%.2f kbps per 1,000 miners)", n.TxWireKbps, n.TxWireKbps*1000/float64(miners)), "BtcAgent's point: a farm fits a thin uplink")
	return nil
}

// readReport reads a loadgen JSON report (nil if absent or unreadable).
func readReport(path string) *loadgen.Report {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var rep loadgen.Report
	if json.Unmarshal(b, &rep) != nil {
		return nil
	}
	return &rep
}
