package scenarios

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/hashpool/hashpool/loadgen"
)

// sv2Sizes sizes sv1-vs-sv2: miners per run, new blocks in the job run,
// the share rate and how long shares are submitted.
type sv2Sizes struct {
	miners    int
	jobs      int
	rate      float64
	shareTime time.Duration
}

// sv2Protocols are the miners of the three rounds, in order.
var sv2Protocols = []string{"", loadgen.SV2Standard, loadgen.SV2Extended}

func protoLabel(sv2 string) string {
	if sv2 == "" {
		return "sv1"
	}
	return "sv2-" + sv2
}

// runSV1vsSV2: the same miners speaking Stratum V1, then Stratum V2 with
// standard channels, then with extended channels. Each protocol gets two
// runs against a fresh server: one where miners only receive new blocks
// (bytes per job) and one where they only submit real shares (bytes per
// share, server CPU per share and RSS per session).
func runSV1vsSV2(ctx context.Context, r *runner, res *Result) error {
	return compareSV1SV2(ctx, r, res, sv2Sizes{miners: r.scale(10_000, 1_000), jobs: r.scale(10, 5),
		rate: 0.2, shareTime: r.dur(20*time.Second, 10*time.Second)})
}

// sv2Round is what one protocol measured.
type sv2Round struct {
	proto       string
	jobs, share *loadgen.Report
	server      Server // of the share run: Idle before it, Loaded at the end of its submit window, End after it
	sessions    int64  // up when the loaded RSS was read
	// The server at the start and the end of the share run's submit
	// window (after the connect phase): CPU per share is their difference.
	win0, win1 ServerStats
	winSeconds float64
}

func compareSV1SV2(ctx context.Context, r *runner, res *Result, z sv2Sizes) error {
	diff := math.Ldexp(1, grindExp)
	d := strconv.FormatFloat(diff, 'g', -1, 64)
	res.Mode = fmt.Sprintf("grind: real shares at fixed difficulty 2^%d on every server, version rolling on, jobs shaped alike (46+103-byte coinbase halves around a 12-byte extranonce, 12-step branch, mainnet bits)", grindExp)
	res.Notes = append(res.Notes,
		"SV1 server: enginesrv (the engine). SV2 server: sv2pool, the plain-net SV2 pool role (a goroutine pair per connection) in the scenario's own process, until the engine serves SV2; its CPU and RSS are that process's, the loadgen miners running in child processes",
		"bytes per job = bytes after each connection's setup ÷ jobs received after it (SV1: mining.notify; SV2: the job message and its SetNewPrevHash); bytes per share = bytes after setup in the share run ÷ shares, less any job re-sent meanwhile at the job run's price; wire = payload + 52 B per segment (TCP_INFO)")
	var rounds []*sv2Round
	for _, proto := range sv2Protocols {
		rd, err := r.sv2Round(ctx, res, proto, d, diff, z)
		if err != nil {
			return err
		}
		rounds = append(rounds, rd)
	}
	byProto := map[string]*sv2Round{}
	for _, rd := range rounds {
		byProto[rd.proto] = rd
		rd.report(res)
		res.Servers = append(res.Servers, rd.server)
	}
	v1 := byProto["sv1"]
	for _, proto := range []string{"sv2-standard", "sv2-extended"} {
		v2 := byProto[proto]
		a, b := v1.sharePayload(), v2.sharePayload()
		res.target(proto+" payload bytes per share (up+down), SV1 ÷ SV2", fmt.Sprintf("%.2fx (%.0f B vs %.0f B)", ratio(a, b), b, a), "> 1x (SV2 lighter)", b > 0 && b < a)
		a, b = v1.shareWire(), v2.shareWire()
		res.reference(proto+" wire bytes per share (up+down), SV1 ÷ SV2", fmt.Sprintf("%.2fx (%.0f B vs %.0f B; %.1f vs %.1f segments)", ratio(a, b), b, a, v2.shareSegs(), v1.shareSegs()),
			"segments depend on the server: an answer that leaves after the kernel's ACK costs a segment each way")
		a, b = v1.jobPayload(), v2.jobPayload()
		res.target(proto+" payload bytes per new-block job (down), SV1 ÷ SV2", fmt.Sprintf("%.2fx (%.0f B vs %.0f B)", ratio(a, b), b, a), "> 1x (SV2 lighter)", b > 0 && b < a)
		a, b = v1.jobWire(), v2.jobWire()
		res.reference(proto+" wire bytes per new-block job (down), SV1 ÷ SV2", fmt.Sprintf("%.2fx (%.0f B vs %.0f B)", ratio(a, b), b, a), "SV2 sends a new block as two frames (job, SetNewPrevHash)")
		a, b = v1.cpuPerShare(), v2.cpuPerShare()
		res.target(proto+" server CPU per share, SV2 vs SV1", fmt.Sprintf("%.1f µs vs %.1f µs", b, a), "≤ SV1 (issue 14; the SV2 server is sv2pool, not yet the engine)", b > 0 && b <= a)
		a, b = v1.rssPerSession(), v2.rssPerSession()
		res.target(proto+" server RSS per session, SV2 vs SV1", fmt.Sprintf("%.0f B vs %.0f B", b, a), "≤ SV1 (issue 14; the SV2 server is sv2pool, not yet the engine)", b > 0 && b <= a)
	}
	return nil
}

