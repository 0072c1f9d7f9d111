package slparser

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// Key identifies the pool (0, 0), a user (puid, 0) or a worker (puid, worker id).
type Key struct {
	PUID     int32
	WorkerID int64
}

// normalizeFactor caps a worker's stale or rejected share at this many times its last accepted
// difficulty (btcpool's "normalized" worker statistics).
const normalizeFactor = 4

// Bucket is one hour's or one day's counters of a key.
type Bucket struct {
	Accept  uint64
	Stale   uint64
	Reject  uint64
	Rejects []StatusDiff // rejected difficulty per status, ascending status
	Score   float64
	Earn    float64 // satoshi
}

// StatusDiff is the rejected difficulty of one status.
type StatusDiff struct {
	Status btcpool.Status
	Diff   uint64
}

func (b *Bucket) addReject(st btcpool.Status, diff uint64) {
	b.Reject += diff
	for i := range b.Rejects {
		if b.Rejects[i].Status == st {
			b.Rejects[i].Diff += diff
			return
		}
	}
	b.Rejects = append(b.Rejects, StatusDiff{st, diff})
	sort.Slice(b.Rejects, func(i, j int) bool { return b.Rejects[i].Status < b.Rejects[j].Status })
}

// RejectRate is reject / (accept + reject), 0 without rejects.
func (b *Bucket) RejectRate() float64 {
	if b.Reject == 0 {
		return 0
	}
	return float64(b.Reject) / float64(b.Accept+b.Reject)
}

// AppendRejectDetail appends the reject_detail JSON object {"<status>":<diff>,...}.
func (b *Bucket) AppendRejectDetail(dst []byte) []byte {
	dst = append(dst, '{')
	for i, r := range b.Rejects {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, int64(r.Status), 10)
		dst = append(dst, '"', ':')
		dst = strconv.AppendUint(dst, r.Diff, 10)
	}
	return append(dst, '}')
}

// Row is the value columns of a stats_* table for this bucket.
func (b *Bucket) Row() store.ShareStats {
	return store.ShareStats{
		Accept:       clampInt64(b.Accept),
		Stale:        clampInt64(b.Stale),
		Reject:       clampInt64(b.Reject),
		RejectDetail: string(b.AppendRejectDetail(nil)),
		RejectRate:   b.RejectRate(),
		Score:        b.Score,
		Earn:         int64(math.Round(b.Earn)),
	}
}

func clampInt64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// keyStats are a key's 24 hours and day of one UTC day. An hour's bucket is
// made at its first share: every worker has a keyStats, and most are not
// active in every hour (24 buckets inline were 1.7 KB per worker).
type keyStats struct {
	hours          [24]*Bucket
	day            Bucket
	modified       [24]bool
	dayModified    bool
	lastAcceptDiff uint64
}

// Day aggregates one UTC day of shares, as btcpool's ShareLogParser does.
type Day struct {
	date            time.Time // midnight UTC
	acceptStale     bool
	subsidyInterval int32
	keys            map[Key]*keyStats
	shares, ignored int64
}

// NewDay starts the statistics of the UTC day containing t. subsidyInterval is the network's
// halving interval in blocks (210000 on main net, 150 on regtest); acceptStale is
// slparserhttpd.accept_stale.
func NewDay(t time.Time, subsidyInterval int32, acceptStale bool) *Day {
	y, m, d := t.UTC().Date()
	return &Day{date: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), acceptStale: acceptStale, subsidyInterval: subsidyInterval,
		keys: make(map[Key]*keyStats)}
}

// Date is the day's midnight, UTC.
func (d *Day) Date() time.Time { return d.date }

// Shares is the number of shares counted; Ignored those left out (invalid, or of another day).
func (d *Day) Shares() int64  { return d.shares }
func (d *Day) Ignored() int64 { return d.ignored }

// Subsidy is the block subsidy at height (no fees), as Bitcoin Core's GetBlockSubsidy.
func Subsidy(height uint32, interval int32) float64 {
	if interval <= 0 {
		interval = 210000
	}
	halvings := int64(height) / int64(interval)
	if halvings >= 64 {
		return 0
	}
	return float64(int64(50*1e8) >> halvings)
}

// Score is a share's fraction of a block: sharediff / network difficulty of blkbits, at most 1.
func Score(shareDiff uint64, blkBits uint32) float64 {
	if shareDiff == 0 || blkBits == 0 {
		return 0
	}
	nd := sha.BitsToDifficulty(blkBits)
	if nd <= 0 {
		return 0
	}
	return min(float64(shareDiff)/nd, 1)
}

// Add counts one share; it reports false for an invalid share or one of another day.
func (d *Day) Add(s *btcpool.Share) bool {
	if !s.Valid() {
		d.ignored++
		return false
	}
	off := s.Timestamp - d.date.Unix()
	if off < 0 || off >= 86400 {
		d.ignored++
		return false
	}
	d.shares++
	hour := int(off / 3600)
	outcome := s.Status.Outcome(d.acceptStale)
	score, earn := 0.0, 0.0
	if outcome == btcpool.OutcomeAccept {
		score = Score(s.ShareDiff, s.BlkBits)
		earn = score * Subsidy(s.Height, d.subsidyInterval)
	}
	w := d.key(Key{s.UserID, s.WorkerHashID})
	diff := s.ShareDiff
	if outcome == btcpool.OutcomeAccept {
		w.lastAcceptDiff = diff
	}
	workerDiff := diff
	if outcome != btcpool.OutcomeAccept && w.lastAcceptDiff > 0 && diff > normalizeFactor*w.lastAcceptDiff {
		workerDiff = normalizeFactor * w.lastAcceptDiff
	}
	w.add(hour, outcome, s.Status, workerDiff, score, earn)
	d.key(Key{s.UserID, 0}).add(hour, outcome, s.Status, diff, score, earn)
	d.key(Key{}).add(hour, outcome, s.Status, diff, score, earn)
	return true
}

func (d *Day) key(k Key) *keyStats {
	ks := d.keys[k]
	if ks == nil {
		ks = &keyStats{}
		d.keys[k] = ks
	}
	return ks
}

func (ks *keyStats) add(hour int, outcome btcpool.Outcome, st btcpool.Status, diff uint64, score, earn float64) {
	if ks.hours[hour] == nil {
		ks.hours[hour] = new(Bucket)
	}
	for _, b := range []*Bucket{ks.hours[hour], &ks.day} {
		switch outcome {
		case btcpool.OutcomeAccept:
			b.Accept += diff
			b.Score += score
			b.Earn += earn
		case btcpool.OutcomeStale:
			b.Stale += diff
		default:
			b.addReject(st, diff)
		}
	}
	ks.modified[hour] = true
	ks.dayModified = true
}

// Hour returns a key's bucket for hour 0..23, or the whole day for hour 24.
func (d *Day) Hour(k Key, hour int) (Bucket, bool) {
	ks := d.keys[k]
	if ks == nil || hour < 0 || hour > 24 {
		return Bucket{}, false
	}
	if hour == 24 {
		return ks.day, true
	}
	return ks.hour(hour), true
}

// hour returns a copy of hour h's bucket (zero before its first share).
func (ks *keyStats) hour(h int) Bucket {
	if b := ks.hours[h]; b != nil {
		return *b
	}
	return Bucket{}
}
