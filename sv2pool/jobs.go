package sv2pool

import (
	"encoding/binary"
	"errors"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/sha"
)

// JobTemplate is one job as the job stream describes it (the fields of a
// btcpool StratumJob that mining needs).
type JobTemplate struct {
	// PrevHash is the previous block hash in internal byte order.
	PrevHash [32]byte
	// Coinbase1 and Coinbase2 are the coinbase transaction, serialized
	// without BIP141 fields (§3.7.1), before and after ExtranonceLen bytes of
	// extranonce.
	Coinbase1, Coinbase2 []byte
	// MerkleBranch is the coinbase's merkle path, deepest first.
	MerkleBranch [][32]byte
	Version      uint32
	NBits        uint32
	// NTime is the job's minimum ntime (the template's curtime).
	NTime uint32
}

// poolJob is a JobTemplate prepared for share checking and broadcast.
type poolJob struct {
	id     uint32
	t      JobTemplate
	sj     *sha.Job
	ext    []byte     // NewExtendedMiningJob frame for channel 0, min_ntime set
	future []byte     // the same as a future job (min_ntime empty)
	net    sha.Target // network target
}

// maxJobsPerBlock bounds the jobs kept valid on one prevhash.
const maxJobsPerBlock = 32

// ErrJob is returned by SetJob for a template whose coinbase halves or
// merkle branch do not fit the protocol's fields.
var ErrJob = errors.New("sv2pool: job template does not fit NewExtendedMiningJob (coinbase parts over 64 KiB or branch over 255)")

// SetJob makes t the current job and sends it to every channel: a new
// PrevHash starts a new block (the job is sent as a future job and activated
// by SetNewPrevHash; earlier jobs become stale), otherwise the job is sent
// active with its min_ntime. NewExtendedMiningJob is serialized once; each
// extended channel's copy differs only in its channel id. Standard channels
// get a NewMiningJob with their own merkle root.
func (s *Server) SetJob(t JobTemplate) (uint32, error) {
	if len(t.Coinbase1) > sv2.MaxB64K || len(t.Coinbase2) > sv2.MaxB64K || len(t.MerkleBranch) > sv2.MaxSeq255 {
		return 0, ErrJob
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := &poolJob{id: s.nextJob, t: t, net: sha.CompactToTarget(t.NBits),
		sj: sha.NewJob(t.Coinbase1, t.Coinbase2, t.MerkleBranch, t.Version, t.PrevHash, t.NBits)}
	s.nextJob++
	m := sv2.NewExtendedMiningJob{JobID: j.id, Version: t.Version, VersionRollingAllowed: true,
		MerklePath: t.MerkleBranch, CoinbaseTxPrefix: t.Coinbase1, CoinbaseTxSuffix: t.Coinbase2}
	j.future = sv2.AppendNewExtendedMiningJob(nil, &m)
	m.MinNTime = sv2.OptionU32{Valid: true, V: t.NTime}
	j.ext = sv2.AppendNewExtendedMiningJob(nil, &m)

	newBlock := s.cur == nil || s.cur.t.PrevHash != t.PrevHash
	if newBlock {
		clear(s.jobs)
		s.blockJob = j.id
		for _, ch := range s.channels {
			ch.seen = map[[32]byte]struct{}{}
			clear(ch.jobTarget)
		}
	} else if len(s.jobs) >= maxJobsPerBlock {
		delete(s.jobs, j.id-maxJobsPerBlock)
		for _, ch := range s.channels {
			delete(ch.jobTarget, j.id-maxJobsPerBlock)
		}
	}
	s.jobs[j.id] = j
	s.cur = j
	for _, ch := range s.channels {
		ch.ss.send(s.jobFrame(j, ch, newBlock))
		if newBlock {
			ch.ss.send(s.prevHashFrame(j, ch.id))
		} else {
			ch.jobTarget[j.id] = ch.target
		}
	}
	return j.id, nil
}

// jobFrame returns the job's frame for one channel. Caller holds s.mu.
func (s *Server) jobFrame(j *poolJob, ch *channel, future bool) []byte {
	if ch.extended {
		src := j.ext
		if future {
			src = j.future
		}
		f := append([]byte(nil), src...)
		binary.LittleEndian.PutUint32(f[sv2.HeaderLen:], ch.id)
		return f
	}
	var h sha.Hasher
	m := sv2.NewMiningJob{ChannelID: ch.id, JobID: j.id, Version: j.t.Version,
		MerkleRoot: h.MerkleRoot(j.sj, ch.prefix, nil)}
	if !future {
		m.MinNTime = sv2.OptionU32{Valid: true, V: j.t.NTime}
	}
	return sv2.AppendNewMiningJob(nil, &m)
}

func (s *Server) prevHashFrame(j *poolJob, channelID uint32) []byte {
	return sv2.AppendSetNewPrevHash(nil, &sv2.SetNewPrevHash{ChannelID: channelID, JobID: j.id,
		PrevHash: j.t.PrevHash, MinNTime: j.t.NTime, NBits: j.t.NBits})
}
