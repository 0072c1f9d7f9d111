package loadgen

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashpool/hashpool/codec/stratum"
)

// HeaderBytesPerSegment is the TCP/IP overhead counted for each segment in
// the wire estimate: a 20-byte IPv4 header, a 20-byte TCP header and the
// 12-byte timestamp option Linux sends on every segment by default
// (net.ipv4.tcp_timestamps=1). Link-layer framing (Ethernet's 38 bytes with
// preamble and gap) is not included.
const HeaderBytesPerSegment = 52

// Report is the result of a run (of all processes, merged).
type Report struct {
	Mode     string    `json:"mode"`     // "grind" (real shares), "simulator" (server skips the difficulty check) or "low-difficulty" (every share misses its target)
	Protocol string    `json:"protocol"` // the miners': "sv1", "sv2-standard" or "sv2-extended"
	Target   string    `json:"target"`
	Procs    int       `json:"procs"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Scenario Scenario  `json:"scenario"`

	Sessions Sessions            `json:"sessions"`
	Shares   Shares              `json:"shares"`
	Fanout   Fanout              `json:"fanout"`
	Net      Net                 `json:"net"`
	Server   *ServerStats        `json:"server,omitempty"`
	Bad      map[string]*BadCase `json:"bad_clients,omitempty"`

	Errors     []string `json:"errors,omitempty"` // the first few
	ErrorCount int64    `json:"error_count"`
}

// Sessions counts connections and agent workers.
type Sessions struct {
	Wanted         int     `json:"wanted"`     // miners + agents (bad clients excluded)
	Up             int64   `json:"up"`         // up at the end of the run
	Ever           int64   `json:"ever"`       // sessions that completed the handshake
	Dials          int64   `json:"dials"`      // connection attempts (including bad clients')
	DialFails      int64   `json:"dial_fails"` // connect errors
	HandshakeFails int64   `json:"handshake_fails"`
	Reconnects     int64   `json:"reconnects"`
	RampSeconds    float64 `json:"ramp_seconds"` // first session up → last session up
	ConnectRate    float64 `json:"connect_rate"` // sessions up per second during the ramp
	WorkersWanted  int     `json:"workers_wanted"`
	WorkersUp      int64   `json:"workers_up"` // agent miners registered at the end
	WorkersEver    int64   `json:"workers_ever"`

	FirstUpNs int64 `json:"first_up_ns"`
	LastUpNs  int64 `json:"last_up_ns"`
}

// Shares counts submits and their replies.
type Shares struct {
	Submitted    int64            `json:"submitted"`
	Accepted     int64            `json:"accepted"`
	Rejected     map[string]int64 `json:"rejected"` // by "<code> <message>"
	Unanswered   int64            `json:"unanswered"`
	PerSecond    float64          `json:"accepted_per_second"`
	Latency      Latency          `json:"latency"` // submit → response (agent: SUBMIT_RESPONSE)
	GrindGiveUps int64            `json:"grind_give_ups"`
	Hashes       int64            `json:"hashes"` // nonces tried while grinding
	MHps         float64          `json:"mhash_per_second"`
	Notifies     int64            `json:"notifies"`
	SetDiffs     int64            `json:"set_difficulty"`
	AgentSetDiff int64            `json:"agent_set_diff_frames"`
}

// Fanout measures job broadcast: per receipt, the time from the job's
// publication (Scenario.Publish) or, without the hook, from its first
// receipt in this process, to the receipt.
type Fanout struct {
	Jobs        int     `json:"jobs"`         // distinct jobs broadcast during the run
	Published   int     `json:"published"`    // of those, made by Scenario.Publish
	Receipt     Latency `json:"receipt"`      // per miner connection and job
	FullP50us   uint64  `json:"full_p50_us"`  // per job: reference → last receipt
	FullMaxUs   uint64  `json:"full_max_us"`  //
	MinReceipts int     `json:"min_receipts"` // fewest connections that got one job
	MaxReceipts int     `json:"max_receipts"`

	// Seen is per job key what the miners saw, for merging processes.
	Seen map[string]*JobSeen `json:"seen,omitempty"`
}

// Net sums TCP_INFO over every connection loadgen closed.
type Net struct {
	Conns        int64   `json:"conns"`
	TxBytes      int64   `json:"tx_bytes"` // tcpi_bytes_acked: payload loadgen → server
	RxBytes      int64   `json:"rx_bytes"` // tcpi_bytes_received: payload server → loadgen
	TxSegs       int64   `json:"tx_segs"`  // tcpi_segs_out
	RxSegs       int64   `json:"rx_segs"`  // tcpi_segs_in
	TxWireBytes  int64   `json:"tx_wire_bytes"`
	RxWireBytes  int64   `json:"rx_wire_bytes"`
	TxWireKbps   float64 `json:"tx_wire_kbps"` // (payload + segs × HeaderBytesPerSegment) × 8 / 1000 / seconds
	RxWireKbps   float64 `json:"rx_wire_kbps"`
	HeaderPerSeg int     `json:"header_bytes_per_segment"`

	// Steady* sum, over the miner connections that got through their setup
	// (SV1: subscribe, authorize and the first notify; SV2: Noise,
	// SetupConnection, the channel and its first job), what each carried
	// after it: shares and their answers, new jobs, SetTarget and the ACKs.
	SteadyConns       int64  `json:"steady_conns"`
	SteadyTxBytes     int64  `json:"steady_tx_bytes"`
	SteadyRxBytes     int64  `json:"steady_rx_bytes"`
	SteadyTxSegs      int64  `json:"steady_tx_segs"`
	SteadyRxSegs      int64  `json:"steady_rx_segs"`
	SteadyTxWireBytes int64  `json:"steady_tx_wire_bytes"` // payload + segs × HeaderBytesPerSegment
	SteadyRxWireBytes int64  `json:"steady_rx_wire_bytes"`
	LoopbackNote      string `json:"note"`
}

// build turns a recorder into a Report (one process).
func (r *recorder) build(s *Scenario, target string, elapsed time.Duration) *Report {
	rep := &Report{Mode: modeName(s), Protocol: protocolName(s), Target: target, Procs: 1, Started: r.start, Seconds: elapsed.Seconds(), Scenario: *s}
	rep.Sessions = Sessions{Wanted: s.Miners + s.Agents, Up: r.endSessions, Ever: r.sessionsEver.Load(),
		Dials: r.dials.Load(), DialFails: r.dialFails.Load(), HandshakeFails: r.handshakeFails.Load(),
		Reconnects: r.reconnects.Load(), WorkersWanted: s.Agents * s.MinersPerAgent,
		WorkersUp: r.endWorkers, WorkersEver: r.workersEver.Load(),
		FirstUpNs: r.firstUp.Load(), LastUpNs: r.lastUp.Load()}
	r.mu.Lock()
	rej := make(map[string]int64, len(r.rejects))
	for code, n := range r.rejects {
		rej[rejectName(code)] += n
	}
	for code, n := range r.rejectNames {
		rej[code] += n
	}
	rep.Fanout.Seen = make(map[string]*JobSeen, len(r.jobs))
	for k, j := range r.jobs {
		c := *j
		rep.Fanout.Seen[k] = &c
	}
	if len(r.bad) > 0 {
		rep.Bad = make(map[string]*BadCase, len(r.bad))
		for k, c := range r.bad {
			cc := *c
			rep.Bad[k] = &cc
		}
	}
	rep.Errors, rep.ErrorCount = append([]string(nil), r.errs...), r.errCount
	r.mu.Unlock()
	rep.Shares = Shares{Submitted: r.submitted.Load(), Accepted: r.accepted.Load(), Rejected: rej,
		Unanswered: r.unanswered.Load(), Latency: r.submitLat.Summary(), GrindGiveUps: r.grindGiveUps.Load(),
		Hashes: r.hashes.Load(), Notifies: r.notifies.Load(), SetDiffs: r.setDiffs.Load(), AgentSetDiff: r.agentSetDiffs.Load()}
	rep.Fanout.Receipt = r.fanout.Summary()
	rep.Net = Net{Conns: r.tcpInfoConns.Load(), TxBytes: r.txBytes.Load(), RxBytes: r.rxBytes.Load(),
		TxSegs: r.txSegs.Load(), RxSegs: r.rxSegs.Load(), SteadyConns: r.stConns.Load(),
		SteadyTxBytes: r.stTxBytes.Load(), SteadyRxBytes: r.stRxBytes.Load(), SteadyTxSegs: r.stTxSegs.Load(), SteadyRxSegs: r.stRxSegs.Load()}
	rep.finish()
	return rep
}

func modeName(s *Scenario) string {
	if s.SimulatorMode {
		return "simulator"
	}
	if s.LowDifficulty {
		return "low-difficulty"
	}
	return "grind"
}

func protocolName(s *Scenario) string {
	if s.SV2 != "" {
		return "sv2-" + s.SV2
	}
	return "sv1"
}

// rejectName renders a reject code with btcpool's message.
func rejectName(code int64) string {
	return strconv.FormatInt(code, 10) + " " + stratum.Status(code).String()
}

// finish computes the derived fields.
func (rep *Report) finish() {
	ss := &rep.Sessions
	if ss.FirstUpNs != 0 && ss.LastUpNs > ss.FirstUpNs {
		ss.RampSeconds = float64(ss.LastUpNs-ss.FirstUpNs) / 1e9
		ss.ConnectRate = float64(ss.Ever) / ss.RampSeconds
	}
	if rep.Seconds > 0 {
		rep.Shares.PerSecond = float64(rep.Shares.Accepted) / rep.Seconds
		rep.Shares.MHps = float64(rep.Shares.Hashes) / rep.Seconds / 1e6
	}
	n := &rep.Net
	n.HeaderPerSeg = HeaderBytesPerSegment
	n.TxWireBytes = n.TxBytes + n.TxSegs*HeaderBytesPerSegment
	n.RxWireBytes = n.RxBytes + n.RxSegs*HeaderBytesPerSegment
	n.SteadyTxWireBytes = n.SteadyTxBytes + n.SteadyTxSegs*HeaderBytesPerSegment
	n.SteadyRxWireBytes = n.SteadyRxBytes + n.SteadyRxSegs*HeaderBytesPerSegment
	if rep.Seconds > 0 {
		n.TxWireKbps = float64(n.TxWireBytes) * 8 / 1000 / rep.Seconds
		n.RxWireKbps = float64(n.RxWireBytes) * 8 / 1000 / rep.Seconds
	}
	n.LoopbackNote = "loopback MTU is 64 KiB: bulk writes make fewer, larger segments than on Ethernet (MSS 1448); small stratum messages are one segment either way"
	f := &rep.Fanout
	f.Jobs, f.Published, f.MinReceipts, f.MaxReceipts = len(f.Seen), 0, 0, 0
	var full []uint64
	for _, j := range f.Seen {
		ref := j.First
		if j.Publish != 0 {
			ref = j.Publish
			f.Published++
		}
		full = append(full, uint64(max(j.Last-ref, 0)/1000))
		if f.MinReceipts == 0 || j.Count < f.MinReceipts {
			f.MinReceipts = j.Count
		}
		f.MaxReceipts = max(f.MaxReceipts, j.Count)
	}
	if len(full) > 0 {
		sort.Slice(full, func(a, b int) bool { return full[a] < full[b] })
		f.FullP50us, f.FullMaxUs = full[len(full)/2], full[len(full)-1]
	}
}

// Merge combines the reports of several processes into one.
func Merge(parts []*Report) *Report {
	if len(parts) == 0 {
		return &Report{}
	}
	out := *parts[0]
	out.Procs = len(parts)
	out.Shares.Rejected = map[string]int64{}
	out.Fanout.Seen = map[string]*JobSeen{}
	out.Bad = nil
	out.Errors, out.ErrorCount = nil, 0
	var lat, fan Histogram
	out.Sessions, out.Net = Sessions{}, Net{}
	out.Shares = Shares{Rejected: map[string]int64{}}
	for _, p := range parts {
		s, o := &p.Sessions, &out.Sessions
		o.Wanted += s.Wanted
		o.Up += s.Up
		o.Ever += s.Ever
		o.Dials += s.Dials
		o.DialFails += s.DialFails
		o.HandshakeFails += s.HandshakeFails
		o.Reconnects += s.Reconnects
		o.WorkersWanted += s.WorkersWanted
		o.WorkersUp += s.WorkersUp
		o.WorkersEver += s.WorkersEver
		if s.FirstUpNs != 0 && (o.FirstUpNs == 0 || s.FirstUpNs < o.FirstUpNs) {
			o.FirstUpNs = s.FirstUpNs
		}
		o.LastUpNs = max(o.LastUpNs, s.LastUpNs)
		sh, osh := &p.Shares, &out.Shares
		osh.Submitted += sh.Submitted
		osh.Accepted += sh.Accepted
		osh.Unanswered += sh.Unanswered
		osh.GrindGiveUps += sh.GrindGiveUps
		osh.Hashes += sh.Hashes
		osh.Notifies += sh.Notifies
		osh.SetDiffs += sh.SetDiffs
		osh.AgentSetDiff += sh.AgentSetDiff
		for k, v := range sh.Rejected {
			osh.Rejected[k] += v
		}
		lat.addSummary(sh.Latency)
		fan.addSummary(p.Fanout.Receipt)
		for k, j := range p.Fanout.Seen {
			if m := out.Fanout.Seen[k]; m != nil {
				m.First, m.Last, m.Count = min(m.First, j.First), max(m.Last, j.Last), m.Count+j.Count
			} else {
				c := *j
				out.Fanout.Seen[k] = &c
			}
		}
		n, on := &p.Net, &out.Net
		on.Conns += n.Conns
		on.TxBytes += n.TxBytes
		on.RxBytes += n.RxBytes
		on.TxSegs += n.TxSegs
		on.RxSegs += n.RxSegs
		on.SteadyConns += n.SteadyConns
		on.SteadyTxBytes += n.SteadyTxBytes
		on.SteadyRxBytes += n.SteadyRxBytes
		on.SteadyTxSegs += n.SteadyTxSegs
		on.SteadyRxSegs += n.SteadyRxSegs
		for k, c := range p.Bad {
			if out.Bad == nil {
				out.Bad = map[string]*BadCase{}
			}
			if m := out.Bad[k]; m != nil {
				m.Pass += c.Pass
				m.Fail += c.Fail
				if c.LastFail != "" {
					m.LastFail = c.LastFail
				}
			} else {
				cc := *c
				out.Bad[k] = &cc
			}
		}
		out.ErrorCount += p.ErrorCount
		for _, e := range p.Errors {
			if len(out.Errors) < maxErrors {
				out.Errors = append(out.Errors, e)
			}
		}
		out.Seconds = max(out.Seconds, p.Seconds)
	}
	out.Shares.Latency = lat.Summary()
	out.Fanout.Receipt = fan.Summary()
	out.finish()
	return &out
}

// WriteTable writes the report as an aligned table.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...)
	}
	ms := func(us uint64) string { return strconv.FormatFloat(float64(us)/1000, 'f', 3, 64) + " ms" }
	row("target", "%s (%d process(es), %.1f s, mode %s, protocol %s)", rep.Target, rep.Procs, rep.Seconds, rep.Mode, rep.Protocol)
	s := rep.Sessions
	row("sessions", "%d up of %d wanted, %d ever, %d dials, %d dial fails, %d handshake fails, %d reconnects", s.Up, s.Wanted, s.Ever, s.Dials, s.DialFails, s.HandshakeFails, s.Reconnects)
	row("connect ramp", "%.2f s, %.0f sessions/s", s.RampSeconds, s.ConnectRate)
	if s.WorkersWanted > 0 {
		row("agent miners", "%d registered of %d wanted (%d ever)", s.WorkersUp, s.WorkersWanted, s.WorkersEver)
	}
	sh := rep.Shares
	row("shares", "%d submitted, %d accepted (%.1f/s), %d unanswered, %d grind give-ups", sh.Submitted, sh.Accepted, sh.PerSecond, sh.Unanswered, sh.GrindGiveUps)
	for _, k := range sortedKeys(sh.Rejected) {
		row("  rejected", "%s: %d", k, sh.Rejected[k])
	}
	l := sh.Latency
	row("submit latency", "p50 %s  p90 %s  p99 %s  max %s  (n=%d)", ms(l.P50us), ms(l.P90us), ms(l.P99us), ms(l.MaxUs), l.Count)
	row("grinding", "%d hashes, %.2f MH/s averaged over the run", sh.Hashes, sh.MHps)
	row("notifies", "%d received, %d set_difficulty, %d MINING_SET_DIFF", sh.Notifies, sh.SetDiffs, sh.AgentSetDiff)
	f := rep.Fanout
	ref := "first receipt"
	if f.Published > 0 {
		ref = "publish"
	}
	row("fan-out", "%d jobs (%d published), receipts %d..%d per job", f.Jobs, f.Published, f.MinReceipts, f.MaxReceipts)
	row("  per receipt", "from %s: p50 %s  p99 %s  max %s", ref, ms(f.Receipt.P50us), ms(f.Receipt.P99us), ms(f.Receipt.MaxUs))
	row("  per job (last)", "p50 %s  max %s", ms(f.FullP50us), ms(f.FullMaxUs))
	n := rep.Net
	row("net tx (to server)", "%d B payload, %d segs, wire %.1f kbps", n.TxBytes, n.TxSegs, n.TxWireKbps)
	row("net rx (from server)", "%d B payload, %d segs, wire %.1f kbps", n.RxBytes, n.RxSegs, n.RxWireKbps)
	if n.SteadyConns > 0 {
		row("  after setup", "%d conns: tx %d B in %d segs, rx %d B in %d segs", n.SteadyConns, n.SteadyTxBytes, n.SteadyTxSegs, n.SteadyRxBytes, n.SteadyRxSegs)
		if sh.Submitted > 0 {
			row("  per share", "up %.1f B payload (%.1f B wire), down %.1f B payload (%.1f B wire), if shares were all that moved",
				float64(n.SteadyTxBytes)/float64(sh.Submitted), float64(n.SteadyTxWireBytes)/float64(sh.Submitted),
				float64(n.SteadyRxBytes)/float64(sh.Submitted), float64(n.SteadyRxWireBytes)/float64(sh.Submitted))
		}
	}
	if sv := rep.Server; sv != nil {
		row("server", "pid %d: RSS %d→%d KiB (max %d), CPU %.3f cores avg, %.3f max  %s", sv.PID, sv.RSSStartKB, sv.RSSLastKB, sv.RSSMaxKB, sv.CPUCores, sv.CPUMax, sv.Error)
	}
	for _, k := range sortedKeys(rep.Bad) {
		c := rep.Bad[k]
		status := "ok"
		if c.Fail > 0 {
			status = "FAIL (last: " + c.LastFail + ")"
		}
		row("  bad: "+k, "%d pass, %d fail, expect %s  %s", c.Pass, c.Fail, strings.Join(c.Expected, "|"), status)
	}
	if rep.ErrorCount > 0 {
		row("errors", "%d", rep.ErrorCount)
		for _, e := range rep.Errors {
			row("", "%s", e)
		}
	}
	return tw.Flush()
}