// sv2Round runs one protocol's job run and share run against a fresh server.
func (r *runner) sv2Round(ctx context.Context, res *Result, sv2, diffArg string, diff float64, z sv2Sizes) (*sv2Round, error) {
	label := protoLabel(sv2)
	var side poolSide
	if sv2 == "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		listen := "127.0.0.1:" + strconv.Itoa(port)
		p, err := r.server(ctx, res, label, "-impl", "engine", "-listen", listen, "-difficulty", diffArg, "-fixed-difficulty", "-job-interval", "0")
		if err != nil {
			return nil, err
		}
		side = &sv1Side{p: p, listen: listen}
	} else {
		s, err := startSV2Side(diff)
		if err != nil {
			return nil, err
		}
		res.Commands = append(res.Commands, fmt.Sprintf("(in process) sv2pool on %s, initial difficulty %s, authority key %s", s.addr(), diffArg, s.authorityKey()))
		side = s
	}
	defer side.stop()
	rd := &sv2Round{proto: label}
	// The connect phase: two loadgen processes at 2,000 connections/s
	// each; an SV2 connection also costs a Noise handshake, about 1.2 ms of
	// CPU on each side on this machine (BenchmarkHandshake), and the
	// machine is shared.
	ramp := time.Duration(z.miners/2000+3) * time.Second
	if sv2 != "" {
		ramp = time.Duration(z.miners)*4*time.Millisecond + 5*time.Second
	}

	// Job run: no shares, z.jobs new blocks once every session is up.
	s := r.sv2Scenario(side, sv2, z.miners)
	s.Rate, s.Duration = 0, ramp+time.Duration(z.jobs+4)*time.Second
	published := 0
	var wg sync.WaitGroup
	pubCtx, stopPub := context.WithTimeout(ctx, s.Duration)
	wg.Go(func() { published = publishWhenUp(pubCtx, side, int64(z.miners), z.jobs) })
	rep, err := r.loadSV2(ctx, res, label+"-jobs", res.Name+"-"+label+"-jobs.json", s)
	stopPub()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if published < z.jobs {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %d of %d new blocks published before the job run ended", label, published, z.jobs))
	}
	rd.jobs = rep

	// Share run: real shares at z.rate each, no new jobs.
	settleSide(ctx, side)
	idle, err := side.stats(ctx, true)
	if err != nil {
		return nil, err
	}
	s = r.sv2Scenario(side, sv2, z.miners)
	s.Rate, s.SubmitDelay, s.Duration = z.rate, ramp, ramp+z.shareTime
	var loaded ServerStats
	var t0, t1 time.Time
	winCtx, stopWin := context.WithCancel(ctx)
	start := time.Now()
	wg.Go(func() {
		// The submit window: from SubmitDelay to shortly before the end
		// (before loadgen stops submitting and closes).
		if !sleepUntil(winCtx, time.Until(start.Add(ramp))) {
			return
		}
		rd.win0, _ = side.stats(winCtx, false)
		t0 = time.Now()
		if !sleepUntil(winCtx, time.Until(start.Add(s.Duration-2*time.Second))) {
			return
		}
		rd.win1, _ = side.stats(winCtx, false)
		t1 = time.Now()
		loaded, _ = side.stats(winCtx, true)
	})
	rep, err = r.loadSV2(ctx, res, label+"-shares", res.Name+"-"+label+"-shares.json", s)
	stopWin()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if !t1.IsZero() {
		rd.winSeconds = t1.Sub(t0).Seconds()
	}
	if rd.win0.Sessions < int64(z.miners) {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %d of %d sessions up when the submit window began (connect phase %v)", label, rd.win0.Sessions, z.miners, ramp))
	}
	end, err := side.stats(ctx, false)
	if err != nil {
		return nil, err
	}
	rd.share, rd.sessions = rep, loaded.Sessions
	rd.server = Server{Label: label + " (" + side.label() + ")", Idle: idle, Loaded: loaded, End: end, PeakSess: loaded.Sessions}
	if rd.winSeconds > 0 {
		rd.server.CPUCores = (rd.win1.CPUSeconds - rd.win0.CPUSeconds) / rd.winSeconds
	}
	return rd, nil
}

