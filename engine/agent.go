package engine

import (
	"github.com/klauspost/compress/zstd"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// handleFrame handles one BtcAgent ex-message (spec §5.3). Frames from
// sessions that are not authorized agents are ignored, as are frames with a
// wrong length or an unknown command (btcpool drops them silently).
func (s *Session) handleFrame(frame []byte, now int64) {
	if !s.isAgent || s.state != stateAuthorized {
		return
	}
	switch agent.FrameCmd(frame) {
	case agent.CmdSubmitShare, agent.CmdSubmitShareWithTime, agent.CmdSubmitShareWithVer, agent.CmdSubmitShareWithTimeVer:
		s.agentSubmit(frame, now)
	case agent.CmdRegisterWorker:
		s.agentRegister(frame, now)
	case CmdZstdBatch:
		if s.zbatch {
			s.agentZstdBatch(frame, now)
		}
	case CmdCompactSubmits:
		if s.csub {
			s.agentCompactSubmits(frame, now)
		}
	case agent.CmdUnregisterWorker:
		id, err := agent.DecodeUnregisterWorker(frame)
		if err != nil || id > agent.MaxSessionID {
			return
		}
		if w, ok := s.workers[id]; ok {
			delete(s.workers, id)
			s.srv.out.event(btcpool.ActionMinerDead, btcpool.DescFromBtcAgent, s, w)
		}
	}
}

// CmdZstdBatch is hashpool's "zstd" extension frame (agent.CmdZstdBatch).
const CmdZstdBatch = agent.CmdZstdBatch

// maxZstdBatch bounds the decoded content of one ZSTD_BATCH frame.
const maxZstdBatch = 256 << 10

func (s *Session) agentZstdBatch(frame []byte, now int64) {
	lp := s.lp
	if lp.zdec == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxZstdBatch),
			zstd.WithDecoderMaxWindow(maxZstdBatch))
		if err != nil {
			return
		}
		lp.zdec = d
	}
	out, err := lp.zdec.DecodeAll(frame[agent.HeaderLen:], lp.zbuf[:0])
	if cap(out) <= maxZstdBatch {
		lp.zbuf = out[:0]
	}
	if err != nil {
		s.srv.metrics.BadLines.Add(1)
		return
	}
	// Each round consumes one whole inner frame, so len(out) bounds the loop.
	for len(out) >= agent.HeaderLen {
		n, err := agent.Split(out)
		if err != nil || n == 0 {
			return // a truncated inner frame ends the batch
		}
		if agent.FrameCmd(out[:n]) != CmdZstdBatch { // no nesting
			s.handleFrame(out[:n], now)
		}
		out = out[n:]
	}
}

func (s *Session) agentRegister(frame []byte, now int64) {
	var r agent.RegisterWorker
	if agent.DecodeRegisterWorker(frame, &r) != nil || r.SessionID > agent.MaxSessionID {
		return
	}
	if _, ok := s.workers[r.SessionID]; ok {
		return // btcpool keeps the first registration (map emplace)
	}
	if s.workers == nil {
		s.workers = make(map[uint16]*miner)
	}
	w := &miner{vd: NewVarDiff(&s.srv.vdcfg), agent: FilterAgent(string(r.ClientAgent))}
	w.worker = FilterName(string(r.WorkerName))
	if len(w.worker) > maxWorkerNameLen {
		w.worker = w.worker[:maxWorkerNameLen]
	}
	if w.worker == "" {
		w.worker = DefaultWorkerName
	}
	w.workerID = WorkerID(w.worker)
	// The worker starts at the connection's current difficulty and is told
	// its own with the next notify.
	w.vd.Reset(s.m.vd.Exp())
	// Until then its shares on the jobs already sent are credited at the
	// connection's difficulty, which is what the agent told the miner (its
	// default set_difficulty); without this they would be "job not found".
	w.exps, w.has = s.m.exps, s.m.has
	s.workers[r.SessionID] = w
	s.srv.out.event(btcpool.ActionMinerConnect, btcpool.DescFromBtcAgent, s, w)
}

func (s *Session) agentSubmit(frame []byte, now int64) {
	sub := &s.lp.asub
	if agent.DecodeSubmit(frame, sub) != nil {
		return
	}
	s.agentShare(sub, now)
}

// agentShare handles one decoded agent share (spec §5.3).
func (s *Session) agentShare(sub *agent.Submit, now int64) {
	if sub.SessionID > agent.MaxSessionID {
		return
	}
	w, ok := s.workers[sub.SessionID]
	if !ok {
		return
	}
	index := s.submitIndex
	s.submitIndex++
	in := shareInput{
		short:       sub.JobID,
		en2:         sub.FullExtraNonce2() & s.srv.en2Mask,
		ntime:       sub.Time,
		nonce:       sub.Nonce,
		versionMask: sub.VersionMask,
	}
	st := s.checkShare(w, &in, now)
	switch {
	case !s.subres:
	case s.rejonly && st.IsAccepted():
		s.ackPending, s.ackIndex = true, index
	default:
		s.ackPending = false
		s.lp.out = agent.AppendSubmitResponse(s.lp.out, index, int32(st))
	}
}

// agentDiffs recomputes every worker's difficulty for the local job at idx
// and writes one MINING_SET_DIFF frame per new exponent for the workers whose
// difficulty changed. The frame's exponent is a u8: fractional difficulties
// are sent to agents as 1.
func (s *Session) agentDiffs(idx uint8, now int64) {
	groups := &s.lp.diffGroups
	used := s.lp.usedExps[:0]
	for id, w := range s.workers {
		s.setMinerDiff(w, idx, now)
		e := w.exps[idx]
		if w.sentAny && w.sentExp == e {
			continue
		}
		w.sentExp, w.sentAny = e, true
		if e < 0 {
			e = 0
		}
		if len(groups[e]) == 0 {
			used = append(used, e)
		}
		groups[e] = append(groups[e], id)
	}
	for _, e := range used {
		s.lp.out = agent.AppendSetDiff(s.lp.out, uint8(e), groups[e])
		groups[e] = groups[e][:0]
	}
	s.lp.usedExps = used[:0]
}

// CmdCompactSubmits is hashpool's "csub" extension frame; its layout is
// documented at agent.CmdCompactSubmits.
const CmdCompactSubmits = agent.CmdCompactSubmits

func (s *Session) agentCompactSubmits(frame []byte, now int64) {
	if s.compact.Start(frame) != nil {
		return
	}
	sub := &s.lp.asub
	for s.compact.Next(sub) {
		s.agentShare(sub, now)
	}
}
