package engine

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hashpool/hashpool/codec/sv2"
)

// sv2JobFrames is one engine Job serialized once for every SV2 channel:
// NewExtendedMiningJob active (min_ntime set) and future (none), and
// SetNewPrevHash, all for channel id 0; each copy gets its channel's (or
// group's) id written over the first payload field. The SV2 job id is the
// engine job's short id, so a share maps onto the SV1 validation.
type sv2JobFrames struct {
	job              *Job
	prev             [32]byte
	ext, future, nph []byte
	sentAt           int64
}

func newSV2JobFrames(j *Job, versionRolling bool, now int64) (*sv2JobFrames, bool) {
	h := j.Hash
	if len(h.Coinbase1()) > sv2.MaxB64K || len(h.Coinbase2()) > sv2.MaxB64K || len(h.Branch()) > sv2.MaxSeq255 {
		return nil, false
	}
	fr := &sv2JobFrames{job: j, prev: h.PrevHash(), sentAt: now}
	m := sv2.NewExtendedMiningJob{JobID: uint32(j.ShortID), Version: h.Version(), VersionRollingAllowed: versionRolling,
		MerklePath: h.Branch(), CoinbaseTxPrefix: h.Coinbase1(), CoinbaseTxSuffix: h.Coinbase2()}
	fr.future = sv2.AppendNewExtendedMiningJob(nil, &m)
	m.MinNTime = sv2.OptionU32{Valid: true, V: j.Time}
	fr.ext = sv2.AppendNewExtendedMiningJob(nil, &m)
	fr.nph = sv2.AppendSetNewPrevHash(nil, &sv2.SetNewPrevHash{JobID: uint32(j.ShortID), PrevHash: fr.prev, MinNTime: j.Time, NBits: j.Bits})
	return fr, true
}

// appendFor appends frame f with the channel id id.
func appendFor(dst, f []byte, id uint32) []byte {
	off := len(dst)
	dst = append(dst, f...)
	binary.LittleEndian.PutUint32(dst[off+sv2.HeaderLen:], id)
	return dst
}

// sv2Broadcast sends j to every SV2 connection (AddJob's hook, and sv2Run
// for a job that was not sent at once): one task per loop, each writing its
// connections in slices like the SV1 broadcast.
func (s *Server) sv2Broadcast(j *Job) {
	if s.opts.SV2Listen == "" {
		return
	}
	now := s.nowSec.Load()
	fr, ok := newSV2JobFrames(j, s.opts.VersionMask != 0, now)
	if !ok {
		s.log.Warn("job not sent to sv2 channels: coinbase parts or merkle branch too long", "job", j.ID)
		return
	}
	s.sv2.latest.Store(fr)
	s.loopsMu.Lock()
	loops := append([]*loop(nil), s.loops...)
	s.loopsMu.Unlock()
	for _, lp := range loops {
		lp := lp
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			if j.ID < lp.sv2.lastJob {
				return nil
			}
			lp.sv2.lastJob = j.ID
			lp.sv2FanOut(fr, append([]*sv2Conn(nil), lp.sv2.conns...))
			return nil
		}))
	}
}

// sv2FanOut writes the job to a snapshot of the loop's connections, at most
// broadcastSlice of loop time per task.
func (lp *loop) sv2FanOut(fr *sv2JobFrames, conns []*sv2Conn) {
	if fr.job.ID < lp.sv2.lastJob {
		return
	}
	now := lp.srv.nowSec.Load()
	start := time.Now()
	n := 0
	for n < len(conns) && n < broadcastChunk {
		if n%broadcastCheck == broadcastCheck-1 && time.Since(start) >= broadcastSlice {
			break
		}
		sc := conns[n]
		n++
		if sc.closed || sc.state != sv2Ready || len(sc.chans) == 0 {
			continue
		}
		lp.sv2.plain = lp.sv2.plain[:0]
		sc.sendJob(fr, now)
		if !sc.write(lp.sv2.plain) {
			sc.closed = true
			_ = lp.el.Close(sc.c)
		}
		lp.sv2.plain = lp.sv2.plain[:0]
	}
	if rest := conns[n:]; len(rest) > 0 {
		lp.srv.paceTask(lp, func() { lp.sv2FanOut(fr, rest) }, func() {})
	}
}

// sendJob appends the job's frames for every channel of the connection: a
// new prevhash comes as a future job and SetNewPrevHash, otherwise the job
// is active at once. Extended channels get the shared frame with their id,
// the group one copy for all its channels, standard channels outside the
// group a NewMiningJob with their own merkle root.
func (sc *sv2Conn) sendJob(fr *sv2JobFrames, now int64) {
	future := !sc.hasPrev || sc.prev != fr.prev
	sc.prev, sc.hasPrev = fr.prev, true
	groupDone := false
	for _, ch := range sc.chans {
		if ch.grouped && !groupDone {
			groupDone = true
			sc.groupJob = true
			sc.appendJob(sv2GroupID, nil, fr, future)
		}
		sc.sendChannelJob(ch, fr, future, now)
	}
}

// sendChannelJob registers the job in the channel's job ring, sends
// SetTarget when vardiff moved, and appends the channel's job frames (a
// grouped channel's come from the group, except for the group's first).
func (sc *sv2Conn) sendChannelJob(ch *sv2Channel, fr *sv2JobFrames, future bool, now int64) {
	s := &ch.sess
	s.jobHead = (s.jobHead + 1) % localJobs
	idx := s.jobHead
	s.jobs[idx] = fr.job
	s.setMinerDiff(&s.m, idx, now)
	sc.retarget(ch, s.m.exps[idx])
	switch {
	case ch.grouped:
		if !sc.groupJob {
			sc.groupJob = true
			sc.appendJob(sv2GroupID, nil, fr, true)
		}
	case ch.extended:
		sc.appendJob(ch.id, nil, fr, future)
	default:
		sc.appendJob(ch.id, ch, fr, future)
	}
	if !sc.hasPrev {
		sc.prev, sc.hasPrev = fr.prev, true
	}
}

// appendJob appends the job for channel (or group) id: std non-nil means a
// standard channel's NewMiningJob with its merkle root.
func (sc *sv2Conn) appendJob(id uint32, std *sv2Channel, fr *sv2JobFrames, future bool) {
	lp := sc.lp
	if std != nil {
		s := &std.sess
		var en2 [8]byte
		m := sv2.NewMiningJob{ChannelID: id, JobID: uint32(fr.job.ShortID), Version: fr.job.Hash.Version(),
			MerkleRoot: lp.hasher.MerkleRoot(fr.job.Hash, s.en1[:], en2[:sc.srv.opts.ExtraNonce2Size])}
		if !future {
			m.MinNTime = sv2.OptionU32{Valid: true, V: fr.job.Time}
		}
		lp.sv2.plain = sv2.AppendNewMiningJob(lp.sv2.plain, &m)
	} else if future {
		lp.sv2.plain = appendFor(lp.sv2.plain, fr.future, id)
	} else {
		lp.sv2.plain = appendFor(lp.sv2.plain, fr.ext, id)
	}
	if future {
		lp.sv2.plain = appendFor(lp.sv2.plain, fr.nph, id)
	}
}
