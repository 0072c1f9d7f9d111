package engine

import (
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/sha"
)

// JobParams is what the engine needs from a stratum job (the BtcJob topic's
// StratumJob, spec §3.7). Byte slices are copied by NewJob.
type JobParams struct {
	ID        uint64 // high 32 bits: creation unix time (used for expiry)
	Height    int32
	PrevHash  [32]byte // internal byte order
	Coinbase1 []byte   // raw bytes before the 12-byte extranonce slot
	Coinbase2 []byte
	Branch    [][32]byte // merkle branch, internal byte order
	Version   uint32
	Bits      uint32
	Time      uint32
	MinTime   uint32
	// NetworkTarget, when not zero, overrides the target from Bits
	// (btcpool's proxy-job mode; also lets tests force solved shares).
	NetworkTarget sha.Target
	// Aux are the job's merged-mining chains (none: merged mining off); their targets are
	// checked on every share's hash. MergedMiningClean (jobmaker's notify policy) sends the
	// job at once like a new height, without clean_jobs.
	Aux               []AuxChain
	MergedMiningClean bool
}

// Job is one stratum job as the engine holds it: immutable once built,
// except for the stale and expired marks, and shared by every session and
// event loop.
type Job struct {
	ID            uint64
	Height        int32
	Bits          uint32
	Time          uint32
	MinTime       uint32
	ShortID       uint8
	Clean         bool // created on a new height
	NetworkTarget sha.Target
	// Hash is the prepared coinbase/merkle data; its coinbase1 already holds
	// the §4.3 zero padding for extranonce2 sizes below 8, so what is hashed
	// is exactly what the miner hashed.
	Hash        *sha.Job
	emptyBranch bool

	// AuxTargets are aux[i].Target in order (bit i of AuxTargets.Check is aux[i]); branch is
	// the coinbase merkle branch the AuxSolvedShare carries. Both empty without aux chains.
	AuxTargets auxpow.Targets
	aux        []AuxChain
	branch     [][32]byte

	stale   atomic.Bool
	expired atomic.Bool

	// notify holds the serialized mining.notify lines (both clean_jobs
	// variants), written as-is to every session. idEnd is where the short
	// job id ends in them (NiceHash sessions get another id there).
	notify stratum.NotifyFrames
	idEnd  int

	// seen holds one duplicate set per event loop; only that loop touches
	// its set, so no lock is needed. Cleared on the loop when the job expires.
	seen []dupSet
}

// Time returns the creation time encoded in the job id.
func (j *Job) created() int64 { return int64(j.ID >> 32) }

// Stale reports whether a block was found at or above this job's height.
func (j *Job) Stale() bool { return j.stale.Load() }

// Expired reports whether the job left the repository.
func (j *Job) Expired() bool { return j.expired.Load() }

// Notify returns the shared mining.notify line. The slice must not be
// modified.
func (j *Job) Notify(clean bool) []byte { return j.notify.Frame(clean) }

// notifyPrefix starts every mining.notify line, up to the job id.
const notifyPrefix = `{"id":null,"method":"mining.notify","params":["`

// AppendNotifyWithID appends the job's notify line with jobID in place of
// the short id (NiceHash sessions get now*256+shortID, spec §4.6).
func (j *Job) AppendNotifyWithID(dst []byte, clean bool, jobID uint64) []byte {
	line := j.Notify(clean)
	dst = append(dst, notifyPrefix...)
	dst = strconv.AppendUint(dst, jobID, 10)
	return append(dst, line[j.idEnd:]...)
}

// dupKey identifies a share within a job (spec §4.9 step 7): 128 bits of
// its header hash. The header covers everything btcpool's key holds
// (extranonce2, nonce, ntime, version mask) and the session's extranonce1,
// and the job fixes the rest, so two shares have one key exactly when they
// are the same share (distinct shares collide with probability 2^-128).
// The low-order bytes are used: the high ones are zero in every share that
// meets its target.
type dupKey [2]uint64

func dupKeyOf(hash *[32]byte) dupKey {
	return dupKey{binary.LittleEndian.Uint64(hash[0:8]), binary.LittleEndian.Uint64(hash[8:16])}
}

// maxDupPerLoop bounds one job's duplicate set on one loop. Past it shares
// are not remembered (a miner could replay one only within this job). Only
// shares that meet their target are added, so filling a set takes the work.
const maxDupPerLoop = 1 << 20

// dupSetInitial is the slot count of a set with nothing to size it by (8
// KiB; it doubles at half full).
const dupSetInitial = 512

