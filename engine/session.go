package engine

import (
	"bytes"
	"math"
	"net/netip"
	"strings"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/codec/stratum"
)

// Session states (btcpool's CONNECTED, SUBSCRIBED, AUTHENTICATED).
const (
	stateConnected uint8 = iota
	stateSubscribed
	stateAuthorized
)

// localJobs is how many of the most recent jobs a session remembers; a share
// on an older job is "Job not found (=stale)". With a notify every 30 s and
// a 300 s job lifetime about 11 are live at once.
const localJobs = 16

// Spam guard (spec §4.9 step 11): from the 20th rejected share within 60 s
// on, rejected shares are answered but not recorded.
const (
	spamRejects = 20
	spamWindow  = 60
)

// agentPrefix marks BtcAgent connections (spec §5.1).
const agentPrefix = "btccom-agent/"

// miner is what btcpool keeps per StratumMiner: a difficulty controller, the
// difficulty each local job was sent at, and identity for records. A plain
// stratum session has one; an agent session has one for the connection and
// one per registered worker.
type miner struct {
	vd       VarDiff
	exps     [localJobs]int8 // exponent the job in Session.jobs[i] was sent at
	has      uint16          // bit i: exps[i] is valid
	sentExp  int8            // last difficulty told to the miner
	sentAny  bool
	rejectAt uint8 // next slot of rejects
	workerID int64
	worker   string
	agent    string // client agent (agent workers: their own)
	// rejects holds the unix times of the rejected shares before the newest
	// (a ring), made at the first reject: most miners never send one.
	rejects *[spamRejects - 1]uint32
}

// rejected records a rejected share and reports whether the spam guard now
// suppresses its record: whether it makes spamRejects rejects within the
// window (btcpool counts it, then compares the window's sum with 20).
func (m *miner) rejected(now int64) bool {
	if m.rejects == nil {
		m.rejects = new([spamRejects - 1]uint32)
	}
	oldest := int64(m.rejects[m.rejectAt])
	m.rejects[m.rejectAt] = uint32(now)
	m.rejectAt = (m.rejectAt + 1) % uint8(len(m.rejects))
	return oldest != 0 && now-oldest < spamWindow
}

// Session is one miner (or agent) connection. All its methods run on its
// event loop (or, in tests, one goroutine); nothing in it is locked.
//
// Every connection holds one, so its size is watched (TestSessionSize): what
// only some sessions need (the compact-submit decoder, the spam guard's
// ring, the vardiff ring before the first share) is made when first needed,
// and fields are ordered so that the struct fits the 480-byte size class.
type Session struct {
	srv  *Server
	lp   *loop
	conn connCloser // nil in socket-free tests

	id         uint32
	en1        [4]byte
	state      uint8
	isAgent    bool
	isNiceHash bool // unique job ids in notify, NiceHash minimum difficulty
	subres     bool // agent asked for SUBMIT_RESPONSE frames
	rejonly    bool // hashpool extension: responses only for rejects plus a cumulative accept
	zbatch     bool // hashpool extension: zstd-compressed batches of frames accepted
	csub       bool // hashpool extension: compact submit frames accepted
	ackPending bool // rejonly: accepted shares since the last response; ackIndex is the newest
	proxyDone  bool
	// proxyRequired: the connection came in on the PROXY listener and its
	// first line must be a PROXY v1 header.
	proxyRequired bool
	stalled       bool // a bad frame length stopped parsing (spec §4.4)
	closed        bool
	versionSet    bool
	suggestExp    int8 // difficulty asked for before authorize; noExp = none
	minExp        int8 // minimum asked for before authorize; noExp = none
	ip            netip.Addr

	versionMask uint32 // negotiated with mining.configure (answer only)
	userID      int32
	deadline    int64 // unix seconds; the sweep closes the session after it

	userName string
	m        miner

	jobs    [localJobs]*Job
	jobHead uint8 // index of the newest entry

	framer stratum.LineFramer

	// Answers held for a solved share's journal record (solved.go): holdN
	// shares not yet journaled, held the answers written after the first,
	// holdAt where in lp.out the hold began during the current read (-1).
	holdN    int32
	holdAt   int
	held     []byte
	newUsers int32 // user names this connection added to the user list

	// Agent sessions only.
	workers     map[uint16]*miner
	lpIndex     int // position in lp.sessions
	submitIndex uint16
	ackIndex    uint16
	compact     lazyCompact // csub: SUBMIT_COMPACT frames (last extranonce2 per agent session id)
}

// lazyCompact is an agent.CompactDecoder made at the first compact frame:
// only agent sessions that negotiated csub ever need one, and it is most of
// a plain session's size otherwise.
type lazyCompact struct{ d *agent.CompactDecoder }

