package statshttpd

import (
	"net/netip"
	"sort"
	"strconv"

	"github.com/hashpool/hashpool/codec/btcpool"
)

// The windows of btcpool's statshttpd: accepted difficulty in 10 s slots over the last 15 min
// (the 5 min and 15 min sums) and in 60 s slots over the hour (the 1 h sum), stale and rejected
// difficulty in 60 s slots over an hour.
//
// A window is kept per worker, so its size is the per-worker cost of `hashpool run` (issue 11,
// docs/DESIGN.md "Where each byte goes"): one hour of 10 s slots was 2,880 bytes of a 4.4 KB
// window; now accepted work is 1,216 bytes, stale slots are made at the first stale share and
// the rejected total is the sum of the per-status rings (made at the first reject of each
// status), so a worker that only has accepted shares costs about 1.3 KB.
const (
	acceptSlotSeconds = 10
	acceptSlots       = 900 / acceptSlotSeconds
	hourSlotSeconds   = 60
	hourSlots         = 3600 / hourSlotSeconds
	rejectSlotSeconds = hourSlotSeconds
	rejectSlots       = hourSlots
	// MaxShareAge is how old a share may be and still count: the longest window.
	MaxShareAge = 3600
	// normalizeFactor caps a worker's stale or rejected share at this many times its last
	// accepted difficulty, so a burst of rejects at a stale high difficulty does not dwarf the
	// accepted work (btcpool does the same).
	normalizeFactor = 4
)

// ring is a fixed ring of per-slot sums; head is the newest slot number written.
type ring[T ~[acceptSlots]uint64 | ~[hourSlots]uint64] struct {
	slots T
	head  int64
}

// statusRing is the rejected difficulty of one status.
type statusRing struct {
	status btcpool.Status
	ring[[rejectSlots]uint64]
}

// window is one key's statistics (a worker, a user's aggregate, or the pool).
type window struct {
	accept   ring[[acceptSlots]uint64] // 10 s slots, last 15 min
	accept1h ring[[hourSlots]uint64]   // 60 s slots, last hour
	stale    *ring[[rejectSlots]uint64]
	// detail holds rejected difficulty per status (the rejected total is their sum), each
	// made at the first reject of its status; a handful of statuses exist.
	detail []*statusRing

	acceptCount    int64
	lastAcceptDiff uint64
	lastShareIP    netip.Addr
	lastShareTime  int64
}

func add[T ~[acceptSlots]uint64 | ~[hourSlots]uint64](r *ring[T], slot int64, v uint64) {
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
func sum[T ~[acceptSlots]uint64 | ~[hourSlots]uint64](r *ring[T], now, span int64) uint64 {
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
		add(&w.accept1h, s.Timestamp/hourSlotSeconds, diff)
		w.acceptCount++
	case btcpool.OutcomeStale:
		if w.stale == nil {
			w.stale = &ring[[rejectSlots]uint64]{}
		}
		add(w.stale, s.Timestamp/rejectSlotSeconds, diff)
	default:
		var r *statusRing
		for _, d := range w.detail {
			if d.status == s.Status {
				r = d
				break
			}
		}
		if r == nil {
			r = &statusRing{status: s.Status}
			w.detail = append(w.detail, r)
		}
		add(&r.ring, s.Timestamp/rejectSlotSeconds, diff)
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
	snap := Snapshot{
		Accept5m:      sum(&w.accept, a, 300/acceptSlotSeconds),
		Accept15m:     sum(&w.accept, a, 900/acceptSlotSeconds),
		Accept1h:      sum(&w.accept1h, now/hourSlotSeconds, hourSlots),
		Detail15m:     w.details(r, 15),
		Detail1h:      w.details(r, rejectSlots),
		AcceptCount:   w.acceptCount,
		LastShareIP:   w.lastShareIP,
		LastShareTime: w.lastShareTime,
	}
	if w.stale != nil {
		snap.Stale15m, snap.Stale1h = sum(w.stale, r, 15), sum(w.stale, r, rejectSlots)
	}
	for _, d := range w.detail {
		snap.Reject15m += sum(&d.ring, r, 15)
		snap.Reject1h += sum(&d.ring, r, rejectSlots)
	}
	return snap
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
	var out []StatusDiff
	for _, d := range w.detail {
		if v := sum(&d.ring, now, span); v > 0 {
			out = append(out, StatusDiff{Status: d.status, Diff: v})
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