// dupSlotsFor returns the slot count for a job's set on a loop where the
// previous job's set ended up holding prev keys: room for 1.125× prev keys
// at most half full, so a job that gets as many shares as the one before it
// never grows its set on the loop.
func dupSlotsFor(prev int) int {
	want := 2*prev + prev/4
	n := dupSetInitial
	for n < want && n < 2*maxDupPerLoop {
		n *= 2
	}
	return n
}

// dupSet is an open-addressing (linear probing) hash set of dupKeys. Keys
// are already uniformly random, so the slot is the key's low bits; the zero
// key marks an empty slot (a share whose key is zero is stored as {0,1}).
// It holds at most maxDupPerLoop keys and is at most half full.
//
// A job's sets are made with the job (JobRepo.Add, on the job feed, not on a
// loop), each sized by dupSlotsFor from what the previous job's set on that
// loop holds: doubling on the loop would allocate (and copy) on the share
// path, up to 32 MiB at once for a full set.
type dupSet struct {
	slots []dupKey
	// n is the number of keys held; only the set's loop writes it, JobRepo.Add
	// reads it to size the next job's set.
	n atomic.Int32
}

// seenBefore records k and reports whether it was already there.
func (d *dupSet) seenBefore(k dupKey) bool {
	if d.has(k) {
		return true
	}
	d.add(k)
	return false
}

// has reports whether k was added.
func (d *dupSet) has(k dupKey) bool {
	_, found := d.find(k)
	return found
}

// add records k (nothing when it is there or the set is full).
func (d *dupSet) add(k dupKey) {
	i, found := d.find(k)
	n := int(d.n.Load())
	if found || n >= maxDupPerLoop {
		return
	}
	if d.slots == nil {
		d.slots = make([]dupKey, dupSetInitial)
		i, _ = d.find(k)
	}
	if k == (dupKey{}) {
		k[1] = 1
	}
	d.slots[i] = k
	n++
	d.n.Store(int32(n))
	if 2*n > len(d.slots) {
		d.grow()
	}
}

// find returns k's slot, or the empty slot where it would go.
func (d *dupSet) find(k dupKey) (int, bool) {
	if k == (dupKey{}) {
		k[1] = 1
	}
	if d.slots == nil {
		return 0, false
	}
	mask := uint64(len(d.slots) - 1)
	// At most half the slots are used, so the probe meets an empty one
	// within len(d.slots) steps.
	for i := k[0] & mask; ; i = (i + 1) & mask {
		switch d.slots[i] {
		case k:
			return int(i), true
		case dupKey{}:
			return int(i), false
		}
	}
}

// grow doubles the table and reinserts every key.
func (d *dupSet) grow() {
	old := d.slots
	d.slots = make([]dupKey, 2*len(old))
	mask := uint64(len(d.slots) - 1)
	for _, k := range old {
		if k == (dupKey{}) {
			continue
		}
		i := k[0] & mask
		for d.slots[i] != (dupKey{}) {
			i = (i + 1) & mask
		}
		d.slots[i] = k
	}
}

// newJob builds a Job for a server whose miners use en2Size-byte
// extranonce2s and that runs loops event loops. prev, the job before it (nil
// for the first), sizes its duplicate sets.
func newJob(p *JobParams, short uint8, clean bool, en2Size, loops int, prev *Job) *Job {
	pad := 8 - en2Size
	cb1 := make([]byte, 0, len(p.Coinbase1)+pad)
	cb1 = append(cb1, p.Coinbase1...)
	for i := 0; i < pad; i++ {
		cb1 = append(cb1, 0)
	}
	j := &Job{
		ID: p.ID, Height: p.Height, Bits: p.Bits, Time: p.Time, MinTime: p.MinTime,
		ShortID: short, Clean: clean, emptyBranch: len(p.Branch) == 0,
		Hash: sha.NewJob(cb1, p.Coinbase2, p.Branch, p.Version, p.PrevHash, p.Bits),
		seen: make([]dupSet, loops),
	}
	if prev != nil && len(prev.seen) == loops {
		for i := range j.seen {
			if n := int(prev.seen[i].n.Load()); n > 0 {
				j.seen[i].slots = make([]dupKey, dupSlotsFor(n))
			}
		}
	}
	if n := min(len(p.Aux), auxpow.MaxChains); n > 0 {
		j.aux = append([]AuxChain(nil), p.Aux[:n]...)
		j.branch = append([][32]byte(nil), p.Branch...)
		for i := range j.aux {
			_, _ = j.AuxTargets.Add(j.aux[i].Target) // n <= MaxChains
		}
	}
	j.NetworkTarget = p.NetworkTarget
	if j.NetworkTarget.IsZero() {
		j.NetworkTarget = sha.CompactToTarget(p.Bits)
	}
	n := stratum.Notify{JobID: uint64(short), PrevHash: p.PrevHash, Coinbase1: p.Coinbase1, Coinbase2: p.Coinbase2,
		Coinbase1Pad: pad, Branch: p.Branch, Version: p.Version, Bits: p.Bits, Time: p.Time}
	size := 2 * (160 + 2*(len(cb1)+len(p.Coinbase2)) + 68*len(p.Branch))
	_, j.notify = stratum.AppendNotifyFrames(make([]byte, 0, size), &n)
	j.idEnd = len(notifyPrefix) + len(strconv.AppendUint(nil, uint64(short), 10))
	return j
}

