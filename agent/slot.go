package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/stratum"
)

// noDiff marks a miner the pool has not yet given its own difficulty.
const noDiff = -128

// slot is one upstream connection's worth of miners: up to
// MinersPerUpstream agent session ids, and the upstream link (re)connected
// to the first reachable pool that carries their shares.
type slot struct {
	a    *Agent
	idx  int
	user string // multi_user_mode: the sub-account it serves ("": the pools' own)
	stop context.CancelFunc

	mu     sync.Mutex
	miners map[uint16]*Miner
	cursor uint16
	up     *upConn   // the connection past its handshake; nil while (re)connecting
	lostAt time.Time // when up became nil (zero before the first connection)
	wire   Wire      // TCP counters of closed connections

	// What miners are told, relayed from the current upstream.
	notify      [2][]byte // latest mining.notify, clean_jobs false/true, pool en1 appended
	hasNotify   bool
	forceClean  bool    // the next notify goes out with clean_jobs=true (after a switch)
	defaultDiff float64 // the pool's own mining.set_difficulty
	versionMask uint32  // the pool's version mask
}

func newSlot(a *Agent, idx int) *slot {
	return &slot{a: a, idx: idx, miners: make(map[uint16]*Miner), versionMask: 0x1fffe000}
}

// allocID takes a free agent session id; caller holds a.mu.
func (s *slot) allocID(m *Miner) (uint16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.miners) >= s.a.cfg.MinersPerUpstream {
		return 0, false
	}
	for i := 0; i <= agent.MaxSessionID; i++ {
		id := s.cursor
		s.cursor++
		if s.cursor > agent.MaxSessionID {
			s.cursor = 0
		}
		if _, used := s.miners[id]; !used {
			s.miners[id] = m
			return id, true
		}
	}
	return 0, false
}

