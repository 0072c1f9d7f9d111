package loadgen

import (
	"math/bits"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/internal/tcpinfo"
)

// Histogram counts durations in microseconds in log-linear buckets: exact
// below 32 µs, then 32 buckets per power of two (at most ~3 % error). It is
// safe for concurrent Record calls, and histograms of several processes
// merge by adding counts.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Uint64
}

const (
	histSub     = 32
	histBuckets = histSub + 59*histSub
)

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 6
	return histSub + shift*histSub + int(v>>uint(shift)) - histSub
}

// histLow returns the smallest value of bucket i; histWidth its width.
func histLow(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := (i - histSub) / histSub
	top := uint64((i-histSub)%histSub + histSub)
	return top << uint(shift)
}

func histWidth(i int) uint64 {
	if i < histSub {
		return 1
	}
	return 1 << uint((i-histSub)/histSub)
}

// Record adds one duration (negative durations count as 0).
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d.Microseconds(), 0))
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Quantile returns the value at quantile q (0..1) in microseconds: the
// middle of its bucket, never above the maximum.
func (h *Histogram) Quantile(q float64) uint64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q * float64(n))
	if rank >= n {
		rank = n - 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen > rank {
			return min(histLow(i)+histWidth(i)/2, h.max.Load())
		}
	}
	return h.max.Load()
}

// Summary returns count, p50, p90, p99 and max.
func (h *Histogram) Summary() Latency {
	return Latency{Count: h.n.Load(), P50us: h.Quantile(0.50), P90us: h.Quantile(0.90),
		P99us: h.Quantile(0.99), MaxUs: h.max.Load(), Buckets: h.buckets()}
}

func (h *Histogram) buckets() map[string]uint64 {
	m := make(map[string]uint64)
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			m[strconv.Itoa(i)] = c
		}
	}
	return m
}

// addSummary merges a Latency (with its buckets) into h.
func (h *Histogram) addSummary(l Latency) {
	for k, c := range l.Buckets {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= histBuckets {
			continue
		}
		h.counts[i].Add(c)
		h.n.Add(c)
	}
	for {
		m := h.max.Load()
		if l.MaxUs <= m || h.max.CompareAndSwap(m, l.MaxUs) {
			return
		}
	}
}

// Latency summarises a Histogram in microseconds. Buckets (bucket index →
// count) let reports of several processes be merged exactly.
type Latency struct {
	Count   uint64            `json:"count"`
	P50us   uint64            `json:"p50_us"`
	P90us   uint64            `json:"p90_us"`
	P99us   uint64            `json:"p99_us"`
	MaxUs   uint64            `json:"max_us"`
	Buckets map[string]uint64 `json:"buckets,omitempty"`
}

// JobSeen is what the miners of one process saw of one job.
type JobSeen struct {
	First   int64 `json:"first"`   // unix ns of the first receipt
	Last    int64 `json:"last"`    // unix ns of the last receipt
	Publish int64 `json:"publish"` // unix ns of the Publish call that made it, 0 if unknown
	Count   int   `json:"count"`   // receipts
}

// recorder holds the live counters of one process. Everything is atomic or
// behind mu; miners call it from their goroutines.
type recorder struct {
	start time.Time

	dials, dialFails, sessionsUp, sessionsEver, reconnects, handshakeFails atomic.Int64
	firstUp, lastUp                                                        atomic.Int64 // unix ns
	workersUp, workersEver                                                 atomic.Int64
	submitted, answered, accepted, unanswered, grindGiveUps, hashes        atomic.Int64
	notifies, setDiffs, agentSetDiffs                                      atomic.Int64
	txBytes, rxBytes, txSegs, rxSegs, tcpInfoConns                         atomic.Int64
	stTxBytes, stRxBytes, stTxSegs, stRxSegs, stConns                      atomic.Int64 // after each connection's setup mark

	endSessions, endWorkers int64 // up when the run's time ended

	submitLat Histogram
	fanout    Histogram

	mu             sync.Mutex
	rejects        map[int64]int64
	rejectNames    map[string]int64 // Stratum V2 error codes
	jobs           map[string]*JobSeen
	pendingPublish int64
	errs           []string
	errCount       int64
	bad            map[string]*BadCase
}

func newRecorder() *recorder {
	return &recorder{start: time.Now(), rejects: make(map[int64]int64), rejectNames: make(map[string]int64), jobs: make(map[string]*JobSeen),
		bad: make(map[string]*BadCase)}
}

