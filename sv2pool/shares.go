package sv2pool

import (
	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/sha"
)

// versionRollingMask is BIP320's general-purpose version bits, the ones a
// miner may change when version_rolling_allowed is set.
const versionRollingMask = 0x1fffe000

// Share is an accepted share.
type Share struct {
	ChannelID  uint32
	User       string
	JobID      uint32
	Hash       [32]byte // internal byte order
	Difficulty float64  // the channel target's difficulty
	Extended   bool
}

// Block is a share that meets the network target: the header and the
// (non-witness) coinbase the block needs.
type Block struct {
	Share
	Header   [80]byte
	Coinbase []byte
}

// submit checks one share and answers it. Runs on the session's reader.
func (ss *session) submit(chID, seq, jobID, nonce, ntime, version uint32, extranonce []byte, extended bool) {
	s := ss.srv
	code := ""
	defer func() {
		if code != "" {
			ss.reply(sv2.AppendSubmitSharesError(nil, &sv2.SubmitSharesError{ChannelID: chID, SequenceNumber: seq, ErrorCode: []byte(code)}))
		}
	}()
	ch, ok := ss.channels[chID]
	if !ok || ch.extended != extended {
		code = "invalid-channel-id"
		return
	}
	s.mu.Lock()
	j := s.jobs[jobID]
	blockJob := s.blockJob
	target, fixed := ch.jobTarget[jobID]
	if !fixed {
		target = ch.target
	}
	s.mu.Unlock()
	switch {
	case j == nil && jobID < blockJob && jobID > 0:
		code = "stale-share"
		return
	case j == nil:
		code = "invalid-job-id"
		return
	case extended && len(extranonce) != ch.enSize:
		code = "invalid-extranonce-size"
		return
	case (version^j.t.Version)&^versionRollingMask != 0:
		code = "invalid-version"
		return
	case ntime < j.t.NTime || int64(ntime) > s.o.Now().Add(s.o.MaxFutureTime).Unix():
		code = "invalid-timestamp"
		return
	}
	hash := ss.hasher.ShareHash(j.sj, ch.prefix, extranonce, ntime, nonce, version^j.t.Version)
	s.mu.Lock()
	stale := s.jobs[jobID] != j
	_, dup := ch.seen[hash]
	meets := sha.HashMeetsTarget(&hash, &target)
	if !stale && !dup && meets {
		ch.seen[hash] = struct{}{}
	}
	s.mu.Unlock()
	switch {
	case stale:
		code = "stale-share"
		return
	case dup:
		code = "duplicate-share"
		return
	case !meets:
		code = "difficulty-too-low"
		return
	}
	diff := target.Difficulty()
	sh := Share{ChannelID: chID, User: ch.user, JobID: jobID, Hash: hash, Difficulty: diff, Extended: extended}
	if s.o.OnShare != nil {
		s.o.OnShare(sh)
	}
	if sha.HashMeetsTarget(&hash, &j.net) && s.o.OnBlock != nil {
		s.o.OnBlock(Block{Share: sh,
			Header:   ss.hasher.ShareHeader(j.sj, ch.prefix, extranonce, ntime, nonce, version^j.t.Version),
			Coinbase: j.sj.AppendCoinbase(nil, ch.prefix, extranonce)})
	}
	sum := uint64(1)
	if diff > 1 {
		sum = uint64(diff)
	}
	ss.reply(sv2.AppendSubmitSharesSuccess(nil, &sv2.SubmitSharesSuccess{ChannelID: chID, LastSequenceNumber: seq,
		NewSubmitsAcceptedCount: 1, NewSharesSum: sum}))
}