// run keeps the slot connected: pools in order, the first that completes
// the handshake serves until it fails; after a round where none did, back
// off (doubling up to ReconnectMaxMs). In multi_user_mode a round where
// every pool refused the slot's sub-account closes its miners (BtcAgent
// drops a sub-account the pools do not know).
func (s *slot) run(ctx context.Context) {
	a := s.a
	log := a.log.With("upstream", s.idx)
	if s.user != "" {
		log = log.With("account", s.user)
	}
	fails := 0
	for ctx.Err() == nil {
		served := false
		refused := 0
		for i, p := range a.cfg.Pools {
			if ctx.Err() != nil {
				return
			}
			dc, err := a.dialer.dial(ctx, p)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("pool unreachable", "pool", i, "addr", p.Addr(), "err", err)
				continue
			}
			user := s.user
			if user == "" {
				user = p.User
			}
			u := newUpConn(s, p, user, dc)
			start := time.Now()
			probeCtx, stopProbe := context.WithCancel(ctx)
			if i > 0 && a.cfg.PrimaryRetrySec > 0 {
				go s.probeEarlier(probeCtx, i, u)
			}
			attached, err := u.run(ctx)
			stopProbe()
			s.detach(u)
			if ctx.Err() != nil {
				return // shutting down: the closed connection is ours
			}
			if attached {
				served = true
				log.Warn("pool connection lost", "pool", i, "addr", p.Addr(), "after", time.Since(start).Round(time.Second), "err", err)
				break // start again from the first pool
			}
			if errors.Is(err, errRefused) {
				refused++
			}
			log.Warn("pool handshake failed", "pool", i, "addr", p.Addr(), "via", dc.via, "err", err)
		}
		if served {
			fails = 0
			continue
		}
		if s.user != "" && refused == len(a.cfg.Pools) {
			log.Warn("every pool refused the sub-account: its miners are disconnected")
			s.closeMiners(log)
		}
		wait := a.cfg.backoff(fails)
		fails++
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// probeEarlier dials the pools before index cur every PrimaryRetrySec
// (the way the slot dials: proxies, TLS); when one answers it closes the
// current upstream u, so run starts again from the first pool (miners stay
// connected).
func (s *slot) probeEarlier(ctx context.Context, cur int, u *upConn) {
	a := s.a
	t := time.NewTicker(time.Duration(a.cfg.PrimaryRetrySec) * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := 0; i < cur; i++ {
			dc, err := a.dialer.dial(ctx, a.cfg.Pools[i])
			if err != nil {
				continue
			}
			dc.c.Close()
			dc.raw.Close()
			a.log.Info("an earlier pool is back: switching", "upstream", s.idx, "pool", i, "addr", a.cfg.Pools[i].Addr())
			u.close()
			return
		}
	}
}

// attach makes u the slot's upstream (its authorize succeeded): every
// authorized miner is registered on it and told the new pool's difficulty
// and next job (with clean_jobs=true).
func (s *slot) attach(u *upConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up = u
	s.forceClean = true
	for sid, m := range s.miners {
		m.registered = false
		m.diffExp = noDiff
		m.diffSent = false
		if m.authorized && !m.closed {
			s.register(u, sid, m)
		}
	}
	s.a.stats.Upstreams.Add(1)
	s.a.stats.Connects.Add(1)
	s.a.log.Info("pool connected", "upstream", s.idx, "addr", u.pool.Addr(), "user", u.user, "tls", s.a.cfg.PoolUseTLS,
		"subres", u.subres, "rejonly", u.rejonly, "zstd", u.zbatch, "csub", u.csub)
}

// detach forgets u: its jobs become unusable and its pending shares are
// answered as rejected (the pool that would have credited them is gone).
func (s *slot) detach(u *upConn) {
	u.close()
	w, ok := u.wire()
	s.mu.Lock()
	if ok {
		s.wire.add(w)
	}
	u.dead = true
	if s.up != u {
		s.mu.Unlock()
		return
	}
	s.up = nil
	s.lostAt = time.Now()
	s.hasNotify = false
	for _, m := range s.miners {
		m.registered = false
	}
	var lost []answer
	for {
		p, ok := u.popPending()
		if !ok {
			break
		}
		lost = append(lost, answer{p.m, p.id, stratum.StatusJobNotFoundOrStale})
	}
	s.mu.Unlock()
	s.a.stats.Upstreams.Add(-1)
	s.a.answerAll(lost)
}

// register queues REGISTER_WORKER for m (plain stratum has no
// registration); caller holds s.mu.
func (s *slot) register(u *upConn, sid uint16, m *Miner) {
	if u.sv1 {
		m.registered = true
		return
	}
	wasEmpty := len(u.wbuf) == 0
	out, err := agent.AppendRegisterWorker(u.wbuf, sid, m.agentStr, m.worker)
	if err != nil { // names are bounded and NUL-free at authorize; keep the link anyway
		out, _ = agent.AppendRegisterWorker(u.wbuf, sid, "", "__default__")
	}
	u.wbuf = out
	u.queued(wasEmpty)
	m.registered = true
}

// setCaps records the negotiated response mode.
func (s *slot) setCaps(u *upConn, subres, rejonly, zbatch, csub bool) {
	s.mu.Lock()
	u.subres = u.subres || subres
	u.rejonly = u.rejonly || rejonly
	u.zbatch = u.zbatch || zbatch
	u.csub = u.csub || csub
	s.mu.Unlock()
}

func (s *slot) setVersionMask(mask uint32) {
	s.a.versionMask.Store(mask)
	s.mu.Lock()
	s.versionMask = mask
	s.mu.Unlock()
}

// setDefaultDiff handles the pool's own mining.set_difficulty: it is every
// miner's difficulty until the pool sends that miner its own.
func (s *slot) setDefaultDiff(u *upConn, d float64) {
	line := stratum.AppendSetDifficulty(nil, d)
	var out []lineTo
	s.mu.Lock()
	s.defaultDiff = d
	for _, m := range s.miners {
		if m.authorized && m.diffExp == noDiff {
			m.diffSent = true
			out = append(out, lineTo{m, line})
		}
	}
	s.mu.Unlock()
	s.a.writeAll(out)
}

// setMinerDiffs handles MINING_SET_DIFF: each listed miner gets
// mining.set_difficulty 2^exp (the line is shared).
func (s *slot) setMinerDiffs(u *upConn, d *agent.SetDiff) {
	line := diffLine(d.DiffExp)
	out := make([]lineTo, 0, d.Count())
	s.mu.Lock()
	if s.up != u {
		s.mu.Unlock()
		return
	}
	for i := 0; i < d.Count(); i++ {
		m, ok := s.miners[d.SessionID(i)]
		if !ok || !m.authorized {
			continue
		}
		m.diffExp = int16(d.DiffExp)
		m.diffSent = true
		out = append(out, lineTo{m, line})
	}
	s.mu.Unlock()
	s.a.writeAll(out)
}

// diffLines caches mining.set_difficulty 2^e for every exponent.
var diffLines = func() (l [256][]byte) {
	for e := range l {
		l[e] = stratum.AppendSetDifficulty(nil, float64(uint64(1)<<min(e, 63)))
	}
	return l
}()

func diffLine(exp uint8) []byte { return diffLines[exp] }

// relayNotify rewrites a pool mining.notify for the miners (pool
// extranonce1 appended to coinbase1, spec §5.4) and sends it to all of them.
func (s *slot) relayNotify(u *upConn, m *stratum.Message) {
	if m.NParams < 9 {
		return
	}
	if _, ok := m.Param(0).Str(); !ok {
		return
	}
	if _, ok := m.Param(2).Str(); !ok {
		return
	}
	clean, _ := m.Param(8).Bool()
	var lines [2][]byte
	lines[0] = appendNotify(nil, m, u.en1, false)
	lines[1] = appendNotify(make([]byte, 0, len(lines[0])+1), m, u.en1, true)
	s.mu.Lock()
	if s.up != u {
		s.mu.Unlock()
		return
	}
	if s.forceClean {
		clean, s.forceClean = true, false
	}
	if id, _ := m.Param(0).Str(); shortJobID(id) {
		nt, _ := m.Param(7).Str()
		u.jobTime[stratum.ParseSubmitDecimal(id)] = uint32(stratum.ParseSubmitHex(nt))
	}
	s.notify, s.hasNotify = lines, true
	line := lines[0]
	if clean {
		line = lines[1]
	}
	var defLine []byte // set_difficulty + line, for miners not yet told a difficulty
	out := make([]lineTo, 0, len(s.miners))
	for _, mi := range s.miners {
		if !mi.authorized {
			continue
		}
		l := line
		if !mi.diffSent && s.defaultDiff > 0 {
			if defLine == nil {
				defLine = append(stratum.AppendSetDifficulty(nil, s.defaultDiff), line...)
			}
			mi.diffSent = true
			l = defLine
		}
		out = append(out, lineTo{mi, l})
	}
	s.mu.Unlock()
	s.a.writeAll(out)
	s.a.stats.Notifies.Add(1)
}

// shortJobID reports whether id is a pool's short job id: 1..3 decimal digits, at most 255.
func shortJobID(id []byte) bool {
	if len(id) == 0 || len(id) > 3 {
		return false
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return false
		}
	}
	return stratum.ParseSubmitDecimal(id) <= 255
}