// Start begins decoding a SUBMIT_COMPACT frame (agent.CompactDecoder.Start).
func (c *lazyCompact) Start(frame []byte) error {
	if c.d == nil {
		c.d = new(agent.CompactDecoder)
	}
	return c.d.Start(frame)
}

// Next decodes the next share of the frame begun by Start.
func (c *lazyCompact) Next(sub *agent.Submit) bool { return c.d != nil && c.d.Next(sub) }

// Len returns how many agent session ids have a last extranonce2.
func (c *lazyCompact) Len() int {
	if c.d == nil {
		return 0
	}
	return c.d.Len()
}

// Last returns the last extranonce2 decoded for agent session id sid.
func (c *lazyCompact) Last(sid uint16) (uint32, bool) {
	if c.d == nil {
		return 0, false
	}
	return c.d.Last(sid)
}

// connCloser is the part of a gnet.Conn the session state machine uses.
type connCloser interface{ Close() error }

const noExp = 0x7f

func newSession(srv *Server, lp *loop, id uint32, ip netip.Addr, now int64) *Session {
	s := &Session{srv: srv, lp: lp, id: id, ip: ip, suggestExp: noExp, minExp: noExp, holdAt: -1,
		deadline: now + int64(srv.opts.AuthorizeTimeout.Seconds())}
	s.en1 = [4]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	s.framer.Max = srv.opts.MaxLine
	s.m.vd = NewVarDiff(&srv.vdcfg)
	return s
}

// feed handles the complete lines and frames at the front of buf, appending
// replies to s.lp.out, and returns how many bytes were consumed. closeNow
// asks the caller to close the connection (line too long). buf is only read
// during the call (it is gnet's Peek buffer).
func (s *Session) feed(buf []byte, now int64) (consumed int, closeNow bool) {
	// Each iteration consumes at least one byte, so len(buf) bounds the loop.
	for consumed < len(buf) && !s.closed && !s.stalled {
		rest := buf[consumed:]
		if s.proxyRequired && !s.proxyDone {
			// The PROXY listener: the first line must be a PROXY v1 header
			// (at most 107 bytes), nothing else is read before it.
			line, n, ok := proxyLine(rest)
			if !ok {
				s.srv.metrics.ProxyRefused.Add(1)
				return consumed, true
			}
			if n == 0 {
				break
			}
			consumed += n
			s.proxyDone = true
			if !s.parseProxy(line) {
				s.srv.metrics.ProxyRefused.Add(1)
				return consumed, true
			}
			continue
		}
		if len(rest) < 4 {
			break // btcpool waits for 4 bytes before looking at anything
		}
		if rest[0] == agent.Magic {
			n, err := agent.Split(rest)
			if err != nil {
				s.stalled = true // declared length < 4: btcpool stops reading
				break
			}
			if n == 0 {
				break
			}
			s.handleFrame(rest[:n], now)
			consumed += n
			continue
		}
		line, n, err := s.framer.Next(rest)
		if err != nil {
			return consumed, true
		}
		if n == 0 {
			break
		}
		consumed += n
		s.handleLine(line, now)
	}
	if s.ackPending {
		// rejonly: one accept for the newest share of this read stands for
		// every unanswered share before it.
		s.ackPending = false
		s.lp.out = agent.AppendSubmitResponse(s.lp.out, s.ackIndex, int32(stratum.StatusAccept))
	}
	return consumed, false
}

func (s *Session) handleLine(line []byte, now int64) {
	if s.srv.opts.ProxyProtocol && s.state == stateConnected && !s.proxyDone && bytes.HasPrefix(line, []byte("PROXY")) {
		s.proxyDone = true
		s.parseProxy(line)
		return
	}
	msg := &s.lp.msg
	err := stratum.ParseRequest(line, msg)
	if err == stratum.ErrNotJSON {
		s.srv.metrics.BadLines.Add(1)
		return // btcpool logs and drops it
	}
	if err != nil {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusIllegalParams)
		return
	}
	switch string(msg.Method.Raw) {
	case stratum.MethodSubmit:
		s.handleSubmit(now)
	case stratum.MethodSubscribe:
		s.handleSubscribe()
	case stratum.MethodAuthorize:
		s.handleAuthorize(now)
	case stratum.MethodConfigure:
		s.handleConfigure()
	case stratum.MethodSuggestTarget:
		s.handleSuggestTarget()
	case stratum.MethodSuggestDifficulty:
		s.handleSuggestDifficulty()
	case stratum.MethodExtranonceSubscribe:
		s.lp.out = stratum.AppendExtranonceSubscribeResult(s.lp.out, msg.ID)
	case stratum.MethodGetCapabilities:
		s.handleCapabilities()
	default:
		// HEAD btcpool ignores unknown methods; a silent pool makes clients
		// wait for their timeout, so hashpool answers 26 "Illegal method".
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusIllegalMethod)
	}
}

