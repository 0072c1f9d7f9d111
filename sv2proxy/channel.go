package sv2proxy

import (
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/sha"
)

// minerPartLen is the part of a channel's extranonce that tells miners of
// one channel apart: the miner's session id, sent to it as extranonce1.
const minerPartLen = 4

// channel is one upstream extended channel and the SV1 jobs made from it.
// Every field is guarded by Translator.mu.
type channel struct {
	owner  *miner // ChannelPerMiner: the miner; nil for the shared channel
	reqID  uint32
	id     uint32
	group  uint32
	open   bool
	prefix []byte // extranonce_prefix, for jobs received from now on
	enSize int    // extranonce bytes after the prefix
	pad    int    // zero bytes between the prefix and the miner's part

	target   sha.Target
	diff     float64
	diffLine []byte // the set_difficulty line for diff

	prev    *sv2.SetNewPrevHash // nil until the first one
	future  map[uint32]*extJob  // future jobs by SV2 job id
	jobs    []*job              // jobs valid on prev, oldest first
	cur     *job
	seq     uint32
	pend    []pending
	hasJobs bool // a notify was sent on this channel (the first is clean)
}

// extJob is a NewExtendedMiningJob copied out of the read buffer.
type extJob struct {
	id      uint32
	version uint32
	rolling bool
	path    [][32]byte
	cbPre   []byte
	cbSuf   []byte
}

// job is one SV1 job: an extended job on a prevhash with its notify lines.
type job struct {
	sv1     uint64
	sv2     uint32
	version uint32
	rolling bool
	frames  stratum.NotifyFrames
}

// pending is a share awaiting the pool's answer, or already answered but
// queued behind earlier shares so that every miner gets answers in order.
type pending struct {
	seq  uint32
	m    *miner
	id   stratum.ID
	diff float64
	code int16  // 0 while unanswered, codeOK, or the SV1 error code
	msg  string // the error message for code 20 (the pool's own code)
}

// Answer codes of a pending share besides btcpool's error codes.
const (
	codeOK    int16 = -1
	codeStale       = int16(stratum.StatusJobNotFoundOrStale)
	codeDup         = int16(stratum.StatusDuplicateShare)
	codeLow         = int16(stratum.StatusLowDifficulty)
	// codeOther is stratum's "Other/Unknown": btcpool has no code for
	// what SV2 pools reject besides stale, duplicate and low difficulty.
	codeOther int16 = 20
)

// each calls f for every miner fed by the channel.
func (ch *channel) each(t *Translator, f func(*miner)) {
	if ch.owner != nil {
		if !ch.owner.closed {
			f(ch.owner)
		}
		return
	}
	for _, m := range t.miners {
		if m.authorized && !m.closed {
			f(m)
		}
	}
}

func (ch *channel) setTarget(t *Translator, u sv2.U256) {
	tg := sha.HashToTarget(&u)
	if tg.IsZero() {
		return
	}
	ch.target = tg
	d := tg.Difficulty()
	if d == ch.diff && ch.diffLine != nil {
		return
	}
	ch.diff = d
	ch.diffLine = stratum.AppendSetDifficulty(nil, d)
	ch.each(t, func(m *miner) { m.send(ch.diffLine) })
}

func copyJob(m *sv2.NewExtendedMiningJob) *extJob {
	return &extJob{id: m.JobID, version: m.Version, rolling: m.VersionRollingAllowed,
		path: append([][32]byte(nil), m.MerklePath...), cbPre: append([]byte(nil), m.CoinbaseTxPrefix...),
		cbSuf: append([]byte(nil), m.CoinbaseTxSuffix...)}
}

func (ch *channel) newJob(t *Translator, m *sv2.NewExtendedMiningJob) {
	if !ch.open {
		return
	}
	e := copyJob(m)
	if !m.MinNTime.Valid {
		if ch.future == nil {
			ch.future = map[uint32]*extJob{}
		}
		if len(ch.future) >= t.o.MaxJobs {
			clear(ch.future) // the pool sends one future job per block; many means it is broken
		}
		ch.future[e.id] = e
		return
	}
	if ch.prev == nil {
		return // an active job needs a prevhash (§5.3.16)
	}
	ch.activate(t, e, m.MinNTime.V, false)
}