// loadSV2 is r.load that also records the SV2 flags in the command line
// (loadgenCommand knows only Stratum V1's).
func (r *runner) loadSV2(ctx context.Context, res *Result, label, file string, s loadgen.Scenario) (*loadgen.Report, error) {
	n := len(res.Commands)
	rep, err := r.load(ctx, res, label, file, s)
	if s.SV2 != "" && len(res.Commands) > n {
		res.Commands[n] += " -sv2 " + s.SV2 + " -authority-key " + s.AuthorityKey
	}
	return rep, err
}

// sv2Scenario is the loadgen scenario both runs share.
func (r *runner) sv2Scenario(side poolSide, sv2 string, miners int) loadgen.Scenario {
	s := loadgen.DefaultScenario()
	s.URL, s.Miners, s.SV2, s.AuthorityKey, s.PID = side.addr(), miners, sv2, side.authorityKey(), side.pid()
	s.VersionRolling, s.MaxGrindHashes = true, 1<<22
	// Two processes even when one would do: the in-process SV2 server's
	// RSS and CPU must not include the miners.
	s.Procs, s.SourceIPs, s.ConnectRate = 2, []string{sourceIPs}, 2000
	return s
}

// publishWhenUp waits until the server holds every session (at most until
// ctx ends), then publishes n new blocks a second apart; it returns how
// many it published.
func publishWhenUp(ctx context.Context, side poolSide, sessions int64, n int) int {
	for {
		st, err := side.stats(ctx, false)
		if err == nil && st.Sessions >= sessions {
			break
		}
		if !sleepUntil(ctx, 100*time.Millisecond) {
			return 0
		}
	}
	// Let the channels' join jobs and every setup mark land first.
	if !sleepUntil(ctx, time.Second) {
		return 0
	}
	done := 0
	for done < n {
		if side.publish(ctx) != nil {
			return done
		}
		done++
		if !sleepUntil(ctx, time.Second) {
			return done
		}
	}
	return done
}

// settleSide waits (at most 30 s) until the server holds no sessions.
func settleSide(ctx context.Context, side poolSide) {
	for range 300 {
		st, err := side.stats(ctx, false)
		if err != nil || st.Sessions == 0 {
			return
		}
		if !sleepUntil(ctx, 100*time.Millisecond) {
			return
		}
	}
}

