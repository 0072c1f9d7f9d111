package agent

import (
	"context"
	"net/netip"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/stratum"
)

// Miner states.
const (
	minerConnected uint8 = iota
	minerSubscribed
	minerAuthorized
)

// errSubAccountEmpty is BtcAgent's error for a multi_user_mode login
// without a sub-account (".bbb" or empty).
const errSubAccountEmpty = 105

// asicboostShares is how many version-rolled shares make a miner an
// ASICBoost miner for disconnect_when_lost_asicboost (BtcAgent's 100).
const asicboostShares = 100

// Miner is one downstream miner connection. Parsing state belongs to its
// event loop; the fields marked "under slot.mu" are shared with the
// upstream goroutines.
type Miner struct {
	a      *Agent
	conn   gnet.Conn
	framer stratum.LineFramer
	ip     netip.Addr

	// Event loop only.
	nap      *loopNap // the loop's poll coalescing (nil: off)
	state    uint8
	vmShares int // shares with a version mask (ASICBoost detection)
	agentStr string
	worker   string

	deadline atomic.Int64 // unix seconds; the agent closes the miner after it

	// Set at subscribe (the slot at authorize in multi_user_mode) on the
	// miner's event loop, then read-only; other goroutines reach miners
	// through their slot's map and never read these.
	slot *slot
	sid  uint16

	// Under slot.mu.
	authorized bool
	registered bool  // REGISTER_WORKER sent on the slot's current upstream
	diffSent   bool  // the miner was told a difficulty since the last switch
	diffExp    int16 // the pool's MINING_SET_DIFF for it, noDiff before one
	closed     bool
}

// lineTo is one line for one miner, sent from an upstream goroutine.
// Lines are shared between miners and must not change afterwards.
type lineTo struct {
	m    *Miner
	line []byte
}

// fanoutChunk bounds the items one event-loop task writes, so a broadcast
// to tens of thousands of miners interleaves with the miners' own traffic.
const fanoutChunk = 512

// onLoops writes items from any goroutine, each on its miner's event loop:
// one task per loop and chunk of items (instead of one AsyncWrite, with its
// task and wake-up, per miner). Tasks of one loop run in order, so a miner
// receives its items in the order given and after anything queued before.
// line returns an item's bytes (it may build them in *scratch, which the
// task reuses); miners closed meanwhile are skipped and one that stops
// reading is closed.
func onLoops[T any](a *Agent, items []T, miner func(*T) *Miner, line func(scratch *[]byte, it *T) []byte) {
	for len(items) > 0 { // each round takes up to fanoutChunk items of one loop
		el := miner(&items[0]).conn.EventLoop()
		mine := make([]T, 0, min(len(items), fanoutChunk))
		rest := items[:0]
		for i := range items {
			if len(mine) < fanoutChunk && miner(&items[i]).conn.EventLoop() == el {
				mine = append(mine, items[i])
			} else {
				rest = append(rest, items[i])
			}
		}
		items = rest
		_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			var scratch []byte
			for i := range mine {
				m := miner(&mine[i])
				if m.closed { // set by OnClose on this same loop
					continue
				}
				b := line(&scratch, &mine[i])
				if _, err := m.conn.Write(b); err == nil {
					a.stats.DownBytesOut.Add(int64(len(b)))
				}
				if m.conn.OutboundBuffered() > a.cfg.MaxOutbound {
					_ = m.conn.Close()
				}
			}
			return nil
		}))
	}
}

// writeAll sends shared lines (jobs, difficulties) from any goroutine and
// ends the loops' naps so they go out at once.
func (a *Agent) writeAll(ls []lineTo) {
	if len(ls) == 0 {
		return
	}
	onLoops(a, ls, func(l *lineTo) *Miner { return l.m },
		func(_ *[]byte, l *lineTo) []byte { return l.line })
	a.wakeLoops()
}

// answer is the result of one share for its miner.
type answer struct {
	m  *Miner
	id stratum.ID
	st stratum.Status
}

func appendAnswer(dst []byte, an *answer) []byte {
	if an.st.IsAccepted() {
		return stratum.AppendResultTrue(dst, an.id)
	}
	return stratum.AppendError(dst, an.id, an.st.WireCode())
}

// answerAll sends share results from any goroutine (they wait for the
// loops' naps: miners do not wait on answers).
func (a *Agent) answerAll(answers []answer) {
	for i := range answers {
		if answers[i].st.IsAccepted() {
			a.stats.Accepted.Add(1)
		} else {
			a.stats.Rejected.Add(1)
		}
	}
	onLoops(a, answers, func(an *answer) *Miner { return an.m },
		func(scratch *[]byte, an *answer) []byte {
			*scratch = appendAnswer((*scratch)[:0], an)
			return *scratch
		})
}

// feed handles the complete lines at the front of buf, appending replies
// to sc.out, and returns how many bytes it consumed.
func (m *Miner) feed(buf []byte, sc *scratch) (consumed int, closeNow bool) {
	for consumed < len(buf) { // each round consumes a line or returns
		line, n, err := m.framer.Next(buf[consumed:])
		if err != nil {
			return consumed, true
		}
		if n == 0 {
			break
		}
		consumed += n
		if m.handleLine(line, sc) {
			return consumed, true
		}
	}
	if m.state == minerAuthorized {
		m.deadline.Store(m.a.now.Load() + int64(m.a.cfg.MinerReadTimeout))
	}
	return consumed, false
}