func (ch *channel) newPrevHash(t *Translator, m *sv2.SetNewPrevHash) {
	if !ch.open {
		return
	}
	p := *m
	ch.prev = &p
	ch.jobs, ch.cur = ch.jobs[:0], nil // every job on the old prevhash is stale
	e := ch.future[m.JobID]
	clear(ch.future)
	if e != nil {
		ch.activate(t, e, m.MinNTime, true)
	}
}

// activate makes e the current job and sends it to the channel's miners.
func (ch *channel) activate(t *Translator, e *extJob, ntime uint32, clean bool) {
	t.jobSeq++
	cb1 := make([]byte, 0, len(e.cbPre)+len(ch.prefix))
	cb1 = append(append(cb1, e.cbPre...), ch.prefix...)
	n := stratum.Notify{JobID: t.jobSeq, PrevHash: ch.prev.PrevHash, Coinbase1: cb1, Coinbase1Pad: ch.pad,
		Coinbase2: e.cbSuf, Branch: e.path, Version: e.version, Bits: ch.prev.NBits, Time: ntime}
	j := &job{sv1: t.jobSeq, sv2: e.id, version: e.version, rolling: e.rolling}
	_, j.frames = stratum.AppendNotifyFrames(nil, &n)
	if len(ch.jobs) >= t.o.MaxJobs {
		ch.jobs = append(ch.jobs[:0], ch.jobs[1:]...)
	}
	ch.jobs = append(ch.jobs, j)
	ch.cur = j
	clean = clean || !ch.hasJobs
	ch.hasJobs = true
	line := j.frames.Frame(clean)
	ch.each(t, func(m *miner) {
		m.send(line)
		t.stats.Notifies.Add(1)
	})
}

// join sends a miner that joins a working channel its difficulty and job.
func (ch *channel) join(t *Translator, m *miner) {
	if ch.diffLine != nil {
		m.send(ch.diffLine)
	}
	if ch.cur != nil {
		m.send(ch.cur.frames.Clean)
		t.stats.Notifies.Add(1)
	}
}

func (ch *channel) find(sv1 uint64) *job {
	for i := len(ch.jobs) - 1; i >= 0; i-- {
		if ch.jobs[i].sv1 == sv1 {
			return ch.jobs[i]
		}
	}
	return nil
}

// accepted marks every unanswered share up to last as accepted (a
// SubmitShares.Success may cover many, §5.3.13).
func (ch *channel) accepted(t *Translator, last uint32) {
	for i := range ch.pend {
		p := &ch.pend[i]
		if p.code == 0 && int32(last-p.seq) >= 0 {
			p.code = codeOK
		}
	}
	ch.flush(t)
}

func (ch *channel) rejected(t *Translator, seq uint32, sv2code []byte) {
	for i := range ch.pend {
		if p := &ch.pend[i]; p.seq == seq && p.code == 0 {
			p.code = rejectCode(sv2code)
			if p.code == codeOther {
				p.msg = "Other/Unknown (" + string(sv2code) + ")"
			}
			break
		}
	}
	ch.flush(t)
}

// flush answers the answered shares at the head of the queue.
func (ch *channel) flush(t *Translator) {
	n := 0
	for n < len(ch.pend) && ch.pend[n].code != 0 {
		p := &ch.pend[n]
		p.m.answer(t, p.id, p.code, p.msg, p.diff)
		n++
	}
	if n > 0 {
		k := copy(ch.pend, ch.pend[n:])
		clear(ch.pend[k:])
		ch.pend = ch.pend[:k]
	}
}

// failPending answers every queued share: those the pool answered with its
// answer, the rest 21 (the pool that would have judged them is gone).
func (ch *channel) failPending(t *Translator) {
	for i := range ch.pend {
		if ch.pend[i].code == 0 {
			ch.pend[i].code = codeStale
		}
	}
	ch.flush(t)
	ch.open = false
}

// rejectCode maps an SV2 error code to btcpool's status (21 stale, 22
// duplicate, 23 low difficulty, else 20).
func rejectCode(code []byte) int16 {
	switch string(code) {
	case "stale-share", "invalid-job-id":
		return codeStale
	case "duplicate-share":
		return codeDup
	case "difficulty-too-low":
		return codeLow
	}
	return codeOther
}
