package statshttpd

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/hashpool/hashpool/codec/btcpool"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func share(puid int32, worker int64, st btcpool.Status, diff uint64, ts int64) *btcpool.Share {
	return &btcpool.Share{Version: btcpool.CurrentShareVersion, UserID: puid, WorkerHashID: worker, Status: st,
		ShareDiff: diff, Timestamp: ts, JobID: 1, Height: 1, BlkBits: 0x207fffff, IP: netip.MustParseAddr("10.0.0.7")}
}

func TestWindowsCountByAge(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	st := NewStats(c.now)
	now := c.t.Unix()
	for _, s := range []*btcpool.Share{
		share(1, 10, btcpool.StatusAccept, 100, now),            // in every accept window
		share(1, 10, btcpool.StatusAccept, 200, now-400),        // 15m and 1h
		share(1, 10, btcpool.StatusAccept, 400, now-1200),       // 1h only
		share(1, 10, btcpool.StatusSolved, 8, now-10),           // accepted too
		share(1, 10, btcpool.StatusStaleShare, 30, now-60),      // stale 15m + 1h (under 4x the last accepted 8)
		share(1, 10, btcpool.StatusLowDifficulty, 30, now),      // reject 15m + 1h
		share(1, 10, btcpool.StatusDuplicateShare, 5, now-1000), // reject 1h only
		share(1, 11, btcpool.StatusAccept, 1000, now),           // second worker
		share(2, 20, btcpool.StatusAccept, 7, now),              // second user
	} {
		if !st.AddShare(s) {
			t.Fatalf("share %+v ignored", s)
		}
	}
	if st.AddShare(share(1, 10, btcpool.StatusAccept, 1, now-3601)) {
		t.Fatal("share older than an hour counted")
	}
	w, _, ok := st.Worker(Key{1, 10})
	if !ok {
		t.Fatal("worker missing")
	}
	want := Snapshot{Accept5m: 108, Accept15m: 308, Accept1h: 708, Stale15m: 30, Stale1h: 30, Reject15m: 30, Reject1h: 35,
		Detail15m:   []StatusDiff{{btcpool.StatusLowDifficulty, 30}},
		Detail1h:    []StatusDiff{{btcpool.StatusDuplicateShare, 5}, {btcpool.StatusLowDifficulty, 30}},
		AcceptCount: 4, LastShareIP: netip.MustParseAddr("10.0.0.7"), LastShareTime: now}
	if !reflect.DeepEqual(w, want) {
		t.Fatalf("worker windows\n got %+v\nwant %+v", w, want)
	}
	u, workers, _ := st.Worker(Key{1, 0})
	if u.Accept5m != 1108 || u.Accept1h != 1708 || workers != 2 {
		t.Fatalf("user aggregate %+v, workers %d", u, workers)
	}
	p, workers, users := st.Pool()
	if p.Accept5m != 1115 || p.AcceptCount != 6 || workers != 3 || users != 2 {
		t.Fatalf("pool %+v, workers %d users %d", p, workers, users)
	}

	// An hour later the windows are empty; a further minute and Expire drops everyone.
	c.t = c.t.Add(time.Hour + time.Minute)
	w, _, _ = st.Worker(Key{1, 10})
	if w.Accept1h != 0 || w.Reject1h != 0 || w.Stale1h != 0 || len(w.Detail1h) != 0 {
		t.Fatalf("windows after an hour: %+v", w)
	}
	if n := st.Expire(); n != 5 {
		t.Fatalf("expired %d keys, want 5 (3 workers, 2 users)", n)
	}
	if _, workers, users := st.Pool(); workers != 0 || users != 0 {
		t.Fatalf("after expiry %d workers %d users", workers, users)
	}
}

func TestRejectsNormalisedToFourTimesLastAccepted(t *testing.T) {
	c := &clock{time.Unix(1_700_000_000, 0)}
	st := NewStats(c.now)
	now := c.t.Unix()
	st.AddShare(share(1, 10, btcpool.StatusAccept, 64, now))
	st.AddShare(share(1, 10, btcpool.StatusLowDifficulty, 1024, now))
	st.AddShare(share(1, 10, btcpool.StatusStaleShare, 100, now))
	w, _, _ := st.Worker(Key{1, 10})
	if w.Reject15m != 256 || w.Stale15m != 100 {
		t.Fatalf("reject %d stale %d, want 256 and 100", w.Reject15m, w.Stale15m)
	}
}

func TestRingWrapsAndClears(t *testing.T) {
	var r ring[[rejectSlots]uint64]
	for s := int64(0); s < 200; s++ {
		add(&r, s, 1)
	}
	if got := sum(&r, 199, rejectSlots); got != rejectSlots {
		t.Fatalf("full ring sum %d", got)
	}
	add(&r, 1000, 5) // a long gap clears everything
	if got := sum(&r, 1000, rejectSlots); got != 5 {
		t.Fatalf("after gap %d", got)
	}
	add(&r, 900, 7) // older than the ring: ignored
	if got := sum(&r, 1000, rejectSlots); got != 5 {
		t.Fatalf("stale slot counted: %d", got)
	}
}

// A window is kept per worker: 15,000 workers cost 15,000 of them, so their
// size is watched (docs/DESIGN.md, "Where each byte goes"; it was 4.4 KB).
func TestWindowSize(t *testing.T) {
	if n := unsafe.Sizeof(window{}); n > 1408 {
		t.Fatalf("window is %d bytes; keep it within the 1,408-byte size class", n)
	}
	var w window
	w.addShare(share(1, 10, btcpool.StatusAccept, 100, 1_700_000_000), btcpool.OutcomeAccept, 100)
	if w.stale != nil || w.detail != nil {
		t.Fatal("an accepted share made the stale or reject rings")
	}
}