// parseProxy applies "PROXY TCP4 <src> <dst> <sport> <dport>" and reports
// whether the line was such a header; on the plain listener anything else
// is swallowed unchanged (btcpool).
func (s *Session) parseProxy(line []byte) bool {
	f := strings.Fields(string(line))
	if len(f) == 6 && (f[0] == "PROXY") && (f[1] == "TCP4" || f[1] == "TCP6") {
		if ip, err := netip.ParseAddr(f[2]); err == nil {
			s.ip = ip.Unmap()
			return true
		}
	}
	if len(f) >= 3 && (f[1] == "TCP4" || f[1] == "TCP6") {
		if ip, err := netip.ParseAddr(f[2]); err == nil {
			s.ip = ip.Unmap()
		}
	}
	return false
}

// maxProxyLine is the longest PROXY v1 header, CRLF included (the
// protocol's own bound).
const maxProxyLine = 107

// proxyLine returns the PROXY v1 line at the front of b without its line
// end and the bytes it takes; n == 0 means more input is needed. ok is
// false when b cannot start one (wrong prefix, too long).
func proxyLine(b []byte) (line []byte, n int, ok bool) {
	const prefix = "PROXY "
	if len(b) < len(prefix) {
		return nil, 0, bytes.HasPrefix([]byte(prefix), b)
	}
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return nil, 0, false
	}
	i := bytes.IndexByte(b[:min(len(b), maxProxyLine)], '\n')
	if i < 0 {
		return nil, 0, len(b) < maxProxyLine
	}
	line = b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, i + 1, true
}

func (s *Session) handleSubscribe() {
	msg := &s.lp.msg
	if s.state != stateConnected {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusUnknown)
		return
	}
	if p, ok := msg.Param(0).Str(); ok {
		s.m.agent = FilterAgent(string(p))
		s.isAgent = strings.HasPrefix(s.m.agent, agentPrefix)
	}
	s.isNiceHash = s.srv.opts.NiceHashForced || isNiceHashAgent(s.m.agent)
	// A miner reconnecting may ask for its old session id (extranonce1) back. It gets it when
	// the id is free and was last held on this event loop: duplicate sets are per loop, so on
	// another loop the old connection's accepted shares could be credited again.
	if p, ok := msg.Param(1).Str(); ok && len(p) == 8 {
		if want, ok := parseHex32(p); ok && want != s.id && s.srv.ids.Take(want, s.lp.idx) {
			s.srv.ids.Free(s.id)
			s.setID(want)
		}
	}
	s.state = stateSubscribed
	s.lp.out = stratum.AppendSubscribeResult(s.lp.out, msg.ID, s.id, s.srv.opts.ExtraNonce2Size)
}

func (s *Session) setID(id uint32) {
	s.id = id
	s.en1 = [4]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
}

func parseHex32(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}

func (s *Session) handleAuthorize(now int64) {
	msg := &s.lp.msg
	if s.state != stateSubscribed {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusNotSubscribed)
		return
	}
	name, ok := msg.Param(0).Str()
	if !ok || len(name) == 0 {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusInvalidUsername)
		return
	}
	user, worker := s.srv.opts.Names.SplitWorkerName(string(name))
	uid, ok, refused := s.lookupUser(user)
	if refused {
		s.srv.metrics.UsersRefused.Add(1)
	}
	if !ok {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusInvalidUsername)
		return
	}
	s.userName, s.userID = user, uid
	s.m.worker = worker
	s.m.workerID = WorkerID(worker)
	if s.minExp != noExp {
		s.m.vd.SetMin(int(s.minExp))
	} else if s.isNiceHash && s.srv.opts.NiceHashMinDifficulty > 0 {
		// md= in the password still overrides it below.
		s.m.vd.SetMin(DiffExp(s.srv.opts.NiceHashMinDifficulty))
	}
	if s.suggestExp != noExp {
		s.m.vd.Reset(int(s.suggestExp))
	}
	if pw, ok := msg.Param(1).Str(); ok {
		s.applyPassword(string(pw))
	}
	s.state = stateAuthorized
	s.lp.out = stratum.AppendResultTrue(s.lp.out, msg.ID)
	timeout := s.srv.opts.TCPReadTimeout
	if s.isAgent || s.srv.longTimeout(s.m.agent) {
		timeout = s.srv.opts.LongTimeout
	}
	s.deadline = now + int64(timeout.Seconds())
	s.srv.metrics.Authorized.Add(1)
	s.srv.out.event(btcpool.ActionMinerConnect, btcpool.DescNewConn, s, &s.m)
	// A stale newest job (a block was found on it and the next job has not
	// come yet) is not handed out: every share on it would be rejected; the
	// next broadcast brings the session its first job.
	if j := s.srv.repo.Latest(); j != nil && !j.Stale() && !j.Expired() {
		s.sendJob(j, true, now)
	}
}

