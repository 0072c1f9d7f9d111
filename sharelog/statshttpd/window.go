package statshttpd

import (
	"net/netip"
	"sort"
	"strconv"

	"github.com/hashpool/hashpool/codec/btcpool"
)

// The windows of btcpool's statshttpd: accepted difficulty in 10 s slots over an hour,
// stale and rejected difficulty in 60 s slots over an hour.
const (
	acceptSlotSeconds = 10
	acceptSlots       = 3600 / acceptSlotSeconds
	rejectSlotSeconds = 60
	rejectSlots       = 3600 / rejectSlotSeconds
	// MaxShareAge is how old a share may be and still count: the longest window.
	MaxShareAge = 3600
	// normalizeFactor caps a worker's stale or rejected share at this many times its last
	// accepted difficulty, so a burst of rejects at a stale high difficulty does not dwarf the
	// accepted work (btcpool does the same).
	normalizeFactor = 4
)

// ring is a fixed ring of per-slot sums; head is the newest slot number written.
type ring[T ~[acceptSlots]uint64 | ~[rejectSlots]uint64] struct {
	slots T
	head  int64
}

// window is one key's statistics (a worker, a user's aggregate, or the pool).
type window struct {
	accept ring[[acceptSlots]uint64]
	stale  ring[[rejectSlots]uint64]
	reject ring[[rejectSlots]uint64]
	// detail holds rejected difficulty per status, created on the first reject.
	detail map[btcpool.Status]*ring[[rejectSlots]uint64]

	acceptCount    int64
	lastAcceptDiff uint64
	lastShareIP    netip.Addr
	lastShareTime  int64
}

func add[T ~[acceptSlots]uint64 | ~[rejectSlots]uint64](r *ring[T], slot int64, v uint64) {
	n := int64(len(r.slots))
	switch {
	case slot > r.head:
		// Clear the slots between the old head and the new one (at most the whole ring).
		from := r.head + 1
		if slot-from >= n {
			from = slot - n + 1
		}
		for s := from; s <= slot; s++ {
			r.slots[s%n] = 0
		}
		r.head = slot
	case slot <= r.head-n:
		return // older than the ring
	}
	r.slots[slot%n] += v
}

// sum adds the slots covering the last span slots up to and including slot now.
func sum[T ~[acceptSlots]uint64 | ~[rejectSlots]uint64](r *ring[T], now, span int64) uint64 {
	n := int64(len(r.slots))
	var total uint64
	for s := now - span + 1; s <= now; s++ {
		if s > r.head || s <= r.head-n || s < 0 {
			continue
		}
		total += r.slots[s%n]
	}
	return total
}

// addShare counts one share at its own timestamp.
func (w *window) addShare(s *btcpool.Share, outcome btcpool.Outcome, diff uint64) {
	switch outcome {
	case btcpool.OutcomeAccept:
		add(&w.accept, s.Timestamp/acceptSlotSeconds, diff)
		w.acceptCount++
	case btcpool.OutcomeStale:
		add(&w.stale, s.Timestamp/rejectSlotSeconds, diff)
	default:
		add(&w.reject, s.Timestamp/rejectSlotSeconds, diff)
		if w.detail == nil {
			w.detail = make(map[btcpool.Status]*ring[[rejectSlots]uint64])
		}
		r := w.detail[s.Status]
		if r == nil {
			r = &ring[[rejectSlots]uint64]{}
			w.detail[s.Status] = r
		}
		add(r, s.Timestamp/rejectSlotSeconds, diff)
	}
	if s.Timestamp >= w.lastShareTime {
		w.lastShareTime = s.Timestamp
		w.lastShareIP = s.IP
	}
}

// normalize returns the difficulty a worker's share counts with.
func (w *window) normalize(outcome btcpool.Outcome, diff uint64) uint64 {
	if outcome == btcpool.OutcomeAccept {
		w.lastAcceptDiff = diff
		return diff
	}
	if w.lastAcceptDiff > 0 && diff > normalizeFactor*w.lastAcceptDiff {
		return normalizeFactor * w.lastAcceptDiff
	}
	return diff
}

// Snapshot is one key's windows at a point in time, as the HTTP API and mining_workers show it.
type Snapshot struct {
	Accept5m, Accept15m, Accept1h uint64
	Stale15m, Stale1h             uint64
	Reject15m, Reject1h           uint64
	Detail15m, Detail1h           []StatusDiff
	AcceptCount                   int64
	LastShareIP                   netip.Addr
	LastShareTime                 int64
}

func (w *window) snapshot(now int64) Snapshot {
	a, r := now/acceptSlotSeconds, now/rejectSlotSeconds
	return Snapshot{
		Accept5m:      sum(&w.accept, a, 300/acceptSlotSeconds),
		Accept15m:     sum(&w.accept, a, 900/acceptSlotSeconds),
		Accept1h:      sum(&w.accept, a, acceptSlots),
		Stale15m:      sum(&w.stale, r, 15),
		Stale1h:       sum(&w.stale, r, rejectSlots),
		Reject15m:     sum(&w.reject, r, 15),
		Reject1h:      sum(&w.reject, r, rejectSlots),
		Detail15m:     w.details(r, 15),
		Detail1h:      w.details(r, rejectSlots),
		AcceptCount:   w.acceptCount,
		LastShareIP:   w.lastShareIP,
		LastShareTime: w.lastShareTime,
	}
}

// StatusDiff is the rejected difficulty of one status in a window.
type StatusDiff struct {
	Status btcpool.Status
	Diff   uint64
}

// details returns rejected difficulty by status over the last span minutes, in ascending
// status order, leaving out statuses with nothing in the window.
func (w *window) details(now, span int64) []StatusDiff {
	if len(w.detail) == 0 {
		return nil
	}
	out := make([]StatusDiff, 0, len(w.detail))
	for st, r := range w.detail {
		if v := sum(r, now, span); v > 0 {
			out = append(out, StatusDiff{Status: st, Diff: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Status < out[j].Status })
	return out
}

// AppendDetailJSON appends details as btcpool's reject_detail object {"<status>":<diff>,...}.
func AppendDetailJSON(dst []byte, details []StatusDiff) []byte {
	dst = append(dst, '{')
	for i, d := range details {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, int64(d.Status), 10)
		dst = append(dst, '"', ':')
		dst = strconv.AppendUint(dst, d.Diff, 10)
	}
	return append(dst, '}')
}

func mergeDetails(a, b []StatusDiff) []StatusDiff {
	out := append([]StatusDiff(nil), a...)
next:
	for _, d := range b {
		for i := range out {
			if out[i].Status == d.Status {
				out[i].Diff += d.Diff
				continue next
			}
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Status < out[j].Status })
	return out
}

// merge adds o's windows into s (the HTTP API's is_merge).
func (s *Snapshot) merge(o Snapshot) {
	s.Accept5m += o.Accept5m
	s.Accept15m += o.Accept15m
	s.Accept1h += o.Accept1h
	s.Stale15m += o.Stale15m
	s.Stale1h += o.Stale1h
	s.Reject15m += o.Reject15m
	s.Reject1h += o.Reject1h
	s.AcceptCount += o.AcceptCount
	if o.LastShareTime > s.LastShareTime {
		s.LastShareTime, s.LastShareIP = o.LastShareTime, o.LastShareIP
	}
	s.Detail15m = mergeDetails(s.Detail15m, o.Detail15m)
	s.Detail1h = mergeDetails(s.Detail1h, o.Detail1h)
}
