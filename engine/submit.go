package engine

import (
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/sha"
)

// shareTargets[e-MinDiffExp] is the share target of difficulty 2^e.
var shareTargets = func() (t [MaxDiffExp - MinDiffExp + 1]sha.Target) {
	for e := MinDiffExp; e <= MaxDiffExp; e++ {
		t[e-MinDiffExp] = sha.DiffToTarget(ExpDiff(e))
	}
	return t
}()

// creditDiff is the share difficulty written to records (an integer field):
// 2^e, and 1 for the fractional difficulties of test networks (a record with
// difficulty 0 is dropped by btcpool's consumers).
func creditDiff(e int8) uint64 {
	if e <= 0 {
		return 1
	}
	return 1 << uint(e)
}

// shareInput is one share as submitted, already parsed (spec §4.9 step 3).
type shareInput struct {
	short       uint8
	en2         uint64 // masked to the extranonce2 size
	ntime       uint32
	nonce       uint32
	versionMask uint32
}

// handleSubmit answers a mining.submit line (spec §4.9).
func (s *Session) handleSubmit(now int64) {
	msg := &s.lp.msg
	if s.state != stateAuthorized {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusUnauthorized)
		s.lp.out = stratum.AppendReconnect(s.lp.out)
		return
	}
	sub := &s.lp.sub
	if err := msg.Submit(sub); err != nil {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, stratum.StatusIllegalParams)
		return
	}
	in := shareInput{
		short:       uint8(stratum.ParseSubmitDecimal(sub.JobID)), // NiceHash ids: modulo 256
		en2:         stratum.ParseSubmitHex(sub.ExtraNonce2) & s.srv.en2Mask,
		ntime:       uint32(stratum.ParseSubmitHex(sub.Time)),
		nonce:       uint32(stratum.ParseSubmitHex(sub.Nonce)),
		versionMask: uint32(stratum.ParseSubmitHex(sub.VersionMask)),
	}
	st := s.checkShare(&s.m, &in, now)
	if st.IsAccepted() {
		s.lp.out = stratum.AppendResultTrue(s.lp.out, msg.ID)
	} else {
		s.lp.out = stratum.AppendError(s.lp.out, msg.ID, st.WireCode())
	}
}

// submitSample: one share in submitSample+1 is timed for
// Metrics.SubmitNanos (reading the clock twice per share would cost more
// than a tenth of the share's validation).
const submitSample = 63

// checkShare validates one share (see validateShare) and counts it in
// Metrics.SubmitCount, timing one in 64 for SubmitNanos.
func (s *Session) checkShare(m *miner, in *shareInput, now int64) stratum.Status {
	lp := s.lp
	lp.submits++
	if lp.submits&submitSample != 0 {
		st := s.validateShare(m, in, now)
		s.srv.metrics.SubmitCount.Add(1)
		return st
	}
	t0 := time.Now()
	st := s.validateShare(m, in, now)
	s.srv.metrics.SubmitNanos.Add(int64(time.Since(t0)) * (submitSample + 1))
	s.srv.metrics.SubmitCount.Add(1)
	return st
}

// validateShare validates one share for miner m in btcpool's order, records
// it, feeds vardiff and the spam guard, and returns its status. It does not
// allocate (except when a block is found).
func (s *Session) validateShare(m *miner, in *shareInput, now int64) stratum.Status {
	srv := s.srv
	// Step 4: the local job, searched newest first.
	idx := -1
	for i := 0; i < localJobs; i++ {
		k := (int(s.jobHead) - i + localJobs) % localJobs
		if j := s.jobs[k]; j != nil && j.ShortID == in.short && m.has&(1<<k) != 0 {
			idx = k
			break
		}
	}
	if idx < 0 || s.jobs[idx].Expired() {
		m.vd.AddShare(now, 0)
		srv.metrics.countShare(stratum.StatusJobNotFound)
		return stratum.StatusJobNotFound
	}
	j := s.jobs[idx]
	if in.ntime == 0 {
		in.ntime = j.Time
	}
	exp := m.exps[idx]
	diff := creditDiff(exp)

	// The header hash is computed first: it is the duplicate key. The
	// answers keep btcpool's order (duplicate before the step 8 checks).
	en2 := s.lp.en2[:srv.opts.ExtraNonce2Size]
	for i := range en2 {
		en2[i] = byte(in.en2 >> (8 * uint(len(en2)-1-i)))
	}
	hash := s.lp.hasher.ShareHash(j.Hash, s.en1[:], en2, in.ntime, in.nonce, in.versionMask)

	// Step 7: duplicates are answered but never recorded. Only shares that
	// carry the work (meet their target) are remembered, below: a share
	// without it, sent again, is answered "low difficulty" again instead of
	// 22, and a flood of them cannot fill the set to its bound for free.
	seen, key := &j.seen[s.lp.idx], dupKeyOf(&hash)
	if seen.has(key) {
		m.vd.AddShare(now, float64(diff))
		m.rejected(now)
		srv.metrics.countShare(stratum.StatusDuplicateShare)
		return stratum.StatusDuplicateShare
	}

	// Step 8 h (btcpool checks it after the others, whatever their outcome): every aux
	// chain's target on the hash already computed. One comparison when none is met.
	if j.AuxTargets.Len() > 0 {
		if mask := j.AuxTargets.Check(&hash); mask != 0 {
			srv.auxSolved(s, m, j, en2, in, mask)
		}
	}

	// Step 8: the checks; the first failure wins.
	st := stratum.Status(0)
	switch {
	case j.Stale():
		st = stratum.StatusStaleShare
	case in.ntime < j.MinTime:
		st = stratum.StatusTimeTooOld
	case in.ntime > j.Time+600:
		st = stratum.StatusTimeTooNew
	case in.versionMask != 0 && in.versionMask&^srv.opts.VersionMask != 0:
		st = stratum.StatusIllegalVersionMask
	}
	if st == 0 && sha.HashMeetsTarget(&hash, &j.NetworkTarget) {
		st = stratum.StatusSolved
		srv.solved(s, m, j, en2, in, now)
	}
	meets := sha.HashMeetsTarget(&hash, &shareTargets[int(exp)-MinDiffExp])
	if st == 0 && !srv.opts.Simulator && !meets {
		st = stratum.StatusLowDifficulty
	}
	if st == 0 {
		st = stratum.StatusAccept
	}
	if meets || st.IsAccepted() {
		seen.add(key)
	}
	m.vd.AddShare(now, float64(diff))
	suppress := false
	if !st.IsAccepted() {
		suppress = m.rejected(now)
	}
	srv.metrics.countShare(st)
	if !suppress {
		sh := &s.lp.share
		*sh = btcpool.Share{
			Version: btcpool.CurrentShareVersion, WorkerHashID: m.workerID, UserID: s.userID,
			Status: btcpool.Status(st), Timestamp: now, IP: s.ip, JobID: j.ID, ShareDiff: diff,
			BlkBits: j.Bits, Height: uint32(j.Height), Nonce: in.nonce, SessionID: s.id,
			VersionMask: in.versionMask, BitsReached: sha.HashToTarget(&hash).Compact(),
		}
		s.lp.record(sh)
	}
	return st
}
