package statshttpd

import (
	"sync"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/store"
)

// Key identifies a worker; WorkerID 0 is the user's aggregate.
type Key struct {
	PUID     int32
	WorkerID int64
}

// Stats holds the live windows of every worker, every user and the pool. Its methods are safe
// for concurrent use.
type Stats struct {
	mu      sync.Mutex
	keys    map[Key]*window
	workers map[int32]int // live workers per user
	pool    window
	now     func() time.Time
}

// NewStats returns empty statistics reading time from now (time.Now when nil).
func NewStats(now func() time.Time) *Stats {
	if now == nil {
		now = time.Now
	}
	return &Stats{keys: make(map[Key]*window), workers: make(map[int32]int), now: now}
}

// AddShare counts one share record. It reports false when the share is ignored: not a valid
// record, or older than an hour (MaxShareAge).
func (st *Stats) AddShare(s *btcpool.Share) bool {
	if s.UserID == 0 || s.WorkerHashID == 0 {
		return false
	}
	now := st.now().Unix()
	if s.Timestamp < now-MaxShareAge {
		return false
	}
	sh := *s
	if sh.Timestamp > now {
		sh.Timestamp = now // a clock ahead of ours must not write into slots we have not reached
	}
	outcome := sh.Status.Outcome(false)

	st.mu.Lock()
	defer st.mu.Unlock()
	w := st.window(Key{sh.UserID, sh.WorkerHashID})
	diff := w.normalize(outcome, sh.ShareDiff)
	w.addShare(&sh, outcome, diff)
	st.window(Key{sh.UserID, 0}).addShare(&sh, outcome, diff)
	st.pool.addShare(&sh, outcome, diff)
	return true
}

func (st *Stats) window(k Key) *window {
	w := st.keys[k]
	if w == nil {
		w = &window{}
		st.keys[k] = w
		if k.WorkerID != 0 {
			st.workers[k.PUID]++
		}
	}
	return w
}

// Worker returns the windows of one worker (WorkerID 0: the user's aggregate) and, for an
// aggregate, the user's number of live workers.
func (st *Stats) Worker(k Key) (snap Snapshot, workers int, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	w := st.keys[k]
	if w == nil {
		return Snapshot{}, 0, false
	}
	return w.snapshot(st.now().Unix()), st.workers[k.PUID], true
}

// Pool returns the pool's windows and the number of live workers and users.
func (st *Stats) Pool() (snap Snapshot, workers, users int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, n := range st.workers {
		workers += n
	}
	return st.pool.snapshot(st.now().Unix()), workers, len(st.workers)
}

// Rows returns a mining_workers row for every worker and every user aggregate.
func (st *Stats) Rows() []store.MiningWorker {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now().Unix()
	rows := make([]store.MiningWorker, 0, len(st.keys))
	for k, w := range st.keys {
		s := w.snapshot(now)
		ip := "0.0.0.0"
		if s.LastShareIP.IsValid() {
			ip = s.LastShareIP.String()
		}
		rows = append(rows, store.MiningWorker{
			WorkerID:        k.WorkerID,
			PUID:            k.PUID,
			Accept5m:        int64(s.Accept5m),
			Accept15m:       int64(s.Accept15m),
			Stale15m:        int64(s.Stale15m),
			Reject15m:       int64(s.Reject15m),
			RejectDetail15m: string(AppendDetailJSON(nil, s.Detail15m)),
			Accept1h:        int64(s.Accept1h),
			Stale1h:         int64(s.Stale1h),
			Reject1h:        int64(s.Reject1h),
			RejectDetail1h:  string(AppendDetailJSON(nil, s.Detail1h)),
			AcceptCount:     int32(min(s.AcceptCount, 1<<31-1)),
			LastShareIP:     ip,
			LastShareTime:   time.Unix(s.LastShareTime, 0).UTC(),
		})
	}
	return rows
}

// Expire removes workers and users with no share for an hour and returns how many it removed.
func (st *Stats) Expire() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	cutoff := st.now().Unix() - MaxShareAge
	n := 0
	for k, w := range st.keys {
		if w.lastShareTime < cutoff {
			delete(st.keys, k)
			n++
			if k.WorkerID != 0 {
				if st.workers[k.PUID]--; st.workers[k.PUID] <= 0 {
					delete(st.workers, k.PUID)
				}
			}
		}
	}
	return n
}