func sleepUntil(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jobsAfterSetup is the jobs the miners received after their setup mark
// (every notify or SV2 job message less each connection's first).
func jobsAfterSetup(rep *loadgen.Report) int64 {
	return max(rep.Shares.Notifies-rep.Net.SteadyConns, 0)
}

// perJob returns bytes per job after setup: down payload, down wire, up wire (ACKs).
func (rd *sv2Round) perJob() (down, downWire, upWire float64) {
	n := float64(jobsAfterSetup(rd.jobs))
	if n == 0 {
		return 0, 0, 0
	}
	net := rd.jobs.Net
	return float64(net.SteadyRxBytes) / n, float64(net.SteadyRxWireBytes) / n, float64(net.SteadyTxWireBytes) / n
}

// perShare returns bytes per share in the share run: up and down, payload
// and wire, less jobs re-sent meanwhile at the job run's price.
func (rd *sv2Round) perShare() (up, upWire, down, downWire float64) {
	sh := rd.share
	n := float64(sh.Shares.Submitted)
	if n == 0 {
		return 0, 0, 0, 0
	}
	jd, jdw, juw := rd.perJob()
	extra := float64(jobsAfterSetup(sh))
	net := sh.Net
	return float64(net.SteadyTxBytes) / n, (float64(net.SteadyTxWireBytes) - extra*juw) / n,
		(float64(net.SteadyRxBytes) - extra*jd) / n, (float64(net.SteadyRxWireBytes) - extra*jdw) / n
}

func (rd *sv2Round) shareWire() float64 {
	_, up, _, down := rd.perShare()
	return up + down
}

func (rd *sv2Round) sharePayload() float64 {
	up, _, down, _ := rd.perShare()
	return up + down
}

// shareSegs is segments per share, both directions, in the share run.
func (rd *sv2Round) shareSegs() float64 {
	n := rd.share.Net
	return ratio(float64(n.SteadyTxSegs+n.SteadyRxSegs), float64(rd.share.Shares.Submitted))
}

func (rd *sv2Round) jobPayload() float64 {
	down, _, _ := rd.perJob()
	return down
}

func (rd *sv2Round) jobWire() float64 {
	_, down, _ := rd.perJob()
	return down
}

// cpuPerShare is the server's CPU over the submit window per share it
// accepted in the window (its own count), µs.
func (rd *sv2Round) cpuPerShare() float64 {
	n := rd.win1.Accepted - rd.win0.Accepted
	if n <= 0 || rd.winSeconds == 0 {
		return 0
	}
	return (rd.win1.CPUSeconds - rd.win0.CPUSeconds) * 1e6 / float64(n)
}

func (rd *sv2Round) rssPerSession() float64 {
	return rssPerSession([]Server{rd.server}, rd.sessions)
}

// setupBytes is what connecting cost per session (up, down payload).
func setupBytes(rep *loadgen.Report) (up, down float64) {
	n := rep.Net
	if n.SteadyConns == 0 {
		return 0, 0
	}
	return float64(n.TxBytes-n.SteadyTxBytes) / float64(n.SteadyConns), float64(n.RxBytes-n.SteadyRxBytes) / float64(n.SteadyConns)
}

// report adds the round's numbers to res.
func (rd *sv2Round) report(res *Result) {
	j, sh := rd.jobs, rd.share
	rej := int64(0)
	for _, n := range sh.Shares.Rejected {
		rej += n
	}
	jd, jdw, juw := rd.perJob()
	up, upw, down, downw := rd.perShare()
	su, sd := setupBytes(sh)
	res.number("%-12s shares: %d/%d sessions up (connect ramp %.1f s, %.0f sessions/s), %d submitted, %d accepted, %d rejected, %d unanswered; submit→answer p50 %s p99 %s",
		rd.proto, sh.Sessions.Up, sh.Sessions.Wanted, sh.Sessions.RampSeconds, sh.Sessions.ConnectRate, sh.Shares.Submitted, sh.Shares.Accepted, rej, sh.Shares.Unanswered,
		ms(sh.Shares.Latency.P50us), ms(sh.Shares.Latency.P99us))
	res.number("%-12s per share: up %.1f B payload / %.1f B wire, down %.1f B / %.1f B wire", rd.proto, up, upw, down, downw)
	res.number("%-12s jobs: %d new blocks, %d receipts after setup; per job down %.1f B payload / %.1f B wire, up %.1f B wire (ACKs); fan-out per receipt p50 %s p99 %s",
		rd.proto, j.Fanout.Jobs, jobsAfterSetup(j), jd, jdw, juw, ms(j.Fanout.Receipt.P50us), ms(j.Fanout.Receipt.P99us))
	res.number("%-12s setup per session: up %.0f B, down %.0f B payload; server RSS %d KiB idle → %d KiB with %d sessions (after GC), %.0f B/session; CPU %.1f µs per accepted share (%.2f cores over the %.0f s submit window, %d shares)",
		rd.proto, su, sd, rd.server.Idle.RSSKB, rd.server.Loaded.RSSKB, rd.sessions, rd.rssPerSession(), rd.cpuPerShare(), rd.server.CPUCores, rd.winSeconds, rd.win1.Accepted-rd.win0.Accepted)
	if len(sh.Errors) > 0 || len(j.Errors) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: loadgen errors %d + %d, first: %v %v", rd.proto, j.ErrorCount, sh.ErrorCount, first(j.Errors), first(sh.Errors)))
	}
}

func first(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[0]
}