// Errors from JobRepo.Add.
var (
	ErrJobTooOld    = errors.New("engine: job older than max_job_lifetime (check the clocks of jobmaker and sserver)")
	ErrJobDuplicate = errors.New("engine: job id already known")
)

// JobRepo holds the live jobs of one chain and applies btcpool's broadcast
// rules (spec §4.8). It is safe for concurrent use; the bus consumer adds
// jobs and the server's ticker refreshes and expires them.
type JobRepo struct {
	lifetime       int64 // max_job_lifetime
	notifyInterval int64 // mining_notify_interval
	en2Size        int
	loops          int

	mu         sync.Mutex
	jobs       []*Job // ascending id
	nextShort  uint8
	lastHeight int32
	lastSend   int64

	latest atomic.Pointer[Job]
}

// NewJobRepo returns an empty repository.
func NewJobRepo(lifetimeSecs, notifyIntervalSecs int64, en2Size, loops int) *JobRepo {
	if loops < 1 {
		loops = 1
	}
	return &JobRepo{lifetime: lifetimeSecs, notifyInterval: notifyIntervalSecs, en2Size: en2Size, loops: loops}
}

// Latest returns the newest job, or nil before the first.
func (r *JobRepo) Latest() *Job { return r.latest.Load() }

// Add inserts a job. send reports whether it must go to every session now
// (new height, or the first full job after an empty one); otherwise the next
// periodic refresh carries it.
func (r *JobRepo) Add(p *JobParams, now int64) (j *Job, send bool, err error) {
	if int64(p.ID>>32)+r.lifetime < now {
		return nil, false, ErrJobTooOld
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, old := range r.jobs {
		if old.ID == p.ID {
			return nil, false, ErrJobDuplicate
		}
	}
	clean := p.Height > r.lastHeight
	if clean {
		r.lastHeight = p.Height
		for _, old := range r.jobs {
			old.stale.Store(true)
		}
	}
	prev := r.latest.Load()
	j = newJob(p, r.nextShort, clean, r.en2Size, r.loops, prev)
	r.nextShort++
	// Insert in id order; ids normally arrive ascending.
	i := len(r.jobs)
	for i > 0 && r.jobs[i-1].ID > j.ID {
		i--
	}
	r.jobs = append(r.jobs, nil)
	copy(r.jobs[i+1:], r.jobs[i:])
	r.jobs[i] = j
	// The newest id is the latest job, as in btcpool, except that a job on a
	// new height always is: its id can be lower than a job already here
	// (another jobmaker, a clock step back), and keeping that job, stale now,
	// as the latest would leave new sessions with no work until the next
	// height.
	if i == len(r.jobs)-1 || clean {
		r.latest.Store(j)
	}
	send = clean || p.MergedMiningClean || (prev != nil && prev.emptyBranch && !j.emptyBranch && j.Height >= prev.Height)
	if send && r.latest.Load() == j {
		r.lastSend = now
	} else {
		send = false
	}
	return j, send, nil
}

// Tick applies the timers: it returns the latest job when it is due for its
// periodic re-send (mining_notify_interval), and the jobs that expired
// (older than max_job_lifetime; the latest job and the newest are always
// kept). It is called
// about once a second.
func (r *JobRepo) Tick(now int64) (resend *Job, expired []*Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	latest := r.latest.Load()
	if latest != nil && r.lastSend+r.notifyInterval <= now {
		r.lastSend = now
		resend = latest
	}
	n := 0
	for n < len(r.jobs)-1 && r.jobs[n] != latest && r.jobs[n].created()+r.lifetime < now {
		r.jobs[n].expired.Store(true)
		n++
	}
	if n > 0 {
		expired = append(expired, r.jobs[:n]...)
		r.jobs = append(r.jobs[:0], r.jobs[n:]...)
	}
	return resend, expired
}

// MarkStale marks every job at or below height stale: a block was found
// there, so shares on them can no longer win (spec §4.8).
func (r *JobRepo) MarkStale(height int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.jobs {
		if j.Height <= height {
			j.stale.Store(true)
		}
	}
}

// Len returns how many jobs are live.
func (r *JobRepo) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.jobs)
}