const maxErrors = 20

func (r *recorder) err(format string, err error) {
	r.mu.Lock()
	r.errCount++
	if len(r.errs) < maxErrors {
		r.errs = append(r.errs, format+": "+err.Error())
	}
	r.mu.Unlock()
}

func (r *recorder) reject(code int64) {
	r.mu.Lock()
	r.rejects[code]++
	r.mu.Unlock()
}

// rejectReason counts a reject that carries a text code (Stratum V2's
// SubmitShares.Error error_code) instead of a btcpool number.
func (r *recorder) rejectReason(code string) {
	r.mu.Lock()
	if len(r.rejectNames) < 64 || r.rejectNames[code] > 0 { // bound the keys a server can make
		r.rejectNames[code]++
	} else {
		r.rejectNames["(other)"]++
	}
	r.mu.Unlock()
}

func (r *recorder) up() {
	now := time.Now().UnixNano()
	r.sessionsUp.Add(1)
	r.sessionsEver.Add(1)
	r.firstUp.CompareAndSwap(0, now)
	r.lastUp.Store(now)
}

// published notes that a new job is on its way: the next job key seen for
// the first time gets this publish time.
func (r *recorder) published(t time.Time) {
	r.mu.Lock()
	r.pendingPublish = t.UnixNano()
	r.mu.Unlock()
}

// jobReceived records one miner's receipt of a job (fan-out latency).
func (r *recorder) jobReceived(key string, at time.Time) {
	ns := at.UnixNano()
	r.mu.Lock()
	j := r.jobs[key]
	if j == nil {
		if len(r.jobs) >= 100000 { // bound: forget nothing old, just stop tracking new jobs
			r.mu.Unlock()
			return
		}
		j = &JobSeen{First: ns, Publish: r.pendingPublish}
		r.pendingPublish = 0
		r.jobs[key] = j
	}
	j.Count++
	j.Last = max(j.Last, ns)
	ref := j.First
	if j.Publish != 0 {
		ref = j.Publish
	}
	r.mu.Unlock()
	r.fanout.Record(time.Duration(ns - ref))
}

func (r *recorder) tcp(t tcpinfo.Counters) {
	r.txBytes.Add(int64(t.BytesOut))
	r.rxBytes.Add(int64(t.BytesIn))
	r.txSegs.Add(int64(t.SegsOut))
	r.rxSegs.Add(int64(t.SegsIn))
	r.tcpInfoConns.Add(1)
}

// steady adds what a connection carried between its setup mark and now.
func (r *recorder) steady(now, mark tcpinfo.Counters) {
	r.stTxBytes.Add(int64(now.BytesOut - mark.BytesOut))
	r.stRxBytes.Add(int64(now.BytesIn - mark.BytesIn))
	r.stTxSegs.Add(int64(now.SegsOut - mark.SegsOut))
	r.stRxSegs.Add(int64(now.SegsIn - mark.SegsIn))
	r.stConns.Add(1)
}

// progress is a snapshot of the counters, printed once a second and sent by
// child processes to their parent.
type progress struct {
	Elapsed    float64 `json:"elapsed"`
	SessionsUp int64   `json:"sessions_up"`
	WorkersUp  int64   `json:"workers_up"`
	Submitted  int64   `json:"submitted"`
	Accepted   int64   `json:"accepted"`
	Rejected   int64   `json:"rejected"`
	Notifies   int64   `json:"notifies"`
	P50us      uint64  `json:"p50_us"`
	P99us      uint64  `json:"p99_us"`
	Errors     int64   `json:"errors"`
}

func (r *recorder) snapshot() progress {
	r.mu.Lock()
	var rej int64
	for _, c := range r.rejects {
		rej += c
	}
	for _, c := range r.rejectNames {
		rej += c
	}
	errs := r.errCount
	r.mu.Unlock()
	return progress{Elapsed: time.Since(r.start).Seconds(), SessionsUp: r.sessionsUp.Load(), WorkersUp: r.workersUp.Load(),
		Submitted: r.submitted.Load(), Accepted: r.accepted.Load(), Rejected: rej, Notifies: r.notifies.Load(),
		P50us: r.submitLat.Quantile(0.5), P99us: r.submitLat.Quantile(0.99), Errors: errs}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