// applyPassword reads btcpool's password options: comma-separated key=value
// with d=<start difficulty> and md=<minimum difficulty> (decimal).
func (s *Session) applyPassword(pw string) {
	for i := 0; i < 16 && pw != ""; i++ { // bounded: at most 16 options
		var kv string
		kv, pw, _ = strings.Cut(pw, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		d, ok := parseDecimal(v)
		if !ok || !(d > 0) {
			continue
		}
		switch k {
		case "d":
			s.m.vd.Reset(DiffExp(d))
		case "md":
			s.m.vd.SetMin(DiffExp(d))
		}
	}
}

// parseDecimal parses a non-negative decimal number (digits with an optional
// fraction) without allocating.
func parseDecimal(v string) (float64, bool) {
	if v == "" || len(v) > 32 {
		return 0, false
	}
	var d, scale float64 = 0, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			d = d*10 + float64(c-'0')
			if scale > 0 {
				scale *= 10
			}
		case c == '.' && scale == 0:
			scale = 1
		default:
			return 0, false
		}
	}
	if scale > 1 {
		d /= scale
	}
	return d, true
}

func (s *Session) handleConfigure() {
	msg := &s.lp.msg
	exts, opts := msg.Param(0), msg.Param(1)
	if exts.Kind != stratum.KindArray || opts.Kind != stratum.KindObject {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusIllegalParams)
		return
	}
	entries := s.lp.cfg[:0]
	it := exts.Elems()
	for i := 0; i < 8; i++ { // at most 8 extensions are answered
		v, ok := it.Next()
		if !ok {
			break
		}
		name, ok := v.Str()
		if !ok {
			continue
		}
		switch string(name) {
		case "minimum-difficulty":
			val, ok := opts.Get("minimum-difficulty.value").Float64()
			if ok && val > 0 {
				s.minExp = int8(DiffExp(val))
				s.m.vd.SetMin(int(s.minExp))
			}
			entries = append(entries, stratum.ConfigureEntry{Key: name, Result: ok && val > 0})
		case "version-rolling":
			mask, ok := opts.Get("version-rolling.mask").Str()
			var m uint32
			if ok {
				m, ok = parseHex32(mask)
				ok = ok && len(mask) <= 8
			}
			if ok {
				s.versionMask = m & s.srv.opts.VersionMask
				s.versionSet = true
			}
			entries = append(entries, stratum.ConfigureEntry{Key: name, Result: ok})
			if ok {
				entries = append(entries, stratum.ConfigureEntry{Key: []byte("version-rolling.mask"), IsMask: true, Mask: s.versionMask})
			}
		default:
			entries = append(entries, stratum.ConfigureEntry{Key: name, Result: false})
		}
	}
	s.lp.cfg = entries[:0]
	s.lp.out = stratum.AppendConfigureResult(s.lp.out, msg.ID, entries)
	if s.versionMask != 0 {
		s.lp.out = stratum.AppendSetVersionMask(s.lp.out, s.versionMask)
	}
}

// diff1 is the difficulty-1 target as a float64 (0xffff × 2^208).
var diff1 = math.Ldexp(0xffff, 208)

func (s *Session) handleSuggestTarget() {
	msg := &s.lp.msg
	if s.state != stateConnected {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusIllegalMethod)
		return
	}
	hexTarget, ok := msg.Param(0).Str()
	if !ok || len(hexTarget) == 0 || len(hexTarget) > 64 {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusIllegalParams)
		return
	}
	var t float64
	for _, c := range hexTarget {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusIllegalParams)
			return
		}
		t = t*16 + float64(d)
	}
	if t > 0 {
		s.suggestExp = int8(DiffExp(diff1 / t))
	}
	s.lp.out = stratum.AppendResultTrue(s.lp.out, msg.ID)
}