// handleLine answers one request; it reports whether to close the miner.
func (m *Miner) handleLine(line []byte, sc *scratch) bool {
	msg := &sc.msg
	err := stratum.ParseRequest(line, msg)
	if err == stratum.ErrNotJSON {
		return false
	}
	if err != nil {
		sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusIllegalParams)
		return false
	}
	switch string(msg.Method.Raw) {
	case stratum.MethodSubmit:
		return m.handleSubmit(sc)
	case stratum.MethodSubscribe:
		if m.state != minerConnected {
			sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusUnknown)
			return false
		}
		if p, ok := msg.Param(0).Str(); ok {
			m.agentStr = filterName(string(p), maxAgentLen)
		}
		if !m.a.assign(m) {
			return true // no session id left (or shutting down)
		}
		m.state = minerSubscribed
		sc.out = stratum.AppendSubscribeResult(sc.out, msg.ID, uint32(m.sid), 4)
	case stratum.MethodAuthorize:
		if m.state == minerAuthorized {
			sc.out = stratum.AppendResultTrue(sc.out, msg.ID)
			return false
		}
		if m.state != minerSubscribed {
			sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusNotSubscribed)
			return false
		}
		name, ok := msg.Param(0).Str()
		if !ok || len(name) == 0 {
			sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusInvalidUsername)
			return false
		}
		if m.a.cfg.MultiUserMode && m.slot == nil {
			acc := accountOf(string(name))
			if acc == "" {
				sc.out = stratum.AppendErrorMessage(sc.out, msg.ID, errSubAccountEmpty, "Sub-account Name Cannot be Empty")
				return false
			}
			if !m.a.joinAccount(m, acc) {
				return true
			}
		}
		if m.worker == "" {
			m.worker = m.a.workerName(string(name), m.ip)
			if m.worker == "" {
				m.worker = "__default__"
			}
		}
		sc.out = stratum.AppendResultTrue(sc.out, msg.ID)
		sc.out = m.slot.authorize(m, sc.out)
		m.state = minerAuthorized
		m.deadline.Store(m.a.now.Load() + int64(m.a.cfg.MinerReadTimeout))
	case stratum.MethodConfigure:
		m.handleConfigure(sc)
	case stratum.MethodSuggestDifficulty, stratum.MethodSuggestTarget, stratum.MethodExtranonceSubscribe:
		// The pool sets each worker's difficulty; the suggestion is acknowledged.
		sc.out = stratum.AppendResultTrue(sc.out, msg.ID)
	default:
		sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusIllegalMethod)
	}
	return false
}

func (m *Miner) handleConfigure(sc *scratch) {
	msg := &sc.msg
	exts, opts := msg.Param(0), msg.Param(1)
	if exts.Kind != stratum.KindArray || opts.Kind != stratum.KindObject {
		sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusIllegalParams)
		return
	}
	entries := sc.cfg[:0]
	var mask uint32
	it := exts.Elems()
	for i := 0; i < 8; i++ {
		v, ok := it.Next()
		if !ok {
			break
		}
		name, ok := v.Str()
		if !ok {
			continue
		}
		if string(name) != "version-rolling" {
			entries = append(entries, stratum.ConfigureEntry{Key: name})
			continue
		}
		req, ok := opts.Get("version-rolling.mask").Str()
		ok = ok && len(req) > 0 && len(req) <= 8 && isHex(req)
		if ok {
			mask = uint32(stratum.ParseSubmitHex(req)) & m.a.versionMask.Load()
		}
		entries = append(entries, stratum.ConfigureEntry{Key: name, Result: ok})
		if ok {
			entries = append(entries, stratum.ConfigureEntry{Key: []byte("version-rolling.mask"), IsMask: true, Mask: mask})
		}
	}
	sc.out = stratum.AppendConfigureResult(sc.out, msg.ID, entries)
	sc.cfg = entries[:0]
	if mask != 0 {
		sc.out = stratum.AppendSetVersionMask(sc.out, mask)
	}
}

// handleSubmit forwards a share (spec §5.4) and answers it now or when the
// pool's response arrives.
func (m *Miner) handleSubmit(sc *scratch) bool {
	msg := &sc.msg
	m.a.stats.Shares.Add(1)
	if m.state != minerAuthorized {
		m.a.stats.Rejected.Add(1)
		sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusUnauthorized)
		return false
	}
	sub := &sc.sub
	if msg.Submit(sub) != nil {
		m.a.stats.Rejected.Add(1)
		sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusIllegalParams)
		return false
	}
	if sub.VersionMask != nil {
		m.vmShares++
	} else if m.vmShares > asicboostShares && m.a.cfg.DisconnectWhenLostAsicboost {
		sc.out = stratum.AppendReconnect(sc.out)
		return true
	}
	job := stratum.ParseSubmitDecimal(sub.JobID)
	as := agent.Submit{
		SessionID:   m.sid,
		ExtraNonce2: uint32(stratum.ParseSubmitHex(sub.ExtraNonce2)),
		Nonce:       uint32(stratum.ParseSubmitHex(sub.Nonce)),
		Time:        uint32(stratum.ParseSubmitHex(sub.Time)),
		VersionMask: uint32(stratum.ParseSubmitHex(sub.VersionMask)),
	}
	as.HasTime, as.HasVersionMask = as.Time != 0, as.VersionMask != 0
	switch m.slot.submit(m, &as, sub.JobID, job, msg.ID) {
	case submitAccepted, submitFake: // fake: BtcAgent's local fake jobs, never forwarded
		m.a.stats.Accepted.Add(1)
		sc.out = stratum.AppendResultTrue(sc.out, msg.ID)
	case submitNoPool, submitBadJob:
		m.a.stats.Rejected.Add(1)
		sc.out = stratum.AppendError(sc.out, msg.ID, stratum.StatusJobNotFoundOrStale)
	}
	return false
}