// appendNotify appends the notify line with en1 appended to coinbase1.
func appendNotify(dst []byte, m *stratum.Message, en1 []byte, clean bool) []byte {
	dst = append(dst, `{"id":null,"method":"mining.notify","params":[`...)
	for i := 0; i < 9; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		v := m.Param(i)
		switch {
		case i == 2:
			dst = append(dst, '"')
			dst = append(dst, v.Raw...)
			dst = append(dst, en1...)
			dst = append(dst, '"')
		case i == 8:
			if clean {
				dst = append(dst, "true"...)
			} else {
				dst = append(dst, "false"...)
			}
		case v.Kind == stratum.KindString:
			dst = append(dst, '"')
			dst = append(dst, v.Raw...)
			dst = append(dst, '"')
		default:
			dst = append(dst, v.Raw...)
		}
	}
	return append(dst, "]}\n"...)
}

// submitResponse answers the miners' shares up to index: earlier pending
// shares the pool did not answer count as accepted (rejonly sends only
// rejects and one cumulative accept per batch), the share at index gets st.
func (s *slot) submitResponse(u *upConn, index uint16, st stratum.Status) {
	var buf [64]answer
	answers := buf[:0]
	s.mu.Lock()
	for i := 0; i < len(u.pending); i++ { // bounded by the queue length
		p, ok := u.peekPending()
		if !ok || int16(index-p.index) < 0 {
			break // the response is for a share we did not track
		}
		q, _ := u.popPending()
		if q.index == index {
			answers = append(answers, answer{q.m, q.id, st})
			break
		}
		answers = append(answers, answer{q.m, q.id, stratum.StatusAccept})
	}
	s.mu.Unlock()
	s.a.answerAll(answers)
}