// handleSuggestDifficulty honours mining.suggest_difficulty in any state:
// before authorize it sets the starting difficulty, after it the next notify
// carries the new difficulty. (HEAD btcpool ignores the method.)
func (s *Session) handleSuggestDifficulty() {
	msg := &s.lp.msg
	d, ok := msg.Param(0).Float64()
	if !ok || !(d > 0) {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusIllegalParams)
		return
	}
	e := DiffExp(d)
	if s.state == stateAuthorized {
		s.m.vd.Reset(e)
	} else {
		s.suggestExp = int8(e)
	}
	s.lp.out = stratum.AppendResultTrue(s.lp.out, msg.ID)
}

// capRejOnly is hashpool's agent extension: with "subres", SUBMIT_RESPONSE
// frames only for rejected shares, plus after each read that ended with
// accepted shares one accept frame for the newest of them, which the agent
// applies to every unanswered share before it. It is offered only to agents
// that ask for it, so btcpool's agents see btcpool's exact answer.
const capRejOnly = "rejonly"

// capZstd is hashpool's agent extension for compressed uplinks: the agent
// may send ZSTD_BATCH frames (see agentZstdBatch).
const capZstd = "zstd"

// capCompact is hashpool's agent extension for compact, stateful submit
// frames (see CmdCompactSubmits).
const capCompact = "csub"

func (s *Session) handleCapabilities() {
	msg := &s.lp.msg
	it := msg.Param(0).Elems()
	for i := 0; i < 16; i++ {
		v, ok := it.Next()
		if !ok {
			break
		}
		c, _ := v.Str()
		switch string(c) {
		case "subres":
			// btcpool sets the flag only after authorize (so btcagent asks
			// twice); hashpool remembers it from either request.
			s.subres = true
		case capRejOnly:
			s.rejonly = true
		case capZstd:
			s.zbatch = true
		case capCompact:
			s.csub = true
		}
	}
	caps := stratum.DefaultCapabilities
	if s.rejonly || s.zbatch || s.csub {
		caps = append([]string(nil), caps...)
		if s.rejonly {
			caps = append(caps, capRejOnly)
		}
		if s.zbatch {
			caps = append(caps, capZstd)
		}
		if s.csub {
			caps = append(caps, capCompact)
		}
	}
	s.lp.out = stratum.AppendCapabilitiesResult(s.lp.out, msg.ID, caps)
}

// sendJob writes the job to this session: a set_difficulty first when the
// difficulty changed (spec §4.7), MINING_SET_DIFF frames for agent workers
// (§5.3), then the shared notify line, appended to the loop's output buffer
// (loop.broadcast writes that buffer out chunk by chunk).
func (s *Session) sendJob(j *Job, clean bool, now int64) {
	s.pushJob(j, now)
	if s.isNiceHash {
		s.lp.out = j.AppendNotifyWithID(s.lp.out, clean, niceHashJobID(j, now))
		return
	}
	s.lp.out = append(s.lp.out, j.Notify(clean)...)
}

// niceHashJobID is the job id a NiceHash client sees: now*256 + short id,
// unique across jobs (spec §4.6). Its submits carry it back and the short
// id is its value modulo 256, which is what uint8 parsing of any job id
// gives.
func niceHashJobID(j *Job, now int64) uint64 { return uint64(now)<<8 | uint64(j.ShortID) }

// isNiceHashAgent reports whether a client agent starts with "nicehash/"
// in any case.
func isNiceHashAgent(agent string) bool {
	return len(agent) >= 9 && strings.EqualFold(agent[:9], "nicehash/")
}

// pushJob registers j as the newest local job and writes what must precede
// its notify.
func (s *Session) pushJob(j *Job, now int64) {
	s.jobHead = (s.jobHead + 1) % localJobs
	idx := s.jobHead
	s.jobs[idx] = j
	s.setMinerDiff(&s.m, idx, now)
	e := s.m.exps[idx]
	if s.isAgent && e < 0 && !s.srv.opts.AgentFractionalDifficulty {
		// The agent protocol carries integer powers of two only, and
		// BtcAgent parses set_difficulty with strtoul (0.5 reads as 0 and
		// it never starts): agents are told at least 1. Their shares are
		// still checked at the session's own target, which a share at 1
		// always meets, and credited 1 like every fractional share.
		e = 0
	}
	if s.m.sentExp != e || !s.m.sentAny {
		s.m.sentExp, s.m.sentAny = e, true
		s.lp.out = stratum.AppendSetDifficulty(s.lp.out, ExpDiff(int(e)))
	}
	if s.isAgent && len(s.workers) > 0 {
		s.agentDiffs(idx, now)
	}
}

func (s *Session) setMinerDiff(m *miner, idx uint8, now int64) {
	m.exps[idx] = int8(m.vd.Calc(now))
	m.has |= 1 << idx
}
