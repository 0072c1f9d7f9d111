package jobmaker

import (
	"errors"
	"fmt"
	"slices"
)

// recentGbtHashes is how many accepted gbthashes are remembered to drop
// duplicates (spec §3.2 step 2).
const recentGbtHashes = 20

// maxBookEntries bounds the template book. Lifetimes keep it far smaller in
// practice (a template every few seconds, kept 90 s); the bound only
// matters if a producer floods distinct heights.
const maxBookEntries = 512

// maxGbtAge is the largest |now - created_at_ts| accepted, exclusive.
const maxGbtAge = 60

// Reasons a RawGbt is not taken into the book.
var (
	ErrDuplicateGbt    = errors.New("jobmaker: gbthash is one of the last 20 accepted")
	ErrGbtTooOld       = errors.New("jobmaker: created_at_ts is 60 s or more away from now")
	ErrHeightRegressed = errors.New("jobmaker: template height is below the best height")
)

// bookKey orders templates: highest height first, then non-empty over empty,
// then the newest (spec §3.2 step 6). Height must be in [0, 2^31).
func bookKey(height int32, empty bool, gbtTime uint32) uint64 {
	k := uint64(height)<<33 | uint64(gbtTime)
	if !empty {
		k |= 1 << 32
	}
	return k
}

func keyHeight(k uint64) int32 { return int32(k >> 33) }
func keyEmpty(k uint64) bool   { return k&(1<<32) == 0 }
func keyTime(k uint64) uint32  { return uint32(k) }

type bookEntry struct {
	k    uint64
	tmpl *Template
}

// book holds the templates jobmaker may build jobs from and the state of the
// last job sent, and decides when a new job is due (spec §3.2, §3.3). Times
// are unix seconds. It is not safe for concurrent use.
type book struct {
	jobInterval  int64 // seconds
	lifeTime     int64 // seconds, templates with transactions
	emptyLife    int64 // seconds, templates without transactions
	entries      []bookEntry
	recent       [recentGbtHashes][32]byte
	recentLen    int
	recentNext   int
	currHeight   int32 // height of the last job sent
	lastJobEmpty bool
	lastJobTime  int64
	// mergedMining is set when merged-mining work asks for a new job (§9,
	// the aux notify policy).
	mergedMining bool
}

// admit runs the checks that come before the template is even decoded:
// duplicate gbthash and age (spec §3.2 steps 2 and 3). It returns the age
// in seconds.
func (b *book) admit(gbtHash [32]byte, createdAt uint32, now int64) (int64, error) {
	for i := 0; i < b.recentLen; i++ {
		if b.recent[i] == gbtHash {
			return 0, ErrDuplicateGbt
		}
	}
	age := now - int64(createdAt)
	if age >= maxGbtAge || age <= -maxGbtAge {
		return age, fmt.Errorf("%w (%d s)", ErrGbtTooOld, age)
	}
	return age, nil
}

// insert applies the height-regression guard and adds the template
// (spec §3.2 steps 5 to 7). A template whose key is already in the book is
// not replaced, but its gbthash still counts as seen.
//
// The guard compares times as signed numbers: btcpool subtracts uint32s, so
// a lower template that is also older than the best one wraps around and
// gets in. Such a template is stale on both counts and is refused here.
func (b *book) insert(gbtHash [32]byte, createdAt uint32, t *Template) (added bool, err error) {
	if n := len(b.entries); n > 0 {
		best := b.entries[n-1].k
		if t.Height < keyHeight(best) && int64(createdAt)-int64(keyTime(best)) < 2*b.jobInterval {
			return false, fmt.Errorf("%w (%d < %d, %d s after the best template)",
				ErrHeightRegressed, t.Height, keyHeight(best), int64(createdAt)-int64(keyTime(best)))
		}
	}
	k := bookKey(t.Height, t.Empty(), createdAt)
	i, found := slices.BinarySearchFunc(b.entries, k, func(e bookEntry, k uint64) int {
		switch {
		case e.k < k:
			return -1
		case e.k > k:
			return 1
		}
		return 0
	})
	if !found {
		b.entries = slices.Insert(b.entries, i, bookEntry{k: k, tmpl: t})
		if len(b.entries) > maxBookEntries {
			b.entries[0] = bookEntry{}
			b.entries = slices.Delete(b.entries, 0, 1)
		}
	}
	b.recent[b.recentNext] = gbtHash
	b.recentNext = (b.recentNext + 1) % recentGbtHashes
	b.recentLen = min(b.recentLen+1, recentGbtHashes)
	return !found, nil
}

// expire removes templates whose lifetime has passed, oldest key first,
// but always keeps the last one so jobs keep flowing when the node stops
// sending new templates (spec §3.3 step 1).
func (b *book) expire(now int64) {
	out := b.entries[:0]
	for i, e := range b.entries {
		life := b.lifeTime
		if keyEmpty(e.k) {
			life = b.emptyLife
		}
		remaining := len(out) + len(b.entries) - i
		if int64(keyTime(e.k))+life <= now && remaining > 1 {
			continue
		}
		out = append(out, e)
	}
	clear(b.entries[len(out):])
	b.entries = out
}

// Trigger says why a job is due; zero means it is not.
type Trigger uint8

// The triggers of spec §3.3 step 3, in the order they are checked.
const (
	NoTrigger       Trigger = iota
	NewHeight               // the best template is higher than the last job
	EmptyToFull             // the last job was empty, a full template arrived at its height
	MergedMining            // merged-mining work changed (§9)
	PeriodicRefresh         // job_interval passed since the last job
)

var triggerNames = [...]string{"none", "new height", "empty to full", "merged mining", "periodic refresh"}

// String names the trigger for logs.
func (t Trigger) String() string {
	if int(t) < len(triggerNames) {
		return triggerNames[t]
	}
	return fmt.Sprintf("Trigger(%d)", uint8(t))
}

// due expires old templates and returns the best template and the reason a
// job should be built from it now, or NoTrigger.
func (b *book) due(now int64) (*Template, Trigger) {
	b.expire(now)
	if len(b.entries) == 0 {
		return nil, NoTrigger
	}
	best := b.entries[len(b.entries)-1]
	h, empty := keyHeight(best.k), keyEmpty(best.k)
	switch {
	case h > b.currHeight:
		return best.tmpl, NewHeight
	case h == b.currHeight && b.lastJobEmpty && !empty:
		return best.tmpl, EmptyToFull
	case b.mergedMining:
		return best.tmpl, MergedMining
	case b.lastJobTime+b.jobInterval <= now:
		return best.tmpl, PeriodicRefresh
	}
	return best.tmpl, NoTrigger
}

// sent records that a job built from t was published at now.
func (b *book) sent(t *Template, now int64) {
	b.currHeight = t.Height
	b.lastJobEmpty = t.Empty()
	b.lastJobTime = now
	b.mergedMining = false
}