// close closes every miner of the slot (no pool for too long).
func (s *slot) closeMiners(log *slog.Logger) {
	s.mu.Lock()
	n := 0
	for _, m := range s.miners {
		if !m.closed {
			m.conn.Close()
			n++
		}
	}
	s.mu.Unlock()
	if n > 0 {
		log.Warn("no pool reachable: miners disconnected", "upstream", s.idx, "miners", n)
	}
}

// submitResult says how a share is answered.
type submitResult uint8

const (
	submitAccepted submitResult = iota // forwarded; answer true now (no subres)
	submitLater                        // forwarded; the pool's response answers it
	submitNoPool                       // no upstream: answer with an error now
	submitBadJob                       // a job id the current pool cannot have sent: answer 21
	submitFake                         // BtcAgent's local fake job: answer true, never forwarded
)

// submit forwards one share (spec §5.4: the frame type follows from the
// parsed time and version mask).
// With a plain Stratum V1 pool the share goes out as mining.submit with
// the miner's job id as it is (job is the raw id; jobNum its decimal value
// for the agent protocol's short job id, > 255 when it has none).
func (s *slot) submit(m *Miner, sub *agent.Submit, job []byte, jobNum uint64, id stratum.ID) submitResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.up
	if u == nil || !m.registered {
		return submitNoPool
	}
	wasEmpty := len(u.wbuf) == 0
	switch {
	case u.sv1:
		if !sv1JobID(job) {
			return submitBadJob
		}
		u.wbuf = appendSV1Submit(u.wbuf, u.index, u.user, job, u.en2Pad, sub)
	case len(job) == 0 || job[0] == 'f':
		return submitFake
	case jobNum > 255:
		return submitBadJob
	default:
		sub.JobID = uint8(jobNum)
		if sub.HasTime && sub.Time == u.jobTime[jobNum] {
			// A share without a time is checked at the job's nTime (btcpool and the engine:
			// nTime 0 → the job's), so the time the job already has is not sent: a
			// SUBMIT_SHARE[_WITH_VER] frame, 4 bytes shorter than the _WITH_TIME form
			// BtcAgent always sends.
			sub.HasTime = false
		}
		u.wbuf = agent.AppendSubmit(u.wbuf, sub)
	}
	u.queued(wasEmpty)
	index := u.index
	u.index++
	if u.subres && u.pushPending(pendingShare{m: m, id: id.Clone(), index: index}) {
		return submitLater
	}
	return submitAccepted
}

// authorize registers m upstream and appends what a newly authorized miner
// is sent after the true result: its difficulty and the latest job (clean).
func (s *slot) authorize(m *Miner, out []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.authorized = true
	if s.up != nil {
		s.register(s.up, m.sid, m)
	}
	if s.defaultDiff > 0 {
		out = stratum.AppendSetDifficulty(out, s.defaultDiff)
		m.diffSent = true
	}
	if s.hasNotify {
		out = append(out, s.notify[1]...)
	}
	return out
}

// leave removes a closed miner and unregisters it upstream.
func (s *slot) leave(m *Miner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.closed = true
	if s.miners[m.sid] == m {
		delete(s.miners, m.sid)
	}
	if m.registered && s.up != nil && !s.up.sv1 {
		wasEmpty := len(s.up.wbuf) == 0
		s.up.wbuf = agent.AppendUnregisterWorker(s.up.wbuf, m.sid)
		s.up.queued(wasEmpty)
	}
	m.registered = false
}
