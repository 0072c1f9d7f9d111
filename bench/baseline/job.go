package baseline

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// Job is a stratum job as the baseline server takes it: the same fields as
// engine.JobParams, so both servers can be fed the same work.
type Job struct {
	ID        uint64 // btcpool job id (high 32 bits: creation unix time)
	Height    int32
	PrevHash  [32]byte // internal byte order
	Coinbase1 []byte   // raw coinbase bytes before the 12-byte extranonce slot
	Coinbase2 []byte
	Branch    [][32]byte // merkle branch, internal byte order
	Version   uint32
	Bits      uint32
	Time      uint32
	MinTime   uint32
	// NetworkTarget, when not zero, overrides the target from Bits.
	NetworkTarget sha.Target
}

// JobFromStratum converts a decoded BtcJob message (spec §3.7).
func JobFromStratum(sj *btcpool.StratumJob) (*Job, error) {
	prev, err := sj.PrevHashBytes()
	if err != nil {
		return nil, fmt.Errorf("prev hash: %w", err)
	}
	cb1, err := sj.Coinbase1Bytes()
	if err != nil {
		return nil, fmt.Errorf("coinbase1: %w", err)
	}
	cb2, err := sj.Coinbase2Bytes()
	if err != nil {
		return nil, fmt.Errorf("coinbase2: %w", err)
	}
	branch, err := sj.Branch()
	if err != nil {
		return nil, fmt.Errorf("merkle branch: %w", err)
	}
	return &Job{ID: sj.JobID, Height: sj.Height, PrevHash: prev, Coinbase1: cb1, Coinbase2: cb2,
		Branch: branch, Version: uint32(sj.NVersion), Bits: sj.NBits, Time: sj.NTime, MinTime: sj.MinTime}, nil
}

// maxSeen bounds one job's duplicate set; past it shares are not remembered.
const maxSeen = 1 << 20

// shareKey identifies a share within a job (spec §4.9 step 7, plus the
// extranonce1 since the set is shared by every session).
type shareKey struct {
	en1, ntime, nonce, vmask uint32
	en2                      uint64
}

// liveJob is a published job: its notify id, the prepared hashing data and
// the set of shares already seen on it.
type liveJob struct {
	job     *Job
	id      string // the job id sent in mining.notify
	hash    *sha.Job
	network sha.Target

	mu   sync.Mutex
	seen map[shareKey]struct{}
}

func newLiveJob(j *Job, id string) *liveJob {
	lj := &liveJob{job: j, id: id, seen: make(map[shareKey]struct{}),
		hash:    sha.NewJob(j.Coinbase1, j.Coinbase2, j.Branch, j.Version, j.PrevHash, j.Bits),
		network: j.NetworkTarget}
	if lj.network.IsZero() {
		lj.network = sha.CompactToTarget(j.Bits)
	}
	return lj
}

// seenBefore records k and reports whether it was already there.
func (lj *liveJob) seenBefore(k shareKey) bool {
	lj.mu.Lock()
	defer lj.mu.Unlock()
	if _, ok := lj.seen[k]; ok {
		return true
	}
	if len(lj.seen) < maxSeen {
		lj.seen[k] = struct{}{}
	}
	return false
}

// notifyParams are the mining.notify params (spec §4.6).
func (lj *liveJob) notifyParams(clean bool) []any {
	j := lj.job
	branch := make([]string, len(j.Branch))
	for i := range j.Branch {
		branch[i] = fmt.Sprintf("%x", j.Branch[i][:])
	}
	// The previous hash goes out with each 4-byte word reversed.
	var prev [32]byte
	for w := 0; w < 32; w += 4 {
		prev[w], prev[w+1], prev[w+2], prev[w+3] = j.PrevHash[w+3], j.PrevHash[w+2], j.PrevHash[w+1], j.PrevHash[w]
	}
	return []any{lj.id, fmt.Sprintf("%x", prev[:]), fmt.Sprintf("%x", j.Coinbase1), fmt.Sprintf("%x", j.Coinbase2),
		branch, fmt.Sprintf("%08x", j.Version), fmt.Sprintf("%08x", j.Bits), fmt.Sprintf("%08x", j.Time), clean}
}

// shareStatus is a btcpool share result code (spec §4.9 table).
type shareStatus int

// The codes the baseline answers with.
const (
	statusAccepted      shareStatus = 0
	statusJobNotFound   shareStatus = 21
	statusDuplicate     shareStatus = 22
	statusLowDifficulty shareStatus = 23
	statusUnauthorized  shareStatus = 24
	statusNotSubscribed shareStatus = 25
	statusIllegalMethod shareStatus = 26
	statusIllegalParams shareStatus = 27
	statusInvalidUser   shareStatus = 29
	statusTimeTooOld    shareStatus = 31
	statusTimeTooNew    shareStatus = 32
	statusIllegalVMask  shareStatus = 33
	statusUnknown       shareStatus = 2147483647
)

var statusText = map[shareStatus]string{
	statusJobNotFound:   "Job not found (=stale)",
	statusDuplicate:     "Duplicate share",
	statusLowDifficulty: "Low difficulty",
	statusUnauthorized:  "Unauthorized worker",
	statusNotSubscribed: "Not subscribed",
	statusIllegalMethod: "Illegal method",
	statusIllegalParams: "Illegal params",
	statusInvalidUser:   "Invalid username",
	statusTimeTooOld:    "Time too old",
	statusTimeTooNew:    "Time too new",
	statusIllegalVMask:  "Invalid version mask",
	statusUnknown:       "Unknown",
}

var errBadHex = errors.New("bad hex field")

// parseHexField parses a submit field of at most bits/4 hex digits.
func parseHexField(s string, bits int) (uint64, error) {
	if s == "" || len(s) > bits/4 {
		return 0, errBadHex
	}
	v, err := strconv.ParseUint(s, 16, bits)
	if err != nil {
		return 0, errBadHex
	}
	return v, nil
}
